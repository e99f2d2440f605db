"""Issue 11, item 9 (feedback while waiting), as a v1 user meets it.

The control code imports ``runyard.compat.azureml`` only; the training script
(``scripts/feedback/train.py``) is written as v1 users wrote theirs. ``wait_for_completion(
show_output=True)`` prints every status change with its cause between the log lines; on a real
Ray cluster (one cluster for the whole module: Ray is heavy) it also says that the run waits for
the cluster to scale, on which node it runs, ``runyard compute create --wait`` and
``ComputeTarget.wait_for_completion(show_output=True)`` show node states, and a node whose run
has ended reads ``idle``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from runyard.compat.azureml.core import Experiment, ScriptRunConfig, Workspace
from runyard.compat.azureml.core.compute import ComputeTarget
from support import wait_for

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parent / "scripts" / "feedback"
SRC = Path(__file__).resolve().parents[2] / "src"


def _in_order(text: str, *parts: str) -> None:
    """Every part occurs in ``text``, each after the one before."""
    at = 0
    for part in parts:
        i = text.find(part, at)
        assert i >= 0, f"{part!r} missing (after offset {at}) in:\n{text}"
        at = i + len(part)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("feedback")
    w = Workspace.create("feedback-ws", path=root)
    yield w
    w.close()


def test_wait_prints_each_status_change_with_its_cause(ws: Workspace) -> None:
    run = Experiment(ws, "feedback").submit(ScriptRunConfig(
        source_directory=str(SCRIPTS), script="train.py",
        arguments=["--epochs", "2", "--data", "d1"]))
    out = io.StringIO()
    run.wait_for_completion(show_output=True, out=out)
    _in_order(out.getvalue(), "Queued: submitted", "Preparing: slot acquired",
              "Starting: starting the script", "Running: script started (pid ",
              "epoch 0 on d1", "epoch 1 on d1", "Finalizing: script exited with code 0",
              "Completed: script exited with code 0", "Execution Summary")


def test_a_failed_run_says_why_with_the_scripts_last_lines(ws: Workspace) -> None:
    run = Experiment(ws, "feedback").submit(ScriptRunConfig(
        source_directory=str(SCRIPTS), script="train.py", arguments=["--epochs", "1"]))
    out = io.StringIO()
    details = run.wait_for_completion(show_output=True, raise_on_error=False, out=out)
    argparse_line = "train.py: error: the following arguments are required: --data"
    error = details["error"]
    assert error["message"] == f"The script exited with code 2. {argparse_line}"
    assert error["exit_code"] == 2 and error["traceback"] is None
    assert error["output_tail"].splitlines() == [
        "usage: train.py [-h] --epochs EPOCHS --data DATA", argparse_line]
    _in_order(out.getvalue(), "Running: script started", argparse_line,
              "Finalizing: script exited with code 2",
              f"Failed: The script exited with code 2. {argparse_line}")


# -- a real Ray cluster ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(ws: Workspace) -> Iterator[ComputeTarget]:
    pytest.importorskip("ray")
    from runyard.compute.cluster.ray import head as headmod

    watcher = headmod.guard(os.getpid(), ws.data_dir)  # no cluster outlives a killed test run
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "runyard.cli", "-w", str(ws.path), "compute", "create",
         "fb-cluster", "--kind", "cluster", "--vm-size", "local-1cpu", "--min-nodes", "0",
         "--max-nodes", "1", "--idle-seconds-before-scaledown", "300", "--wait",
         "--timeout", "120"], env=env, capture_output=True, text=True, timeout=180,
        check=False)
    target = ComputeTarget(ws, "fb-cluster")
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        _in_order(proc.stdout, "fb-cluster: Creating", "fb-cluster: Succeeded, nodes 0")
        yield target
    finally:
        hs = target.head_state()
        target.delete(force=True)
        if hs is not None:
            wait_for(lambda: not headmod.owned_pids(hs.uid, hs.sid), 20,
                     "the cluster's processes to end")
        watcher.kill()
        watcher.wait()


def test_cluster_run_says_scaling_and_node_then_the_node_reads_idle(
        ws: Workspace, cluster: ComputeTarget) -> None:
    run = Experiment(ws, "feedback").submit(ScriptRunConfig(
        source_directory=str(SCRIPTS), script="train.py",
        arguments=["--epochs", "3", "--data", "d2"], compute_target=cluster))
    out = io.StringIO()
    run.wait_for_completion(show_output=True, out=out, timeout=150)
    text = out.getvalue()
    _in_order(text, "Queued: submitted",
              "Queued: waiting for a node, cluster fb-cluster scaling 0 -> 1",
              "Running: script started (pid ", " on node ", "epoch 2 on d2",
              "Completed: script exited with code 0")
    # the unchanged `from azureml.core import Run` logged to runyard on the cluster node too
    assert run.get_metrics()["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    # the run is over: as soon as Ray says its job ended, the node reads idle (the
    # autoscaler's usage report, a loop behind, still says busy then) and stays idle until
    # it is scaled down
    dash = cluster.dashboard()
    wait_for(lambda: all(j["status"] in ("SUCCEEDED", "FAILED", "STOPPED")
                         for j in dash.jobs()
                         if (j.get("metadata") or {}).get("runyard_run_id") == run.id), 30,
             "Ray to see the run's job end")
    for _ in range(4):
        st = cluster.get_status()
        assert st.node_state_counts["idle"] == 1 and st.node_state_counts["running"] == 0
        assert st.current_node_count == 1
        time.sleep(0.5)
    (node,) = cluster.list_nodes()
    assert node["node_state"] == "idle" and node["run_ids"] == []
    assert f"on node {node['node_id'][-6:]}" in text
    shown = io.StringIO()
    with redirect_stdout(shown):
        cluster.wait_for_completion(show_output=True)
    assert "fb-cluster: Succeeded, nodes 1 (idle 1)" in shown.getvalue()
