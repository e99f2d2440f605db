"""The model registry end to end: real workspaces, real blobs, real runs."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runyard import (
    AlreadyExists,
    Experiment,
    InvalidParameter,
    NotFound,
    ScriptRunConfig,
    Workspace,
)
from runyard.model import Model
from runyard.services import models as models_svc
from support import write


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws", max_concurrent_runs=4)


def blob_files(ws: Workspace) -> list[Path]:
    return [p for p in (ws.snapshots.root / "blobs").rglob("*") if p.is_file()]


def test_register_file_and_folder_versions_and_dedup(
        ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights" * 1000)
    m1 = Model.register(ws, str(f), "clf", tags={"area": "x"}, properties={"acc": 0.9},
                        description="first", model_framework="ScikitLearn")
    assert "Registering model clf" in capsys.readouterr().out
    assert (m1.name, m1.version, m1.id) == ("clf", 1, "clf:1")
    assert m1.tags == {"area": "x"} and m1.properties == {"acc": "0.9"}
    assert m1.model_framework == "ScikitLearn" and m1.run_id is None
    blobs = blob_files(ws)
    m2 = Model.register(ws, f, "clf")
    assert m2.version == 2
    assert blob_files(ws) == blobs  # same bytes: not stored twice
    folder = tmp_path / "net"
    write(folder, "a.txt", "A")
    write(folder, "sub/b.txt", "B")
    m3 = Model.register(ws, folder, "net")
    assert m3.version == 1
    assert [x["path"] for x in m3.serialize()["files"]] == ["net/a.txt", "net/sub/b.txt"]
    assert Model(ws, "clf").version == 2
    assert Model(ws, "clf", version=1).description == "first"
    assert Model(ws, id="clf:1").version == 1


def test_download_and_get_model_path(ws: Workspace, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "net"
    write(folder, "a.txt", "A")
    write(folder, "sub/b.txt", "B")
    m = Model.register(ws, folder, "net")
    out = Path(m.download(tmp_path / "dl"))
    assert out == tmp_path / "dl" / "net"
    assert (out / "sub" / "b.txt").read_text() == "B"
    with pytest.raises(AlreadyExists, match="exist_ok"):
        m.download(tmp_path / "dl")
    (out / "a.txt").write_text("changed")
    m.download(tmp_path / "dl", exist_ok=True)
    assert (out / "a.txt").read_text() == "A"
    monkeypatch.chdir(tmp_path)
    p = Model.get_model_path("net", _workspace=ws)
    assert p == str(Path("runyard-models/net/1/net"))
    from runyard.compat.azureml.core import Model as V1Model

    assert V1Model.get_model_path("net", version=1, _workspace=ws) == str(
        Path("azureml-models/net/1/net"))
    assert (tmp_path / "azureml-models/net/1/net/a.txt").read_text() == "A"


def test_list_filters_tags_properties_delete(ws: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"1")
    Model.register(ws, f, "a", tags={"stage": "dev"})
    Model.register(ws, f, "a", tags={"stage": "prod"}, properties={"k": "v"})
    Model.register(ws, f, "b", tags={"stage": "dev"})
    assert [m.id for m in Model.list(ws)] == ["a:2", "a:1", "b:1"]
    assert [m.id for m in Model.list(ws, latest=True)] == ["a:2", "b:1"]
    assert [m.id for m in Model.list(ws, tags=[["stage", "dev"]])] == ["a:1", "b:1"]
    assert [m.id for m in Model.list(ws, tags=["stage"], name="a")] == ["a:2", "a:1"]
    assert [m.id for m in Model.list(ws, properties={"k": "v"})] == ["a:2"]
    m = Model(ws, "a", version=1)
    m.add_tags({"x": "1"})
    m.remove_tags(["stage"])
    m.add_properties({"p": "1"})
    again = Model(ws, "a", version=1)
    assert again.tags == {"x": "1"} and again.properties == {"p": "1"}
    with pytest.raises(InvalidParameter, match="properties cannot change"):
        again.add_properties({"p": "2"})
    assert models_svc.model_references(ws.client.ctx, "a", 1) == []  # type: ignore[attr-defined]
    again.delete()
    with pytest.raises(NotFound, match=r"version 1 of model 'a'.*versions: 2"):
        Model(ws, "a", version=1)


def test_bad_inputs_register_nothing(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match='provided model path ".*nope" cannot be found'):
        Model.register(ws, tmp_path / "nope", "m")
    f = tmp_path / "m.bin"
    f.write_bytes(b"1")
    for bad in ("-x", "a b", "a/b", "", "x" * 256, "../x"):
        with pytest.raises(InvalidParameter, match="model_name"):
            Model.register(ws, f, bad)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ok").write_text("1")
    with pytest.raises(InvalidParameter, match="child_paths"):
        Model.register(ws, tmp_path / "d", "m", child_paths=["../m.bin"])
    with pytest.raises(InvalidParameter, match="version"):
        Model(ws, "m", version=0)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="model 'm' not found"):
        Model(ws, "m")
    assert Model.list(ws) == []


def test_concurrent_registrations_get_distinct_versions(ws: Workspace, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    versions: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        f = tmp_path / f"m{i}.bin"
        f.write_bytes(str(i).encode())
        try:
            ws2 = Workspace.get("ws", ws.client.ctx.path)  # type: ignore[attr-defined]
            m = Model.register(ws2, f, "race")
            with lock:
                versions.append(m.version)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(versions) == list(range(1, 9))


def test_gc_keeps_model_blobs(ws: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"keep me")
    m = Model.register(ws, f, "kept")
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"nobody refers to me")
    ws.client.ctx.snapshots.ingest_files(tmp_path, ["stray.bin"])  # type: ignore[attr-defined]
    assert len(blob_files(ws)) == 2
    report = ws.client.collect_garbage(0)
    assert [r.kind for r in report.removed if r.kind == "blob"] == ["blob"]
    assert len(blob_files(ws)) == 1
    out = Path(m.download(tmp_path / "dl"))
    assert out.read_bytes() == b"keep me"
    m.delete()
    ws.client.collect_garbage(0)
    assert blob_files(ws) == []


def test_run_register_model_links_a_real_run(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "project"
    write(src, "train.py", """
        import os
        os.makedirs("outputs", exist_ok=True)
        with open("outputs/model.pkl", "wb") as f:
            f.write(b"trained")
        os.makedirs("outputs/net", exist_ok=True)
        with open("outputs/net/w.bin", "wb") as f:
            f.write(b"w")
    """)
    run = Experiment(ws, "train").submit(ScriptRunConfig(src, "train.py"))
    run.wait_for_completion(raise_on_error=True)
    m = run.register_model("clf", tags={"from": "run"})
    assert (m.id, m.run_id, m.experiment_name) == ("clf:1", run.id, "train")
    assert Path(m.download(tmp_path / "dl")).read_bytes() == b"trained"
    folder = run.register_model("net", model_path="outputs/net")
    assert [x["path"] for x in folder.serialize()["files"]] == ["net/w.bin"]
    assert [x.id for x in Model.list(ws, run_id=run.id)] == ["clf:1", "net:1"]
    with pytest.raises(InvalidParameter, match="model_path"):
        run.register_model("x", model_path="../../etc/passwd")
    with pytest.raises(InvalidParameter, match="no artifact 'outputs/missing.pkl'"):
        run.register_model("x", model_path="outputs/missing.pkl")


def test_interactive_run_registers_its_outputs(ws: Workspace, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = Experiment(ws, "live").start_logging(outputs="outputs", snapshot_directory=None)
    (tmp_path / "outputs").mkdir(exist_ok=True)
    (tmp_path / "outputs" / "model.pkl").write_bytes(b"live")
    m = run.register_model("live-model")
    run.complete()
    assert m.run_id == run.id and m.experiment_name == "live"
    assert Path(m.download(tmp_path / "dl")).read_bytes() == b"live"


def test_get_model_path_finds_the_workspace_from_the_folder(ws: Workspace,
                                                            tmp_path: Path) -> None:
    """Without ``_workspace``: the workspace holding the current folder (a local run's working
    copy lies inside its workspace), in a fresh interpreter."""
    f = tmp_path / "model.pkl"
    f.write_bytes(b"registered bytes")
    Model.register(ws, f, "clf")
    wd = ws.data_dir / "runs" / "some-run" / "wd"
    wd.mkdir(parents=True)
    code = ("from runyard.compat.azureml.core import Model\n"
            "p = Model.get_model_path('clf')\n"
            "print(p, open(p, 'rb').read().decode())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=wd, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == f"{Path('azureml-models/clf/1/model.pkl')} registered bytes"
