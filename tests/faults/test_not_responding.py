"""NotResponding is not an end: cancel works on it, and the reconciler fails it after its grace
(stopping what is left of it); the script never outlives its runner."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runyard import Experiment, Run, ScriptRunConfig, Workspace
from runyard.errors import InvalidParameter
from runyard.services.runs.reconciler import reconcile
from support import set_config, wait_for


def _lost_run(tmp_path: Path, grace: float) -> tuple[Workspace, Run, int]:
    root = tmp_path / "ws"
    Workspace.create("nr", root)
    set_config(root, not_responding_grace_seconds=grace)
    ws = Workspace.get("nr", root)  # opened after the config change
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "sleep.py").write_text("import time\ntime.sleep(600)\n")
    run = Experiment(ws, "nr").submit(ScriptRunConfig(str(src), "sleep.py"))
    wait_for(lambda: run.get_status() == "Running", 30, "the run to start")
    script_pid = int((ws.context.run_dir(run.id) / "script.pid").read_text())
    os.kill(run._record.handle["pid"], signal.SIGKILL)  # type: ignore[index]
    wait_for(lambda: run.get_status() == "NotResponding", 30, "NotResponding")
    return ws, run, script_pid


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_cancel_works_on_a_not_responding_run(tmp_path: Path) -> None:
    ws, run, script_pid = _lost_run(tmp_path, grace=3600)
    assert _gone(script_pid)  # the runner's death took the script with it
    run.cancel()
    assert run.get_status() == "Canceled"
    assert [e["status"] for e in run.get_events()][-2:] == ["NotResponding", "Canceled"]


def test_the_reconciler_fails_a_not_responding_run_after_its_grace(tmp_path: Path) -> None:
    ws, run, _ = _lost_run(tmp_path, grace=1.0)
    reconcile(ws.context)
    assert run.get_status() == "NotResponding"  # within the grace: it may come back
    time.sleep(1.2)
    reconcile(ws.context)
    assert run.get_status() == "Failed"
    assert "not responding for longer than 1 s" in run.get_events()[-1]["cause"]
    assert "not_responding_grace_seconds" in run.get_details()["error"]["message"]


def test_control_side_tags_refuse_nul_and_oversize_values(tmp_path: Path) -> None:
    ws = Workspace.create("tg", tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.py").write_text("pass\n")
    run = Experiment(ws, "tg").submit(ScriptRunConfig(str(src), "ok.py"))
    run.wait_for_completion()
    for bad in ({"a": "b\x00"}, {"a\x00": "b"}, {"": "b"}, {"a": "x" * 5000}):
        with pytest.raises(InvalidParameter, match="tags"):
            run.set_tags(bad)
    with pytest.raises(InvalidParameter, match="properties"):
        run.add_properties({"p": "\x00"})
    run.set_tags({"fine": "yes"})
    assert run.get_tags()["fine"] == "yes" and "a" not in run.get_tags()
