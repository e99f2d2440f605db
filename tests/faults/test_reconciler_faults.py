"""The reconciler under faults (issue 10, point 3), with real processes and real files.

A reconciler whose workspace database is deleted under it stops: a clear line on stderr, no
traceback, a non-zero exit status; it never goes on (or exits 0) as if nothing happened. Both
ways it runs are covered: ``runyard reconcile`` in the foreground and the detached
``python -m runyard.services.runs.reconciler`` that submit starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runyard
from runyard import Experiment, ScriptRunConfig, Workspace
from runyard.compute.procs import process_start_time

SRC = Path(runyard.__file__).resolve().parents[1]
DB = "runyard.db"
SLEEPY = "import time\nprint('up', flush=True)\ntime.sleep(120)\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def _leading(lock: Path) -> bool:
    """Whether a process holds the workspace's reconciler lock (it is serving)."""
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _drop_database(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (root / ".runyard" / f"{DB}{suffix}").unlink()


def _live_run(root: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """A workspace at ``root`` with one live local run (no reconciler of its own started);
    returns (run id, its runner's pid)."""
    monkeypatch.setenv("RUNYARD_NO_RECONCILER", "1")
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp / "config"))
    ws = Workspace.create("faulty", root)
    src = tmp / "project"
    src.mkdir()
    (src / "sleepy.py").write_text(SLEEPY)
    run = Experiment(ws, "faults").submit(ScriptRunConfig(str(src), "sleepy.py"))
    deadline = time.monotonic() + 60
    while run.get_status() != "Running":
        assert time.monotonic() < deadline, run.get_status()
        time.sleep(0.05)
    handle = ws.store.get_run(run.id).handle  # type: ignore[union-attr]
    assert handle is not None
    ws.close()
    return run.id, int(handle["pid"])


@pytest.mark.parametrize("mode", ["foreground", "detached"])
def test_reconciler_stops_cleanly_when_its_database_is_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    root = tmp_path / "w"
    _run_id, runner_pid = _live_run(root, tmp_path, monkeypatch)
    argv = ([sys.executable, "-m", "runyard.cli", "reconcile"] if mode == "foreground"
            else [sys.executable, "-m", "runyard.services.runs.reconciler", str(root)])
    proc = subprocess.Popen(argv, cwd=root, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _leading(root / ".runyard" / "reconciler.lock"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the reconciler never took the lead"
            time.sleep(0.02)
        time.sleep(0.5)  # a few passes over the live run
        assert proc.poll() is None
        _drop_database(root)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner_pid, signal.SIGKILL)  # the run's runner (its own session)
    assert proc.returncode not in (0, None), (out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = [line for line in err.splitlines() if line.strip()]
    if mode == "foreground":  # the start line, then the error
        assert lines[0].startswith("reconciling workspace"), err
        lines = lines[1:]
    assert len(lines) == 1, err
    assert str(root / ".runyard" / DB) in lines[0] and "deleted" in lines[0], err
    assert not (root / ".runyard" / DB).exists()  # nothing made a new, empty one
    deadline = time.monotonic() + 10
    while process_start_time(runner_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
