"""No process without a run on an SSH host: cancel reaches a ``setsid`` grandchild there, and
a runner killed on the host takes its script with it while the workspace's ``kill_leftovers``
ends the rest by the run's marker (through the host agent). A real sshd (tests/integration/
sshhost.py); the host's processes are this machine's, so the test reads them directly.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from sshhost import SSHHost  # noqa: E402

from runyard import Experiment, Run, ScriptRunConfig, Workspace  # noqa: E402
from runyard.computetarget import ComputeTarget, RemoteCompute  # noqa: E402
from runyard.runtime import procmarks  # noqa: E402
from support import alive, wait_for  # noqa: E402

FAMILY = """
    import json, os, subprocess, sys, time
    os.makedirs("logs", exist_ok=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    starter = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(600)'], start_new_session=True, "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"],
        capture_output=True, text=True, check=True)
    pids = {"script": os.getpid(), "child": child.pid, "setsid": int(starter.stdout)}
    with open("logs/family.tmp", "w") as fh:
        json.dump(pids, fh)
    os.replace("logs/family.tmp", "logs/family.json")
    print("family started", pids, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: SSHHost) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    w = Workspace.create("remote-faults", tmp_path / "ws")
    ComputeTarget.attach(w, "box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(host.key_file), known_hosts_file=str(host.known_hosts)))
    yield w
    for run_id in w.__dict__.get("started", []):  # whatever a failed test left running
        procmarks.stop_marked(procmarks.ENV_RUN_MARKER, procmarks.run_marker(run_id, 1),
                              grace=0)
    w.close()




def start_family(ws: Workspace, tmp_path: Path) -> tuple[Run, dict[str, int]]:
    src = tmp_path / "project"
    src.mkdir(exist_ok=True)
    (src / "family.py").write_text(textwrap.dedent(FAMILY))
    run = Experiment(ws, "remote-lifecycle").submit(
        ScriptRunConfig(str(src), "family.py", compute_target="box"))
    ws.__dict__.setdefault("started", []).append(run.id)
    pids_file = ws.run_dir(run.id) / "artifacts/logs/family.json"
    wait_for(lambda: run.get_status() == "Running" and pids_file.exists(), 60,
             f"the family of {run.id} to start")
    pids: dict[str, int] = json.loads(pids_file.read_text())
    marker = procmarks.run_marker(run.id, 1)
    assert all(alive(p) for p in pids.values())
    assert procmarks.has_marker(pids["setsid"], procmarks.ENV_RUN_MARKER, marker)
    return run, pids


def assert_all_gone(run: Run, pids: dict[str, int], timeout: float = 10) -> None:
    wait_for(lambda: not any(alive(p) for p in pids.values()), timeout,
             f"{ {k: p for k, p in pids.items() if alive(p)} } to end")
    assert procmarks.marked_pids(procmarks.ENV_RUN_MARKER,
                                 procmarks.run_marker(run.id, 1)) == set()


def test_remote_cancel_reaches_a_setsid_grandchild(ws: Workspace, tmp_path: Path) -> None:
    run, pids = start_family(ws, tmp_path)
    run.cancel()
    assert run.get_status() == "Canceled"
    assert_all_gone(run, pids, timeout=5)


def test_a_killed_remote_runner_takes_its_script_and_leftovers_go_by_marker(
        ws: Workspace, tmp_path: Path) -> None:
    run, pids = start_family(ws, tmp_path)
    rec = ws.context.store.get_run(run.id)
    assert rec is not None and rec.handle is not None
    os.kill(int(rec.handle["pid"]), signal.SIGKILL)  # the runner on the host dies
    wait_for(lambda: not alive(pids["script"]), 10, "the script to die with its runner")
    kind = ws.client.compute_kind("box")
    assert kind.kill_leftovers(kind.load_handle(rec.handle)) >= 2  # through the host agent
    assert_all_gone(run, pids)
