"""Cluster lifecycle: ``delete()`` stops every process of a cluster, from any process, after
runs, updates and failures (issue 10, point 6).

The reproduced path: a cluster created by one process, used by a run that failed in Preparing,
updated (``idle_seconds_before_scaledown``), then deleted from a new process. Afterwards no
process may carry the cluster's marker, sit in its head's session or name its temp folder.
One real local Ray cluster (about half a minute).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

from runyard import Workspace  # noqa: E402
from runyard.compute.cluster.ray import head as headmod  # noqa: E402
from runyard.runtime import procmarks  # noqa: E402

SRC = os.environ.get('RY_SRC') or str(Path(__file__).resolve().parents[2] / 'src')

CREATE_AND_USE = """
    import json, sys
    from pathlib import Path
    from runyard import Environment, Experiment, ScriptRunConfig, Workspace
    from runyard.computetarget import ClusterCompute, ComputeTarget
    ws = Workspace.from_config(sys.argv[1])
    src = Path(sys.argv[2])
    target = ComputeTarget.create(ws, "doomed", ClusterCompute.provisioning_configuration(
        vm_size="local-1cpu", min_nodes=0, max_nodes=1, idle_seconds_before_scaledown=30))
    assert target.wait_for_completion(timeout=120).provisioning_state == "Succeeded"
    hs = target.head_state()
    print(json.dumps({"uid": hs.uid, "sid": hs.sid, "temp_dir": hs.temp_dir}), flush=True)
    (src / "requirements.txt").write_text("six====\\n")  # no such version spec: the build fails
    env = Environment.from_pip_requirements("broken", src / "requirements.txt")
    run = Experiment(ws, "doomed-runs").submit(
        ScriptRunConfig(str(src), "train.py", compute_target=target, environment=env))
    details = run.wait_for_completion(timeout=180, raise_on_error=False)
    statuses = [e["status"] for e in run.get_events()]
    assert statuses == ["Queued", "Preparing", "Failed"], (statuses, details.get("error"))
    target.update(idle_seconds_before_scaledown=45)
    print("used and updated", flush=True)
"""

DELETE = """
    import sys
    from runyard import Workspace
    from runyard.computetarget import ComputeTarget
    ws = Workspace.from_config(sys.argv[1])
    ComputeTarget(ws, "doomed").delete()
    print("deleted", flush=True)
"""


def python(code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                         env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def naming_temp_dir(temp_dir: str) -> set[int]:
    """Processes whose command line names the cluster's temp folder (Ray's own processes)."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if temp_dir.encode() in cmd:
                found.add(int(name))
    return found


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = Workspace.create("cluster-faults", tmp_path / "ws")
    watcher = headmod.guard(os.getpid(), w.data_dir)  # no cluster outlives a killed test run
    yield w
    w.close()
    watcher.kill()
    watcher.wait()


@pytest.mark.skipif(not procmarks.supported(), reason="needs Linux /proc")
def test_delete_from_a_new_process_stops_every_process_of_the_cluster(
        ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "project"
    src.mkdir()
    (src / "train.py").write_text("print('never runs')\n")
    out = python(CREATE_AND_USE, str(ws.path), str(src))
    info = json.loads(out.splitlines()[0])
    uid, sid, temp_dir = info["uid"], info["sid"], info["temp_dir"]
    assert "used and updated" in out
    try:
        assert procmarks.marked_pids(procmarks.ENV_CLUSTER_MARKER, uid)  # it runs
        python(DELETE, str(ws.path))
        left = {
            "by marker": procmarks.marked_pids(procmarks.ENV_CLUSTER_MARKER, uid),
            "by session or descent": headmod.owned_pids(uid, sid),
            "by temp folder": naming_temp_dir(temp_dir),
        }
        assert left == {k: set() for k in left}, left
        assert "doomed" not in Workspace.from_config(ws.path).compute_targets
        assert not (ws.data_dir / "clusters" / "doomed").exists()
        assert not Path(temp_dir).exists()
    finally:
        headmod.stop_processes(uid, sid, grace=0)
