"""``runyard.runtime.bindings``: token rendering and the runner-side layout of a job's inputs
from a per-host cache (real files in a temp cache; the job dicts are written by hand)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from runyard.runtime.bindings import BindingError, prepare, render
from runyard.runtime.jobwire import ENV_INPUTS_FILE

ROOT = os.geteuid() == 0


# -- render -----------------------------------------------------------------------------------
VALUES = {"DatasetConsumptionConfig:a": "/in/a",
          "DatasetConsumptionConfig:ab": "/in/ab",
          "$AZUREML_DATAREFERENCE_a": "/ref/a",
          "DatasetOutputConfig:o": "/out/o"}


def test_render_replaces_whole_tokens_inside_arguments() -> None:
    cmd = ["python", "train.py", "--x=DatasetConsumptionConfig:a",
           "DatasetConsumptionConfig:ab", "--y", "DatasetConsumptionConfig:a/sub/file.csv",
           "$AZUREML_DATAREFERENCE_a", "pre:$AZUREML_DATAREFERENCE_a:post",
           "--out=DatasetOutputConfig:o", "DatasetConsumptionConfig:a,DatasetConsumptionConfig:ab"]
    assert render(cmd, VALUES) == [
        "python", "train.py", "--x=/in/a", "/in/ab", "--y", "/in/a/sub/file.csv", "/ref/a",
        "pre:/ref/a:post", "--out=/out/o", "/in/a,/in/ab"]


def test_render_does_not_confuse_prefix_names() -> None:
    only_a = {"DatasetConsumptionConfig:a": "/in/a", "$AZUREML_DATAREFERENCE_a": "/ref/a"}
    # 'ab' is another (unknown) name, not 'a' followed by 'b'
    assert render(["DatasetConsumptionConfig:ab", "$AZUREML_DATAREFERENCE_ab",
                   "DatasetConsumptionConfig:a"], only_a) == [
        "DatasetConsumptionConfig:ab", "$AZUREML_DATAREFERENCE_ab", "/in/a"]
    only_ab = {"DatasetConsumptionConfig:ab": "/in/ab"}
    assert render(["DatasetConsumptionConfig:a", "DatasetConsumptionConfig:ab"], only_ab) == [
        "DatasetConsumptionConfig:a", "/in/ab"]


def test_render_leaves_unknown_tokens_and_other_text_alone() -> None:
    cmd = ["DatasetConsumptionConfig:zz", "DatasetOutputConfig:zz", "$AZUREML_DATAREFERENCE_zz",
           "DatasetConsumptionConfig:", "DatasetConsumptionConfig:1x", "plain", "$HOME", ""]
    assert render(cmd, VALUES) == cmd
    assert render(cmd, {}) == cmd


def test_render_takes_values_literally() -> None:
    # a replacement value is never read as a regex template (backslashes, group references)
    values = {"DatasetConsumptionConfig:a": r"C:\data\1 \g<0> $1"}
    assert render(["--p=DatasetConsumptionConfig:a"], values) == [r"--p=C:\data\1 \g<0> $1"]
    assert render([5, 0.5], values) == ["5", "0.5"]  # type: ignore[list-item]


# -- prepare ----------------------------------------------------------------------------------
class Cache:
    """A per-host blob cache laid out as ``<root>/<sha2>/<sha>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = f"{root}/{{sha2}}/{{sha}}"

    def put(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        path = self.path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)
        return sha, len(data)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "run" / "wd"
    wd.mkdir(parents=True)
    return wd


def file_input(name: str, rows: list[list[Any]], mode: str = "mount", kind: str = "file",
               **extra: Any) -> dict[str, Any]:
    manifest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
    return {"name": name, "token": f"DatasetConsumptionConfig:{name}", "kind": kind,
            "mode": mode, "path_on_compute": None,
            "dataset": {"id": f"{name}_ds:3", "name": f"{name}_ds", "version": 3},
            "options": {}, "ops": [], "files": rows, "manifest_sha256": manifest, **extra}


def two_files(cache: Cache) -> list[list[Any]]:
    sha1, n1 = cache.put(b"first file\n")
    sha2, n2 = cache.put(b"second\n")
    return [["a.txt", sha1, n1, "lake:d/a.txt"], ["sub/b.txt", sha2, n2, "lake:d/sub/b.txt"]]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_links_a_mount_and_copies_a_download(cache: Cache, workdir: Path) -> None:
    rows = two_files(cache)
    job = {"input_blobs": cache.template,
           "inputs": [file_input("m", rows), file_input("d", rows, mode="download")]}
    out = prepare(job, workdir)
    m, d = Path(out.values["DatasetConsumptionConfig:m"]), \
        Path(out.values["DatasetConsumptionConfig:d"])
    assert m == workdir.parent / "inputs" / "m" and d == workdir.parent / "inputs" / "d"
    want = {"a.txt": b"first file\n", "sub/b.txt": b"second\n"}
    assert tree(m) == want and tree(d) == want
    for rel, row in zip(("a.txt", "sub/b.txt"), rows, strict=True):
        blob = cache.path(row[1])
        assert (m / rel).stat().st_ino == blob.stat().st_ino  # linked, nothing copied
        assert stat.S_IMODE((m / rel).stat().st_mode) == 0o444
        assert (d / rel).stat().st_ino != blob.stat().st_ino  # the run's own copy
        assert (d / rel).stat().st_mode & stat.S_IWUSR
    (d / "a.txt").write_bytes(b"changed")
    assert cache.path(rows[0][1]).read_bytes() == b"first file\n"
    assert (out.linked, out.copied) == (2, 2)
    assert out.env["AZUREML_DATAREFERENCE_m"] == str(m)
    assert sorted(out.folders) == [str(d), str(m)]
    doc = json.loads(Path(out.env[ENV_INPUTS_FILE]).read_text())
    assert doc["version"] == 1 and doc["inputs"]["m"]["path"] == str(m)
    assert doc["inputs"]["m"]["files"] == [["lake:d/a.txt", str(m / "a.txt"), rows[0][2]],
                                           ["lake:d/sub/b.txt", str(m / "sub/b.txt"),
                                            rows[1][2]]]


def test_prepare_single_file_direct_and_outputs(cache: Cache, workdir: Path) -> None:
    sha, size = cache.put(b"only one\n")
    row = [["one.txt", sha, size, "lake:x/one.txt"]]
    job = {"input_blobs": cache.template,
           "inputs": [file_input("one", row),
                      file_input("tab", row, mode="direct", kind="tabular")],
           "outputs": [{"name": "o", "token": "DatasetOutputConfig:o"}]}
    out = prepare(job, workdir)
    one = Path(out.values["DatasetConsumptionConfig:one"])
    assert one.name == "one.txt" and one.read_bytes() == b"only one\n"  # the file itself
    assert out.values["DatasetConsumptionConfig:tab"] == "tab_ds:3"  # direct: the id
    assert Path(out.env["AZUREML_DATAREFERENCE_tab"]).is_dir()  # a folder, even of one file
    o = Path(out.values["DatasetOutputConfig:o"])
    assert o.is_dir() and list(o.iterdir()) == []
    assert render(["--o", "DatasetOutputConfig:o"], out.values) == ["--o", str(o)]


@pytest.mark.parametrize(("row", "match"), [
    (["a.txt", "ABCDEF", 3, "lake:a.txt"], r"input 'x': lake:a.txt: bad sha256 'ABCDEF'"),
    (["a.txt", "0" * 63, 3, "lake:a.txt"], "bad sha256"),
    (["../escape.txt", None, 3, "lake:a.txt"], r"input 'x': '../escape.txt' is not a relative"),
    (["sub/../../escape.txt", None, 3, "lake:a.txt"], "is not a relative path"),
    (["/etc/passwd", None, 3, "lake:a.txt"], "is not a relative path"),
    (["a/./b", None, 3, "lake:a.txt"], "is not a relative path"),
    (["", None, 3, "lake:a.txt"], "is not a relative path"),
    (["a.txt", "f" * 64, 3, "lake:a.txt"],
     r"input 'x': lake:a.txt \(sha256 ffffffffffff...\) is not in this host's data cache"),
    (["a.txt", None, 999, "lake:a.txt"],
     r"input 'x': the cached copy of lake:a.txt has 3 bytes, not the recorded 999"),
])
def test_prepare_refuses_a_bad_row_naming_the_input(cache: Cache, workdir: Path,
                                                     row: list[Any], match: str) -> None:
    sha, _ = cache.put(b"abc")
    row = [row[0], sha if row[1] is None else row[1], *row[2:]]
    for mode in ("mount", "download"):
        with pytest.raises(BindingError, match=match):
            prepare({"input_blobs": cache.template, "inputs": [file_input("x", [row], mode)]},
                    workdir)
    # nothing was written outside the run's folder
    top = workdir.parents[1]
    assert sorted(p.name for p in top.iterdir()) == ["cache", "run"]
    assert not list(top.rglob("escape.txt")) and not list(top.rglob("passwd"))


def test_prepare_refuses_bad_names_and_a_missing_cache(cache: Cache, workdir: Path) -> None:
    sha, size = cache.put(b"abc")
    row = [["a.txt", sha, size, "lake:a.txt"]]
    for bad in ("bad-name", "", "../x", "a" * 129):
        with pytest.raises(BindingError, match="input name .* is not valid"):
            prepare({"input_blobs": cache.template, "inputs": [file_input(bad, row)]}, workdir)
        with pytest.raises(BindingError, match="output name .* is not valid"):
            prepare({"outputs": [{"name": bad, "token": "DatasetOutputConfig:x"}]}, workdir)
    with pytest.raises(BindingError, match="input 'x': this target gave no data cache"):
        prepare({"inputs": [file_input("x", row)]}, workdir)


# -- shared read-only views (a target that gives ``input_views``) -------------------------------
def view_job(cache: Cache, views: Path, rows: list[list[Any]], name: str = "m"
             ) -> dict[str, Any]:
    return {"input_blobs": cache.template, "input_views": str(views),
            "inputs": [file_input(name, rows)]}


def test_a_view_holds_exactly_the_input_files_and_is_reused(
        cache: Cache, workdir: Path, tmp_path: Path) -> None:
    rows = two_files(cache)
    views = tmp_path / "views"
    first = prepare(view_job(cache, views, rows), workdir)
    path = Path(first.values["DatasetConsumptionConfig:m"])
    assert path.is_relative_to(views)
    assert tree(path) == {"a.txt": b"first file\n", "sub/b.txt": b"second\n"}
    assert sorted(p.name for p in path.iterdir()) == ["a.txt", "sub"]
    assert first.folders == []  # shared: not removed with the run
    other = workdir.parent.parent / "run2" / "wd"
    other.mkdir(parents=True)
    second = prepare(view_job(cache, views, rows, name="again"), other)
    assert second.values["DatasetConsumptionConfig:again"] == str(path)
    assert (second.reused, second.linked, second.copied) == (2, 0, 0)
    if not ROOT:  # root ignores the mode bits
        with pytest.raises(PermissionError):
            (path / "new.txt").write_text("x")


def test_a_reused_view_is_refused_when_the_cache_changed(
        cache: Cache, workdir: Path, tmp_path: Path) -> None:
    rows = two_files(cache)
    views = tmp_path / "views"
    prepare(view_job(cache, views, rows), workdir)
    blob = cache.path(rows[0][1])
    blob.chmod(0o644)
    blob.write_bytes(b"short")  # the view links this very file
    with pytest.raises(BindingError, match=r"input 'm'.*lake:d/a.txt has 5 bytes"):
        prepare(view_job(cache, views, rows), workdir)
