"""No process without a run: the runner's death, a run's end and cancel reach every process
the run started (its process group and ``setsid`` descendants), on the local target.

Each script here starts a family: a child in its own process group and a ``setsid`` grandchild
(started by an intermediate process that exits at once, so it is orphaned in a session of its
own). Real processes throughout; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard import Experiment, Run, ScriptRunConfig, Workspace
from runyard.runtime import procmarks
from support import alive, wait_for

pytestmark = pytest.mark.skipif(not procmarks.supported(), reason="needs Linux /proc")

FAMILY = """
    import json, os, subprocess, sys, time
    out = os.environ["FAMILY_FILE"]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    starter = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(600)'], start_new_session=True, "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"],
        capture_output=True, text=True, check=True)
    pids = {"script": os.getpid(), "child": child.pid, "setsid": int(starter.stdout)}
    with open(out + ".tmp", "w") as fh:
        json.dump(pids, fh)
    os.replace(out + ".tmp", out)
    print("family started", pids, flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)  # the child and the grandchild are left behind
    time.sleep(600)
"""




@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = Workspace.create("faults", tmp_path / "ws", max_concurrent_runs=4)
    yield w
    for run_id in w.__dict__.get("started", []):  # whatever a failed test left running
        procmarks.stop_marked(procmarks.ENV_RUN_MARKER, procmarks.run_marker(run_id, 1),
                              grace=0)
    w.close()


def start_family(ws: Workspace, tmp_path: Path, mode: str) -> tuple[Run, dict[str, int]]:
    src = tmp_path / "project"
    src.mkdir(exist_ok=True)
    (src / "family.py").write_text(textwrap.dedent(FAMILY))
    family_file = tmp_path / f"family-{mode}.json"
    cfg = ScriptRunConfig(src, "family.py", arguments=[mode])
    cfg.run_config.environment.environment_variables["FAMILY_FILE"] = str(family_file)
    run = Experiment(ws, "lifecycle").submit(cfg)
    ws.__dict__.setdefault("started", []).append(run.id)
    wait_for(family_file.exists, 30, f"the family of {run.id} to start ({run.get_status()})")
    pids: dict[str, int] = json.loads(family_file.read_text())
    return run, pids


def marked(run: Run) -> set[int]:
    return procmarks.marked_pids(procmarks.ENV_RUN_MARKER, procmarks.run_marker(run.id, 1))


def assert_all_gone(run: Run, pids: dict[str, int], timeout: float = 10) -> None:
    wait_for(lambda: not any(alive(p) for p in pids.values()), timeout,
             f"{ {k: p for k, p in pids.items() if alive(p)} } to end")
    assert marked(run) == set()


@pytest.mark.parametrize("give_up", ["kill_leftovers", "cancel"])
def test_killing_the_runner_takes_the_script_and_leftovers_go_by_marker(
        ws: Workspace, tmp_path: Path, give_up: str) -> None:
    run, pids = start_family(ws, tmp_path, "stay")
    assert all(alive(p) for p in pids.values())
    # every member carries the run's marker, the setsid grandchild too
    assert {pids["script"], pids["child"], pids["setsid"]} <= marked(run)
    rec = ws.context.store.get_run(run.id)
    assert rec is not None and rec.handle is not None
    os.kill(int(rec.handle["pid"]), signal.SIGKILL)
    # the parent-death signal: nothing but the kernel ends the script
    wait_for(lambda: not alive(pids["script"]), 10, "the script to die with its runner")
    # the workspace giving up on the run (the reconciler, or cancel) ends the rest
    kind = ws.client.compute_kind("local")
    handle = kind.load_handle(rec.handle)
    if give_up == "kill_leftovers":
        assert kind.kill_leftovers(handle) >= 2
    else:
        kind.cancel(handle)
    assert_all_gone(run, pids)


def test_a_completed_run_leaves_no_process_behind(ws: Workspace, tmp_path: Path) -> None:
    run, pids = start_family(ws, tmp_path, "exit")
    details = run.wait_for_completion(timeout=60)
    assert details["status"] == "Completed"
    # the runner ended the family before it reported the end (only reaping may lag)
    assert_all_gone(run, pids, timeout=2)


def test_cancel_reaches_a_setsid_grandchild(ws: Workspace, tmp_path: Path) -> None:
    run, pids = start_family(ws, tmp_path, "stay")
    assert alive(pids["setsid"])
    started = time.monotonic()
    run.cancel()
    assert run.get_status() == "Canceled"
    assert time.monotonic() - started < 20
    assert_all_gone(run, pids, timeout=5)
