"""The detached reconciler moves runs on with no one reading them.

The submitting process exits right after ``submit``; the test then only reads the store (plain
reads, which move nothing) and waits for the reconciler that submit started to finish the run
and, for a run-based cluster, to delete the cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import support
from runyard import Workspace
from runyard.entities import RunStatus
from runyard.services.runs.reconciler import leader_running

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")


def wait_for(what: Callable[[], Any], timeout: float, message: str) -> Any:
    return support.wait_for(what, timeout, message, interval=0.25)


def submit_and_exit(ws: Workspace, src: Path, run_config_code: str = "") -> str:
    """Submit from a separate process that exits at once; returns the run id."""
    code = textwrap.dedent(f"""
        from runyard import Workspace, Experiment, ScriptRunConfig, RunConfiguration
        ws = Workspace.from_config({str(ws.path)!r})
        rc = RunConfiguration()
        {run_config_code}
        run = Experiment(ws, "nobody-reads").submit(
            ScriptRunConfig({str(src)!r}, "train.py", run_config=rc))
        print(run.id)
    """)
    env = {k: v for k, v in os.environ.items() if k != "RUNYARD_NO_RECONCILER"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": SRC},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Workspace, Path]:
    ws = Workspace.create("reconcile-ws", tmp_path / "ws")
    src = tmp_path / "project"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent("""
        import time
        from runyard import Run
        run = Run.get_context()
        for i in range(3):
            run.log("loss", 1.0 / (i + 1))
        time.sleep(1)
    """))
    return ws, src


def test_a_local_run_completes_with_no_one_reading_it(
        project: tuple[Workspace, Path]) -> None:
    ws, src = project
    run_id = submit_and_exit(ws, src)
    assert wait_for(lambda: leader_running(ws.context), 30, "a detached reconciler to lead")
    rec = wait_for(lambda: (r := ws.store.get_run(run_id)) and r.status.terminal and r, 120,
                   "the run to end")
    assert rec.status == RunStatus.COMPLETED
    assert [m.value for m in ws.store.get_metric_rows(run_id)] == [1.0, 0.5, 1 / 3]
    # the reconciler leaves once nothing is live (its quiet period), releasing the lock
    assert wait_for(lambda: not leader_running(ws.context), 60, "the reconciler to exit")


def test_run_based_cluster_is_deleted_with_no_one_reading_the_run(
        project: tuple[Workspace, Path]) -> None:
    pytest.importorskip("ray")
    from runyard.compute.cluster.ray import head as headmod

    ws, src = project
    watcher = headmod.guard(os.getpid(), ws.data_dir)  # no cluster outlives a killed test
    try:
        run_id = submit_and_exit(ws, src, textwrap.dedent("""
            rc.target = "amlcompute"
            rc.amlcompute.vm_size = "local-1cpu"
            rc.amlcompute._cluster_max_node_count = 1
        """).replace("\n", "\n        "))
        target = ws.store.get_run(run_id).target  # type: ignore[union-attr]
        assert target.startswith("run-")
        assert ws.store.get_compute_target(target) is not None
        hs = headmod.HeadState.load(ws.data_dir / "clusters" / target)
        assert hs is not None
        # only store reads from here on: nobody syncs, waits for or reads the run
        wait_for(lambda: ws.store.get_compute_target(target) is None, 240,
                 "the run-based cluster to be deleted")
        rec = ws.store.get_run(run_id)
        assert rec is not None and rec.status == RunStatus.COMPLETED
        assert [m.value for m in ws.store.get_metric_rows(run_id)] == [1.0, 0.5, 1 / 3]
        assert wait_for(lambda: not headmod.owned_pids(hs.uid, hs.sid), 30,
                        "the cluster's processes to end")
    finally:
        watcher.kill()
        watcher.wait()
        for rec in ws.store.list_compute_targets():
            from runyard.computetarget import ComputeTarget

            ComputeTarget(ws, rec.name).delete(force=True)
