"""Datastores on real storage: the managed workspace folder, local folders, and Azure Blob on a
real Azurite emulator (started on a loopback port; see tests/datastores_support.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datastores_support import ACCOUNT, KEY, Azurite
from runyard import Workspace
from runyard.datastore import Datastore
from runyard.errors import AlreadyExists, InvalidParameter, NotFound, RunyardError
from runyard.secrets import ENV_CONFIG_HOME

pytestmark = pytest.mark.integration

WRONG_KEY = KEY[:-8] + "AAAAAAA="


@pytest.fixture(autouse=True)
def _key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_HOME, str(tmp_path / "config"))
    monkeypatch.delenv("RUNYARD_SECRET_KEY", raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws")


@pytest.fixture
def container(azurite: Azurite, request: pytest.FixtureRequest) -> str:
    name = "c" + format(abs(hash(request.node.nodeid)) % 10**12, "012d")
    azurite.service().create_container(name)  # type: ignore[attr-defined]
    return name


def csv_folder(root: Path, n: int = 5) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        (root / ("sub" if i % 2 else "") / f"part{i}.csv").write_text(
            "a,b\n" + "".join(f"{i},{j}\n" for j in range(100)))
    return root


def blob(ws: Workspace, azurite: Azurite, container: str, name: str = "blobs",
         **kw: object) -> Datastore:
    return Datastore.register_azure_blob_container(
        ws, name, container, ACCOUNT, account_key=KEY, endpoint=azurite.url, **kw)


# -- the managed workspace datastore ---------------------------------------------------------
def test_new_workspace_has_the_default_workspaceblobstore(ws: Workspace) -> None:
    ds = ws.get_default_datastore()
    assert ds.name == "workspaceblobstore" and ds.is_default
    assert list(ws.datastores) == ["workspaceblobstore"]
    assert Datastore(ws).name == Datastore.get(ws, "workspaceblobstore").name
    assert (ws.path / ".runyard" / "datastores" / "workspaceblobstore").is_dir()


def test_workspace_store_upload_skip_download(ws: Workspace, tmp_path: Path) -> None:
    src = csv_folder(tmp_path / "src")
    ds = ws.get_default_datastore()
    ref = ds.upload(src, "data/v1", show_progress=False)
    assert ref.path_on_datastore == "data/v1" and ref.datastore.name == ds.name
    assert ref.report is not None and len(ref.report.transferred) == 5
    again = ds.upload(src, "data/v1", show_progress=False).report
    assert again is not None and again.transferred == [] and len(again.unchanged) == 5
    # a changed file of the same size: the hash tells; kept unless overwrite=True
    f = src / "part0.csv"
    f.write_text(f.read_text().replace("0,1\n", "0,9\n"))
    kept = ds.upload(src, "data/v1", show_progress=False).report
    assert kept is not None and kept.kept == ["data/v1/part0.csv"]
    sent = ds.upload(src, "data/v1", overwrite=True, show_progress=False).report
    assert sent is not None and sent.transferred == ["data/v1/part0.csv"]
    out = tmp_path / "out"
    assert ds.download(out, prefix="data/v1", show_progress=False) == 5
    assert (out / "data/v1/sub/part1.csv").read_text() == (src / "sub/part1.csv").read_text()
    assert ds.download(out, prefix="data/v1", show_progress=False) == 0


# -- local folders ---------------------------------------------------------------------------
def test_local_folder_datastore(ws: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    ds = Datastore.register_local_folder(ws, "shared", folder)
    assert ds.datastore_type == "LocalFolder" and ds.path_on_disk == str(folder.resolve())
    up = tmp_path / "one.txt"
    up.write_text("hello")
    ds.upload_files([up], target_path="x", show_progress=False)
    assert (folder / "x" / "one.txt").read_text() == "hello"
    assert set(ws.datastores) == {"shared", "workspaceblobstore"}
    with pytest.raises(AlreadyExists, match="shared"):
        Datastore.register_local_folder(ws, "shared", folder)
    with pytest.raises(InvalidParameter, match="path"):
        Datastore.register_local_folder(ws, "other", tmp_path / "missing")
    assert "other" not in ws.datastores


def test_bad_names_are_refused(ws: Workspace, tmp_path: Path) -> None:
    for bad in ("", "a/b", "../x", "sp ace", "-x"):
        with pytest.raises(InvalidParameter, match="datastore_name"):
            Datastore.register_local_folder(ws, bad, tmp_path)
    assert list(ws.datastores) == ["workspaceblobstore"]


def test_traversal_is_refused(ws: Workspace, tmp_path: Path) -> None:
    src = csv_folder(tmp_path / "src")
    ds = ws.get_default_datastore()
    for bad in ("../up", "a/../../up", "/abs", "C:/x"):
        with pytest.raises(InvalidParameter, match="target_path"):
            ds.upload(src, bad, show_progress=False)
    with pytest.raises(InvalidParameter, match="prefix"):
        ds.download(tmp_path / "o", prefix="../..", show_progress=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    os.symlink(secret, src / "link.txt")
    with pytest.raises(InvalidParameter, match="src_dir.*symbolic link"):
        ds.upload(src, "d", show_progress=False)
    assert not (ws.path / ".runyard" / "datastores" / "workspaceblobstore" / "d").exists()


def test_set_default_and_unregister(ws: Workspace, tmp_path: Path) -> None:
    ds = Datastore.register_local_folder(ws, "mine", tmp_path)
    ds.set_as_default()
    assert ws.get_default_datastore().name == "mine"
    assert [n for n, d in ws.datastores.items() if d.is_default] == ["mine"]
    with pytest.raises(InvalidParameter, match="default"):
        ds.unregister()
    ws.set_default_datastore("workspaceblobstore")
    assert [n for n, d in ws.datastores.items() if d.is_default] == ["workspaceblobstore"]
    ds.unregister()
    with pytest.raises(NotFound, match="mine"):
        Datastore.get(ws, "mine")
    with pytest.raises(NotFound, match="nope"):
        ws.set_default_datastore("nope")
    with pytest.raises(InvalidParameter, match="managed"):
        ws.get_default_datastore().unregister()


# -- Azure Blob on Azurite -------------------------------------------------------------------
def test_blob_register_upload_skip_download(ws: Workspace, azurite: Azurite, container: str,
                                            tmp_path: Path) -> None:
    ds = blob(ws, azurite, container)
    assert ds.datastore_type == "AzureBlob" and ds.container_name == container
    src = csv_folder(tmp_path / "src", n=20)
    rep = ds.upload(src, "csv", show_progress=False).report
    assert rep is not None and len(rep.transferred) == 20
    cc = azurite.service().get_container_client(container)  # type: ignore[attr-defined]
    names = sorted(b.name for b in cc.list_blobs())
    assert names[0] == "csv/part0.csv" and len(names) == 20
    again = ds.upload(src, "csv", show_progress=False).report
    assert again is not None and again.transferred == [] and len(again.unchanged) == 20
    (src / "part0.csv").write_text("changed\n")
    over = ds.upload(src, "csv", overwrite=True, show_progress=False).report
    assert over is not None and over.transferred == ["csv/part0.csv"]
    out = tmp_path / "out"
    assert ds.download(out, prefix="csv", show_progress=False) == 20
    assert (out / "csv" / "part0.csv").read_text() == "changed\n"
    assert ds.download(out, prefix="csv", show_progress=False) == 0


def test_blob_wrong_key_and_missing_container_store_nothing(
        ws: Workspace, azurite: Azurite, container: str) -> None:
    with pytest.raises(InvalidParameter, match="account_key") as err:
        Datastore.register_azure_blob_container(ws, "b", container, ACCOUNT,
                                                account_key=WRONG_KEY, endpoint=azurite.url)
    assert WRONG_KEY not in str(err.value) and WRONG_KEY[:20] not in repr(err.value)
    with pytest.raises(InvalidParameter, match="container_name"):
        Datastore.register_azure_blob_container(ws, "b", "absent-container", ACCOUNT,
                                                account_key=KEY, endpoint=azurite.url)
    with pytest.raises(InvalidParameter, match="account_key"):
        Datastore.register_azure_blob_container(ws, "b", container, ACCOUNT,
                                                endpoint=azurite.url)
    assert list(ws.datastores) == ["workspaceblobstore"]
    assert ws.context.store.get_secrets("datastore/b") == {}


def test_blob_create_if_not_exists_and_already_exists(ws: Workspace, azurite: Azurite,
                                                     container: str) -> None:
    fresh = container + "-new"
    ds = Datastore.register_azure_blob_container(ws, "made", fresh, ACCOUNT, account_key=KEY,
                                                 endpoint=azurite.url, create_if_not_exists=True)
    assert ds.container_name == fresh
    svc = azurite.service()
    assert svc.get_container_client(fresh).exists()  # type: ignore[attr-defined]
    with pytest.raises(AlreadyExists, match="made"):
        blob(ws, azurite, container, name="made")
    again = blob(ws, azurite, container, name="made", overwrite=True)
    assert again.container_name == container


def test_blob_secret_never_shown(ws: Workspace, azurite: Azurite, container: str,
                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = blob(ws, azurite, container)
    ds.upload(csv_folder(tmp_path / "src"), show_progress=True)
    shown = [repr(ds), str(ds), str(ds.to_dict()), repr(ws.datastores),
             repr(ws.context.store.get_datastore("blobs")),
             repr(ws.client.open_datastore("blobs"))]
    out = capsys.readouterr()
    shown += [out.out, out.err]
    try:
        ds.download(tmp_path / "o", prefix="../x")
    except RunyardError as exc:
        shown.append(str(exc))
    for text in shown:
        assert KEY not in text and KEY[:16] not in text
    assert not hasattr(ds, "account_key")
    for f in (ws.path / ".runyard").rglob("*"):  # the database and every workspace file
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
    rows = ws.context.store.get_secrets("datastore/blobs")
    assert set(rows) == {"account_key"} and KEY.encode() not in rows["account_key"]
    ds.unregister()
    assert ws.context.store.get_secrets("datastore/blobs") == {}
