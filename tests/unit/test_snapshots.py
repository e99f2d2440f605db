"""Unit tests of runyard.snapshots: ids, stat cache, ignore rules, limits, restore, concurrency."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runyard.snapshots as snapshots_pkg
import runyard.snapshots.statcache as statcache_mod
import runyard.snapshots.store as store_mod
from runyard.errors import InvalidParameter, NotFound, SnapshotTooLarge
from runyard.snapshots import (
    IgnoreRules,
    ManifestEntry,
    SnapshotInfo,
    SnapshotStore,
    collect_files,
)

pytestmark = pytest.mark.unit


# -- helpers ------------------------------------------------------------------------------


def write(root: Path, rel: str, data: bytes | str = b"x", mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def settle() -> None:
    """Let freshly written files leave the stat cache's racy window (50 ms by default)."""
    time.sleep(statcache_mod.RACY_WINDOW_NS / 1e9 + 0.05)


def paths(source: Path, **kw: Any) -> list[str]:
    return [rel for rel, _ in collect_files(source, **kw)]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write(root, "train.py", "print('train')\n", mode=0o755)
    write(root, "lib/util.py", "def f():\n    return 1\n")
    write(root, "lib/data/config.json", '{"a": 1}')
    write(root, "README.md", "# readme\n")
    return root


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "ws" / ".runyard" / "snapshots")


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every file the store reads (hashes)."""
    calls: list[str] = []
    real = store_mod._hash_file

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store_mod, "_hash_file", counting)
    return calls


def all_store_files(store: SnapshotStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []


def assert_store_consistent(store: SnapshotStore) -> None:
    """Every blob matches its name; no temp file is left behind."""
    blobs = list((store.root / "blobs").glob("*/*"))
    assert blobs
    for blob in blobs:
        assert sha(blob.read_bytes()) == blob.parent.name + blob.name
    assert list((store.root / "tmp").iterdir()) == []


# -- ids -----------------------------------------------------------------------------------


def test_take_returns_info_and_writes_layout(src: Path, store: SnapshotStore) -> None:
    info = store.take(src)
    assert isinstance(info, SnapshotInfo)
    assert info.file_count == 4
    assert info.total_bytes == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    assert info.new_blobs == 4 and info.new_bytes == info.total_bytes
    manifest_file = store.root / "manifests" / f"{info.id}.json"
    assert sha(manifest_file.read_bytes()) == info.id
    assert store.exists(info.id)
    blob = sha(b"# readme\n")
    assert store.blob_path(blob) == store.root / "blobs" / blob[:2] / blob[2:]
    assert store.blob_path(blob).read_bytes() == b"# readme\n"
    assert_store_consistent(store)


def test_manifest_entries(src: Path, store: SnapshotStore) -> None:
    info = store.take(src)
    entries = store.manifest(info.id)
    assert [e.path for e in entries] == [
        "README.md",
        "lib/data/config.json",
        "lib/util.py",
        "train.py",
    ]
    train = entries[-1]
    assert train == ManifestEntry("train.py", sha(b"print('train')\n"), 15, 0o755)
    assert entries[0].mode == 0o644


def test_unchanged_dir_same_id(src: Path, store: SnapshotStore) -> None:
    first = store.take(src)
    second = store.take(src)
    assert second.id == first.id
    assert second.new_blobs == 0 and second.new_bytes == 0
    assert second.file_count == first.file_count


def test_same_tree_elsewhere_same_id(src: Path, store: SnapshotStore, tmp_path: Path) -> None:
    other = tmp_path / "copy"
    for rel, st in collect_files(src):
        write(other, rel, (src / rel).read_bytes(), mode=st.st_mode & 0o777)
    assert store.take(other).id == store.take(src).id


def test_content_change_changes_id(src: Path, store: SnapshotStore) -> None:
    before = store.take(src).id
    write(src, "lib/util.py", "def f():\n    return 2\n")
    after = store.take(src)
    assert after.id != before
    assert after.new_blobs == 1
    assert {e.path: e.blob for e in store.manifest(after.id)}["lib/util.py"] == sha(
        b"def f():\n    return 2\n"
    )


def test_mode_change_changes_id(src: Path, store: SnapshotStore) -> None:
    before = store.take(src).id
    (src / "README.md").chmod(0o755)
    after = store.take(src)
    assert after.id != before
    assert after.new_blobs == 0
    assert {e.path: e.mode for e in store.manifest(after.id)}["README.md"] == 0o755


def test_rename_changes_id(src: Path, store: SnapshotStore) -> None:
    before = store.take(src).id
    (src / "README.md").rename(src / "README.txt")
    after = store.take(src)
    assert after.id != before
    assert "README.txt" in {e.path for e in store.manifest(after.id)}


def test_new_and_deleted_file_change_id(src: Path, store: SnapshotStore) -> None:
    base = store.take(src).id
    write(src, "extra.py", "x = 1\n")
    added = store.take(src).id
    (src / "extra.py").unlink()
    assert added != base
    assert store.take(src).id == base


def test_identical_contents_stored_once(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "dups"
    for i in range(20):
        write(root, f"d{i % 3}/f{i}.txt", "same content " * 100)
    info = store.take(root)
    assert info.file_count == 20
    assert info.new_blobs == 1 and info.new_bytes == len("same content " * 100)
    assert len(list((store.root / "blobs").glob("*/*"))) == 1


def test_empty_source_dir(tmp_path: Path, store: SnapshotStore) -> None:
    (tmp_path / "empty").mkdir()
    info = store.take(tmp_path / "empty")
    assert info.file_count == 0 and info.total_bytes == 0
    assert store.manifest(info.id) == []


def test_empty_file(tmp_path: Path, store: SnapshotStore) -> None:
    write(tmp_path / "s", "empty.txt", b"")
    info = store.take(tmp_path / "s")
    assert store.manifest(info.id) == [ManifestEntry("empty.txt", sha(b""), 0, 0o644)]


# -- stat cache ----------------------------------------------------------------------------


def test_stat_cache_avoids_rereading(
    src: Path, store: SnapshotStore, hash_calls: list[str]
) -> None:
    settle()
    first = store.take(src)
    assert len(hash_calls) == 4
    hash_calls.clear()
    assert store.take(src).id == first.id
    assert hash_calls == []
    assert list((store.root / "statcache").glob("*.json"))

    write(src, "lib/util.py", "def f():\n    return 3\n")
    settle()
    changed = store.take(src)
    assert changed.id != first.id
    assert [Path(p).name for p in hash_calls] == ["util.py"]


def test_stat_cache_is_per_source_dir(
    src: Path, store: SnapshotStore, tmp_path: Path, hash_calls: list[str]
) -> None:
    other = tmp_path / "other"
    write(other, "train.py", "print('train')\n", mode=0o755)
    settle()
    store.take(src)
    store.take(other)
    hash_calls.clear()
    store.take(src)
    store.take(other)
    assert hash_calls == []
    assert len(list((store.root / "statcache").glob("*.json"))) == 2


def test_same_size_change_with_restored_mtime_is_detected(src: Path, store: SnapshotStore) -> None:
    path = src / "lib" / "util.py"
    settle()
    before = store.take(src)
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(b"1", b"7"))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back; ctime moves on
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    after = store.take(src)
    assert after.id != before.id


def test_recently_changed_files_are_hashed_again(
    src: Path, store: SnapshotStore, hash_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settle()
    store.take(src)
    monkeypatch.setattr(statcache_mod, "RACY_WINDOW_NS", 3_600 * 10**9)
    write(src, "README.md", "# changed\n")
    hash_calls.clear()
    first = store.take(src)
    second = store.take(src)  # README.md changed too recently to be cached: read again
    assert second.id == first.id
    assert [Path(p).name for p in hash_calls] == ["README.md", "README.md"]


def _fake_stat(mtime_ns: int, ctime_ns: int) -> os.stat_result:
    values = [0] * os.stat_result.n_fields
    values[0] = 0o100644
    values[14], values[15] = mtime_ns, ctime_ns  # st_mtime_ns, st_ctime_ns
    st = os.stat_result(values)
    assert (st.st_mtime_ns, st.st_ctime_ns) == (mtime_ns, ctime_ns)
    return st


def test_is_racy_windows() -> None:
    now = time.time_ns()
    one_second_ago = now - 10**9 + 123  # fine-grained clock
    assert not statcache_mod.is_racy(_fake_stat(one_second_ago, one_second_ago), now)
    assert statcache_mod.is_racy(_fake_stat(one_second_ago, now - 10**6), now)  # ctime
    assert statcache_mod.is_racy(_fake_stat(now - 10**6, one_second_ago), now)  # mtime
    assert statcache_mod.is_racy(_fake_stat(now + 10**9, one_second_ago), now)  # future
    whole = (now // 10**9 - 1) * 10**9  # whole seconds: a coarse filesystem clock
    assert statcache_mod.is_racy(_fake_stat(whole, whole), now)
    assert not statcache_mod.is_racy(_fake_stat(whole - 3 * 10**9, whole - 3 * 10**9), now)


def test_file_changed_during_read_is_recorded_as_read_and_not_cached(
    src: Path, store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    settle()
    target = src / "lib" / "util.py"
    real = store_mod._hash_file

    def change_then_read(path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("util.py"):
            with open(path, "ab") as f:
                f.write(b"# appended after the stat\n")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store_mod, "_hash_file", change_then_read)
    info = store.take(src)
    entry = {e.path: e for e in store.manifest(info.id)}["lib/util.py"]
    content = target.read_bytes()
    assert entry.blob == sha(content) and entry.size == len(content)
    (cache_file,) = (store.root / "statcache").glob("*.json")
    cached = json.loads(cache_file.read_bytes())["entries"]
    assert "lib/util.py" not in cached
    assert "README.md" in cached


def test_corrupt_stat_cache_is_ignored(src: Path, store: SnapshotStore) -> None:
    first = store.take(src).id
    for cache_file in (store.root / "statcache").glob("*.json"):
        cache_file.write_text("{not json")
    assert store.take(src).id == first


def test_lost_blob_is_written_again(src: Path, store: SnapshotStore) -> None:
    settle()
    info = store.take(src)
    blob = sha(b"# readme\n")
    store.blob_path(blob).unlink()
    (store.root / "manifests" / f"{info.id}.json").unlink()
    again = store.take(src)  # the stat cache still knows README.md; its blob must come back
    assert again.id == info.id
    assert again.new_blobs == 1
    assert store.blob_path(blob).read_bytes() == b"# readme\n"


def test_large_files_are_streamed(
    tmp_path: Path, store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "SMALL_FILE_BYTES", 1000)
    monkeypatch.setattr(store_mod, "CHUNK_BYTES", 777)
    big = os.urandom(10_000)
    root = tmp_path / "big"
    write(root, "a.bin", big)
    write(root, "b.bin", big)  # same content: second temp file is dropped
    write(root, "small.txt", "small")
    info = store.take(root)
    assert info.new_blobs == 2 and info.new_bytes == len(big) + 5
    assert store.blob_path(sha(big)).read_bytes() == big
    assert_store_consistent(store)


# -- ignore rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/er/a.log", False, True),
        ("*.log", "a.logx", False, None),
        ("build/", "build", True, True),
        ("build/", "build", False, None),
        ("build/", "sub/build", True, True),
        ("/top.txt", "top.txt", False, True),
        ("/top.txt", "sub/top.txt", False, None),
        ("a/b.txt", "a/b.txt", False, True),
        ("a/b.txt", "x/a/b.txt", False, None),
        ("**/cache", "cache", True, True),
        ("**/cache", "x/y/cache", True, True),
        ("logs/**", "logs/a/b.txt", False, True),
        ("logs/**", "logs", True, None),
        ("a/**/z.txt", "a/z.txt", False, True),
        ("a/**/z.txt", "a/b/c/z.txt", False, True),
        ("a/**/z.txt", "b/a/z.txt", False, None),
        ("a**b", "axxb", False, True),
        ("a**b", "ax/xb", False, None),
        ("file?.txt", "file1.txt", False, True),
        ("file?.txt", "file12.txt", False, None),
        ("*.txt", "dir/x.txt", False, True),
        ("d*/x", "dd/x", False, True),
        ("d*/x", "d/e/x", False, None),
        ("file[0-9].txt", "file5.txt", False, True),
        ("file[0-9].txt", "filea.txt", False, None),
        ("file[!0-9].txt", "filea.txt", False, True),
        ("file[!0-9].txt", "file5.txt", False, None),
        ("[[:upper:]]*.md", "README.md", False, True),
        ("[[:upper:]]*.md", "readme.md", False, None),
        ("a[/]b", "a/b", False, None),
        ("\\#hash", "#hash", False, True),
        ("\\!bang", "!bang", False, True),
        ("trailing   ", "trailing", False, True),
        ("space\\ ", "space ", False, True),
        ("[unclosed", "[unclosed", False, True),
        ("!*.log", "a.log", False, False),
        ("# comment", "# comment", False, None),
    ],
)
def test_ignore_pattern(pattern: str, path: str, is_dir: bool, expected: bool | None) -> None:
    assert IgnoreRules.parse(pattern).match(path, is_dir) is expected


def test_ignore_last_match_wins_and_base() -> None:
    rules = IgnoreRules.parse("*.log\n!keep.log\n\n# c\n", base="sub")
    assert rules.match("sub/a.log", False) is True
    assert rules.match("sub/keep.log", False) is False
    assert rules.match("other/a.log", False) is None
    assert IgnoreRules.parse("!keep.log\n*.log\n").match("keep.log", False) is True


def test_runyardignore_overrides_gitignore(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, ".gitignore", "*.log\n")
    write(root, ".runyardignore", "*.tmp\n")
    write(root, "a.log")
    write(root, "a.tmp")
    write(root, "a.py")
    assert paths(root) == [".gitignore", ".runyardignore", "a.log", "a.py"]


def test_gitignore_used_without_runyardignore(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, ".gitignore", "*.log\nbuild/\n/top.txt\n")
    write(root, "a.log")
    write(root, "sub/b.log")
    write(root, "build/out.bin")
    write(root, "sub/build/out.bin")
    write(root, "top.txt")
    write(root, "sub/top.txt")
    write(root, "keep.py")
    assert paths(root) == [".gitignore", "keep.py", "sub/top.txt"]


def test_ignore_negation_and_dir_only(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, ".runyardignore", "*.csv\n!small.csv\ndata/\nbuild/\n!build/keep.txt\n")
    write(root, "big.csv")
    write(root, "small.csv")
    write(root, "data/x.bin")  # directory: excluded
    write(root, "sub/data", "a file named data is kept (pattern is dir-only)")
    write(root, "build/keep.txt")  # parent excluded: cannot be re-included
    assert paths(root) == [".runyardignore", "small.csv", "sub/data"]


def test_ignore_double_star_and_anchoring(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, ".gitignore", "**/cache\nlogs/**\na/**/z.txt\nconf/local.yaml\n")
    write(root, "cache/x")
    write(root, "m/n/cache/y")
    write(root, "logs/2024/run.txt")
    write(root, "a/z.txt")
    write(root, "a/b/c/z.txt")
    write(root, "a/keep.txt")
    write(root, "conf/local.yaml")
    write(root, "x/conf/local.yaml")
    assert paths(root) == [".gitignore", "a/keep.txt", "x/conf/local.yaml"]


def test_nested_ignore_files(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, ".gitignore", "*.log\n")
    write(root, "sub/.gitignore", "!keep.log\n*.dat\n")
    write(root, "keep.log")
    write(root, "sub/keep.log")
    write(root, "sub/other.log")
    write(root, "sub/x.dat")
    write(root, "y.dat")
    write(root, "sub/deeper/z.dat")
    assert paths(root) == [".gitignore", "sub/.gitignore", "sub/keep.log", "y.dat"]


def test_nested_runyardignore_beats_gitignore_in_its_dir(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, "sub/.gitignore", "*.a\n")
    write(root, "sub/.runyardignore", "*.b\n")
    write(root, "sub/x.a")
    write(root, "sub/x.b")
    assert paths(root) == ["sub/.gitignore", "sub/.runyardignore", "sub/x.a"]


def test_ignore_rules_apply_to_snapshot(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "s"
    write(root, ".runyardignore", "outputs/\n")
    write(root, "train.py", "pass\n")
    write(root, "outputs/model.bin", os.urandom(1000))
    info = store.take(root)
    assert {e.path for e in store.manifest(info.id)} == {".runyardignore", "train.py"}


# -- default excludes, exclude paths, symlinks ---------------------------------------------


def test_default_excludes(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, "train.py")
    write(root, ".git/HEAD")
    write(root, "pkg/.git", "gitdir: elsewhere")  # a worktree/submodule pointer file
    write(root, "__pycache__/m.cpython-311.pyc")
    write(root, "pkg/__pycache__/n.pyc")
    write(root, "pkg/stray.pyc")
    write(root, "myenv/pyvenv.cfg", "home = /usr/bin\n")
    write(root, "myenv/lib/site.py")
    write(root, ".venv/bin/python")
    write(root, "venv/bin/python")
    write(root, ".runyard/runyard.db")
    write(root, "aml_config/run.yaml")
    write(root, ".azureml/config.json")
    write(root, "pkg/venv.py")  # only directories named venv are excluded
    assert paths(root) == [
        ".azureml/config.json",
        "aml_config/run.yaml",
        "pkg/venv.py",
        "train.py",
    ]


def test_explicit_exclude_paths(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, "train.py")
    write(root, "workspace/db.sqlite")
    write(root, "data/big.bin")
    write(root, "data/small.txt")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    got = paths(root, exclude=[root / "workspace", "data/big.bin", outside, str(root)])
    assert got == ["data/small.txt", "train.py"]


def test_store_root_inside_source_is_excluded(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, "train.py")
    inner = SnapshotStore(root / "snapstore")
    first = inner.take(root)
    second = inner.take(root)
    assert first.id == second.id and first.file_count == 1


def test_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write(root, "real.py", "x = 1\n", mode=0o755)
    write(root, "dir/inner.txt")
    outside = write(tmp_path, "outside.txt", "secret")
    (root / "link.py").symlink_to("real.py")
    (root / "out.txt").symlink_to(outside)
    (root / "dirlink").symlink_to(root / "dir")
    (root / "dangling").symlink_to(root / "nope")
    (root / "loop").symlink_to(root / "loop")
    files = dict(collect_files(root))
    assert sorted(files) == ["dir/inner.txt", "link.py", "real.py"]
    assert files["link.py"].st_size == 6 and files["link.py"].st_mode & 0o111


def test_symlink_content_is_snapshotted(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "s"
    write(root, "real.py", "x = 1\n")
    (root / "link.py").symlink_to("real.py")
    info = store.take(root)
    entries = {e.path: e for e in store.manifest(info.id)}
    assert entries["link.py"].blob == entries["real.py"].blob == sha(b"x = 1\n")
    dest = store.restore(info.id, tmp_path / "out")
    assert not (dest / "link.py").is_symlink()
    assert (dest / "link.py").read_text() == "x = 1\n"


# -- source and limits ---------------------------------------------------------------------


def test_source_must_be_a_directory(tmp_path: Path, store: SnapshotStore) -> None:
    with pytest.raises(InvalidParameter) as missing:
        store.take(tmp_path / "nope")
    assert missing.value.field == "source_directory"
    assert "does not exist" in missing.value.message
    file = write(tmp_path, "file.txt")
    with pytest.raises(InvalidParameter, match="not a directory") as not_dir:
        collect_files(file)
    assert not_dir.value.field == "source_directory"
    assert not store.root.exists()


def test_over_max_bytes_names_biggest_and_writes_nothing(
    tmp_path: Path, store: SnapshotStore
) -> None:
    root = tmp_path / "s"
    write(root, "train.py", "pass\n")
    write(root, "data/huge.bin", b"\0" * 50_000)
    write(root, "data/medium.bin", b"\1" * 20_000)
    write(root, "models/m.pt", b"\2" * 30_000)
    with pytest.raises(SnapshotTooLarge) as exc:
        store.take(root, max_bytes=60_000)
    err = exc.value
    assert isinstance(err, InvalidParameter) and err.field == "source_directory"
    msg = err.message
    assert "data/huge.bin (48.8 KiB)" in msg
    assert "data/ (68.4 KiB, 2 files)" in msg
    assert msg.index("data/huge.bin") < msg.index("models/m.pt") < msg.index("data/medium")
    assert "58.6 KiB" in msg  # the limit
    assert ".runyardignore" in msg and "snapshot_max_bytes / snapshot_max_files" in msg
    assert err.details["total_bytes"] == 100_005
    assert err.details["largest_files"][0] == {"path": "data/huge.bin", "bytes": 50_000}
    assert err.details["largest_directories"][0] == {
        "path": "data",
        "bytes": 70_000,
        "files": 2,
    }
    assert all_store_files(store) == []


def test_over_max_files(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "s"
    for i in range(12):
        write(root, f"many/f{i}.txt", str(i))
    write(root, "few/a.txt")
    write(root, "top.txt")
    with pytest.raises(SnapshotTooLarge) as exc:
        store.take(root, max_files=10)
    msg = exc.value.message
    assert "14 files over the limit of 10" in msg
    assert "many/ (" in msg and "12 files)" in msg
    assert msg.index("many/") < msg.index("few/")
    assert exc.value.details["file_count"] == 14
    assert all_store_files(store) == []


def test_limits_count_after_ignore_rules(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "s"
    write(root, ".runyardignore", "*.bin\n")
    write(root, "train.py", "pass\n")
    write(root, "huge.bin", b"\0" * 100_000)
    info = store.take(root, max_bytes=1_000, max_files=2)
    assert info.file_count == 2


def test_invalid_limits(src: Path, store: SnapshotStore) -> None:
    with pytest.raises(InvalidParameter) as exc:
        store.take(src, max_bytes=-1)
    assert exc.value.field == "snapshot_max_bytes"


def test_read_error_becomes_invalid_parameter(
    src: Path, store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: str, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(store_mod, "_hash_file", denied)
    with pytest.raises(InvalidParameter, match=r"cannot read [\w/.]+: Permission denied") as exc:
        store.take(src)
    assert exc.value.field == "source_directory"
    assert not store.root.joinpath("manifests").exists() or not any(
        store.root.joinpath("manifests").iterdir()
    )


# -- restore, lookups ----------------------------------------------------------------------


def test_restore_round_trip(src: Path, store: SnapshotStore, tmp_path: Path) -> None:
    write(src, "empty.txt", b"")
    info = store.take(src)
    dest = store.restore(info.id, tmp_path / "run" / "code")
    assert dest == tmp_path / "run" / "code"
    restored = {rel: (dest / rel).read_bytes() for rel in paths(dest)}
    original = {rel: (src / rel).read_bytes() for rel in paths(src)}
    assert restored == original
    assert os.access(dest / "train.py", os.X_OK)
    assert (dest / "train.py").stat().st_mode & 0o777 == 0o755
    assert (dest / "lib" / "util.py").stat().st_mode & 0o777 == 0o644
    # A copy, not a link into the store: changing it leaves the snapshot intact.
    assert (dest / "README.md").stat().st_nlink == 1
    (dest / "README.md").write_text("modified by the run")
    assert store.blob_path(sha(b"# readme\n")).read_bytes() == b"# readme\n"


def test_restore_into_existing_dir_replaces_files(
    src: Path, store: SnapshotStore, tmp_path: Path
) -> None:
    info = store.take(src)
    dest = tmp_path / "dest"
    write(dest, "README.md", "old")
    write(dest, "untouched.txt", "stays")
    store.restore(info.id, dest)
    assert (dest / "README.md").read_text() == "# readme\n"
    assert (dest / "untouched.txt").read_text() == "stays"


def test_restore_many_files(tmp_path: Path, store: SnapshotStore) -> None:
    root = tmp_path / "s"
    for i in range(60):
        write(root, f"d{i % 7}/f{i}.txt", f"content {i}", mode=0o755 if i % 5 == 0 else 0o644)
    info = store.take(root)
    dest = store.restore(info.id, tmp_path / "out")
    assert store.take(dest).id == info.id


def test_unknown_snapshot(store: SnapshotStore, tmp_path: Path) -> None:
    unknown = "0" * 64
    assert not store.exists(unknown)
    with pytest.raises(NotFound):
        store.manifest(unknown)
    with pytest.raises(NotFound):
        store.restore(unknown, tmp_path / "out")
    with pytest.raises(NotFound):
        store.manifest("../../etc/passwd")
    assert not store.exists("../x")


def test_restore_with_missing_blob_is_not_found(
    src: Path, store: SnapshotStore, tmp_path: Path
) -> None:
    info = store.take(src)
    store.blob_path(sha(b"# readme\n")).unlink()
    with pytest.raises(NotFound, match="incomplete"):
        store.restore(info.id, tmp_path / "out")


def test_missing_blobs(src: Path, store: SnapshotStore) -> None:
    info = store.take(src)
    blobs = [e.blob for e in store.manifest(info.id)]
    assert store.missing_blobs(blobs) == []
    unknown = sha(b"never stored")
    assert store.missing_blobs([unknown, blobs[0], unknown]) == [unknown]
    store.blob_path(blobs[1]).unlink()
    assert store.missing_blobs(blobs) == [blobs[1]]
    with pytest.raises(InvalidParameter):
        store.missing_blobs(["not-a-hash"])
    with pytest.raises(InvalidParameter):
        store.blob_path("../../escape" + "0" * 52)


def test_store_root_created_lazily(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "lazy")
    assert not store.exists("0" * 64)
    assert store.missing_blobs([sha(b"a")]) == [sha(b"a")]
    assert not (tmp_path / "lazy").exists()


def test_public_api() -> None:
    assert set(snapshots_pkg.__all__) >= {
        "SnapshotStore",
        "SnapshotInfo",
        "ManifestEntry",
        "collect_files",
    }
    for name in snapshots_pkg.__all__:
        assert getattr(snapshots_pkg, name) is not None


# -- concurrency ---------------------------------------------------------------------------


def _big_tree(root: Path, n: int = 200) -> Path:
    for i in range(n):
        write(root, f"d{i % 10}/f{i}.bin", os.urandom(2_000 + 37 * i))
    write(root, "shared1.txt", "same")
    write(root, "shared2.txt", "same")
    return root


def _run_in_threads(fns: list[Callable[[], SnapshotInfo]]) -> list[SnapshotInfo]:
    barrier = threading.Barrier(len(fns))
    results: list[SnapshotInfo | None] = [None] * len(fns)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fns[i]()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return [r for r in results if r is not None]


def test_two_threads_same_snapshot(tmp_path: Path) -> None:
    root = _big_tree(tmp_path / "s")
    store_root = tmp_path / "store"
    a, b = _run_in_threads(
        [lambda: SnapshotStore(store_root).take(root), lambda: SnapshotStore(store_root).take(root)]
    )
    assert a.id == b.id and a.file_count == b.file_count == 202
    store = SnapshotStore(store_root)
    assert_store_consistent(store)
    assert len(list((store_root / "blobs").glob("*/*"))) == 201
    dest = store.restore(a.id, tmp_path / "out")
    assert store.take(dest).id == a.id


def test_two_processes_same_snapshot(tmp_path: Path) -> None:
    root = _big_tree(tmp_path / "s", n=400)
    store_root = tmp_path / "store"
    src_dir = Path(store_mod.__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src_dir), os.environ.get("PYTHONPATH", "")]),
    }
    code = (
        "import sys, time\n"
        "from runyard.snapshots import SnapshotStore\n"
        "start = float(sys.argv[3])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "print(SnapshotStore(sys.argv[1]).take(sys.argv[2]).id)\n"
    )
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(store_root), str(root), start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    ids = {out.strip() for out, _ in outs}
    assert len(ids) == 1
    store = SnapshotStore(store_root)
    (snapshot_id,) = ids
    assert store.exists(snapshot_id)
    assert len(store.manifest(snapshot_id)) == 402
    assert_store_consistent(store)
    assert store.take(root).id == snapshot_id
