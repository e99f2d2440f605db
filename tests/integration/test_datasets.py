"""Datasets on real datastores (the workspace folder, a local folder, Azure Blob on a real
Azurite emulator) with real pandas parsing and the real SQLite store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from datastores_support import ACCOUNT, KEY, Azurite
from runyard import Workspace
from runyard.dataset import Dataset, FileDataset, TabularDataset
from runyard.datastore import Datastore
from runyard.errors import (
    AlreadyExists,
    DatasetChanged,
    InvalidParameter,
    NotFound,
    NotSupported,
)
from runyard.secrets import ENV_CONFIG_HOME

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_HOME, str(tmp_path / "config"))
    monkeypatch.delenv("RUNYARD_SECRET_KEY", raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws")


def csv_folder(root: Path, n: int = 3, rows: int = 10) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        (root / ("sub" if i % 2 else "") / f"part{i}.csv").write_text(
            "a,b\n" + "".join(f"{i},{j}\n" for j in range(rows)))
    (root / "notes.txt").write_text("not a csv\n")
    return root


def local_ds(ws: Workspace, tmp_path: Path, name: str = "lake") -> Datastore:
    return Datastore.register_local_folder(ws, name, csv_folder(tmp_path / name))


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# -- tabular -----------------------------------------------------------------------------------
def test_delimited_files_glob_parse_and_steps(ws: Workspace, tmp_path: Path) -> None:
    ds = local_ds(ws, tmp_path)
    tab = Dataset.Tabular.from_delimited_files((ds, "**/*.csv"))
    assert isinstance(tab, TabularDataset)
    assert [f.path for f in tab.files] == ["part0.csv", "part2.csv", "sub/part1.csv"]
    df = tab.to_pandas_dataframe()
    assert list(df.columns) == ["a", "b"] and len(df) == 30
    assert str(df["a"].dtype) == "int64"
    assert tab.take(4).to_pandas_dataframe()["b"].tolist() == [0, 1, 2, 3]
    assert len(tab.skip(25).to_pandas_dataframe()) == 5
    left, right = tab.random_split(0.7, seed=3)
    a, b = left.to_pandas_dataframe(), right.to_pandas_dataframe()
    assert len(a) + len(b) == 30 and len(a) > 0 and len(b) > 0
    both = sorted(zip(a["a"].tolist() + b["a"].tolist(), a["b"].tolist() + b["b"].tolist(),
                      strict=True))
    assert both == sorted(zip(df["a"].tolist(), df["b"].tolist(), strict=True))
    again, _ = tab.random_split(0.7, seed=3)
    assert again.to_pandas_dataframe().equals(a)
    sample = tab.take_sample(0.5, seed=1).to_pandas_dataframe()
    assert 0 < len(sample) < 30
    # one folder, no glob: every file under it (only CSVs there)
    sub = Dataset.Tabular.from_delimited_files(ds.path("sub"), include_path=True)
    sdf = sub.to_pandas_dataframe()
    assert set(sdf["Path"]) == {"/sub/part1.csv"} and len(sdf) == 10


def test_parse_options_and_column_types(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "semi"
    root.mkdir()
    (root / "x.csv").write_text("1;01\n2;02\n", encoding="utf8")
    ds = Datastore.register_local_folder(ws, "semi", root)
    tab = Dataset.Tabular.from_delimited_files((ds, "x.csv"), separator=";", header=False,
                                               infer_column_types=False)
    df = tab.to_pandas_dataframe()
    assert list(df.columns) == ["Column1", "Column2"]
    assert df["Column2"].tolist() == ["01", "02"]
    typed = Dataset.Tabular.from_delimited_files((ds, "x.csv"), separator=";", header=False,
                                                 set_column_types={"Column2": float})
    assert typed.to_pandas_dataframe()["Column2"].tolist() == [1.0, 2.0]
    with pytest.raises(InvalidParameter, match="set_column_types"):
        Dataset.Tabular.from_delimited_files((ds, "x.csv"), set_column_types={"a": "complex"})


def test_csv_that_does_not_parse_names_file_and_line(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    (root / "bad.csv").write_text("a,b\n1,2\n3,4\n5,6,7\n")
    ds = Datastore.register_local_folder(ws, "bad", root)
    with pytest.raises(InvalidParameter) as e:
        Dataset.Tabular.from_delimited_files((ds, "*.csv"))
    assert "bad:bad.csv" in str(e.value) and "line 4" in str(e.value)
    lazy = Dataset.Tabular.from_delimited_files((ds, "*.csv"), validate=False)
    with pytest.raises(InvalidParameter, match="line 4"):
        lazy.to_pandas_dataframe()


def test_parquet_without_pyarrow_says_so(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "pq"
    root.mkdir()
    (root / "x.parquet").write_bytes(b"PAR1 not really")
    ds = Datastore.register_local_folder(ws, "pq", root)
    tab = Dataset.Tabular.from_parquet_files((ds, "*.parquet"))
    try:
        import pyarrow  # type: ignore[import-not-found]  # noqa: F401, PLC0415
    except ImportError:
        with pytest.raises(NotSupported, match="pyarrow"):
            tab.to_pandas_dataframe()
    else:
        with pytest.raises(Exception):  # noqa: B017, PT011 - not a parquet file
            tab.to_pandas_dataframe()


# -- files, registration, cache -------------------------------------------------------------
def test_file_dataset_register_versions_get_and_download(ws: Workspace, tmp_path: Path) -> None:
    ds = local_ds(ws, tmp_path)
    fds = Dataset.File.from_files((ds, "**/*.csv"))
    assert isinstance(fds, FileDataset)
    assert fds.to_path() == ["/part0.csv", "/part2.csv", "/sub/part1.csv"]
    assert fds.take(1).to_path() == ["/part0.csv"]
    assert fds.skip(2).to_path() == ["/sub/part1.csv"]
    a, b = fds.random_split(0.5, seed=7)
    assert sorted(a.to_path() + b.to_path()) == sorted(fds.to_path())

    reg = fds.register(ws, "raw", description="raw csvs", tags={"src": "lake"})
    assert (reg.name, reg.version, reg.id) == ("raw", 1, "raw:1")
    assert reg.tags == {"src": "lake"} and reg.description == "raw csvs"
    lake = tmp_path / "lake"
    want = {f.path: (f.size, f.sha256) for f in reg.files}
    assert want["sub/part1.csv"] == ((lake / "sub/part1.csv").stat().st_size,
                                     sha(lake / "sub/part1.csv"))
    # identical definition: v1 returns the existing version
    assert fds.register(ws, "raw").version == 1
    # another definition without create_new_version: refused, nothing stored
    other = Dataset.File.from_files((ds, "*.csv"))
    with pytest.raises(AlreadyExists, match="create_new_version"):
        other.register(ws, "raw")
    assert other.register(ws, "raw", create_new_version=True).version == 2

    assert Dataset.get_by_name(ws, "raw").version == 2
    v1 = Dataset.get_by_name(ws, "raw", version=1)
    assert v1.to_path() == fds.to_path() and isinstance(v1, FileDataset)
    assert Dataset.get_by_id(ws, "raw:1").version == 1
    assert set(ws.datasets) == {"raw"} and ws.datasets["raw"].version == 2
    assert Dataset.get_all(ws)["raw"].id == "raw:2"

    got = v1.download(tmp_path / "out")
    assert sorted(Path(p).relative_to(tmp_path / "out").as_posix() for p in got) == [
        "part0.csv", "part2.csv", "sub/part1.csv"]
    assert (tmp_path / "out/sub/part1.csv").read_bytes() == (lake / "sub/part1.csv").read_bytes()
    (tmp_path / "out/part0.csv").write_text("mine")
    with pytest.raises(InvalidParameter, match="overwrite"):
        v1.download(tmp_path / "out")
    v1.download(tmp_path / "out", overwrite=True)
    assert (tmp_path / "out/part0.csv").read_bytes() == (lake / "part0.csv").read_bytes()
    tmp_paths = v1.download()
    assert all(os.path.isabs(p) and Path(p).is_file() for p in tmp_paths)


def test_mount_is_a_shared_read_only_cache(ws: Workspace, tmp_path: Path) -> None:
    ds = local_ds(ws, tmp_path)
    reg = Dataset.File.from_files((ds, "**/*.csv")).register(ws, "m")
    with reg.mount(tmp_path / "mnt") as ctx:
        assert ctx.fetched == 3
        f = Path(ctx.mount_point) / "sub/part1.csv"
        assert f.read_bytes() == (tmp_path / "lake/sub/part1.csv").read_bytes()
        assert not os.access(f, os.W_OK) or os.geteuid() == 0
        assert not (f.stat().st_mode & 0o222)
    assert not (tmp_path / "mnt/sub/part1.csv").exists()
    # a second mount (another object, same bytes) fetches nothing
    again = Dataset.get_by_name(ws, "m").mount()
    again.start()
    try:
        assert again.fetched == 0
        assert sorted(p.name for p in Path(again.mount_point).rglob("*.csv")) == [
            "part0.csv", "part1.csv", "part2.csv"]
    finally:
        again.stop()
    assert not Path(again.mount_point).exists()


def test_changed_data_is_detected_and_refused(ws: Workspace, tmp_path: Path) -> None:
    ds = local_ds(ws, tmp_path)
    reg = Dataset.Tabular.from_delimited_files((ds, "**/*.csv")).register(ws, "t")
    assert reg.data_changed_since_registration() == []
    (tmp_path / "lake/part2.csv").write_text("a,b\n9,9\n")
    assert reg.data_changed_since_registration() == ["lake:part2.csv"]
    fresh = Dataset.get_by_name(ws, "t")
    with pytest.raises(DatasetChanged) as e:
        fresh.to_pandas_dataframe()
    assert "lake:part2.csv" in str(e.value) and e.value.details["changed"] == ["lake:part2.csv"]
    (tmp_path / "lake/part0.csv").unlink()
    assert Dataset.get_by_name(ws, "t").data_changed_since_registration() == [
        "lake:part0.csv", "lake:part2.csv"]


def test_cached_bytes_survive_a_change(ws: Workspace, tmp_path: Path) -> None:
    """Files read once are served from the cache by their recorded hash."""
    ds = local_ds(ws, tmp_path)
    reg = Dataset.File.from_files((ds, "part0.csv")).register(ws, "one")
    before = Path(reg.download(tmp_path / "a")[0]).read_bytes()
    (tmp_path / "lake/part0.csv").write_text("changed")
    assert reg.data_changed_since_registration() == ["lake:part0.csv"]
    assert Path(reg.download(tmp_path / "b")[0]).read_bytes() == before


# -- bad input ---------------------------------------------------------------------------------
def test_bad_inputs_store_nothing(ws: Workspace, tmp_path: Path) -> None:
    ds = local_ds(ws, tmp_path)
    with pytest.raises(InvalidParameter, match=r"'\*\*/\*.json' matches no file on datastore "
                                               r"'lake'"):
        Dataset.File.from_files((ds, "**/*.json"))
    with pytest.raises(InvalidParameter, match=r"leaves the datastore"):
        Dataset.File.from_files((ds, "../secrets/*.csv"))
    with pytest.raises(InvalidParameter, match="is absolute"):
        Dataset.File.from_files((ds, "/etc/passwd"))
    with pytest.raises(InvalidParameter, match="local path"):
        Dataset.File.from_files(str(tmp_path / "lake"))
    with pytest.raises(NotFound, match="not registered"):
        Dataset.get_by_name(ws, "nope")
    Dataset.File.from_files((ds, "*.csv")).register(ws, "x")
    with pytest.raises(NotFound, match="no version 7"):
        Dataset.get_by_name(ws, "x", version=7)
    with pytest.raises(InvalidParameter, match="name"):
        Dataset.File.from_files((ds, "*.csv")).register(ws, "bad name!")
    with pytest.raises(InvalidParameter, match="percentage"):
        Dataset.File.from_files((ds, "*.csv")).random_split(1.5)
    ds.unregister()
    with pytest.raises(NotFound):
        Dataset.File.from_files((ds, "*.csv"))
    assert [d.name for d in ws.client.list_datasets()] == ["x"]


# -- Azure Blob on Azurite -------------------------------------------------------------------
def test_blob_datastore_dataset(ws: Workspace, azurite: Azurite, tmp_path: Path) -> None:
    azurite.service().create_container("dsets")  # type: ignore[attr-defined]
    store = Datastore.register_azure_blob_container(ws, "blobs", "dsets", ACCOUNT,
                                                    account_key=KEY, endpoint=azurite.url)
    src = csv_folder(tmp_path / "src")
    store.upload(src, "train", show_progress=False)
    tab = Dataset.Tabular.from_delimited_files((store, "train/**/*.csv"))
    assert len(tab.to_pandas_dataframe()) == 30
    reg = tab.register(ws, "blobtab")
    assert {f.sha256 for f in reg.files} == {sha(p) for p in src.rglob("*.csv")}
    ctx = Dataset.File.from_files((store, "train/sub")).mount()
    with ctx:
        assert ctx.fetched == 0  # sub/part1.csv was cached by the tabular read above
        assert (Path(ctx.mount_point) / "part1.csv").is_file()
    cc = azurite.service().get_container_client("dsets")  # type: ignore[attr-defined]
    cc.upload_blob("train/part0.csv", b"a,b\n1,1\n", overwrite=True)
    assert Dataset.get_by_name(ws, "blobtab").data_changed_since_registration() == [
        "blobs:train/part0.csv"]
    for p in (ws.path / ".runyard" / "cache" / "datasets").rglob("*"):
        if p.is_file():
            p.chmod(0o644)
            p.unlink()  # an empty cache: the changed blob must be fetched
    with pytest.raises(DatasetChanged) as e:
        Dataset.get_by_name(ws, "blobtab").to_pandas_dataframe()
    assert "blobs:train/part0.csv" in str(e.value)
    rec = ws.client.get_dataset("blobtab")
    canary = [repr(reg), str(e.value), json.dumps(e.value.to_dict()), json.dumps(rec.definition),
              json.dumps([f.to_json() for f in rec.files])]
    assert not any(KEY in c or KEY[:20] in c for c in canary)
