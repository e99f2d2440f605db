"""Cluster benchmark: the ``cluster`` kind on a local Ray cluster (Ray's autoscaler, fake nodes).

One runyard cluster (``local-1cpu`` nodes, min 0, max 2, 5 s idle scale-down) in a temp
workspace, measured in the same run:

* submit-to-start on a warm node: from the submit call to the script's first line, runyard
  (``Experiment.submit`` of a ``ScriptRunConfig``: snapshot, record, Ray job with the snapshot as
  working_dir, node agent, runner) against a raw Ray Jobs submission of the same script to the
  same cluster (``JobSubmissionClient.submit_job(entrypoint="python start.py",
  runtime_env={"working_dir": src}, entrypoint_num_cpus=1)``), interleaved after a warm-up of
  each; target: runyard at most 10% slower;
* scale-up reaction: a run queued on a cluster with no node until a new node joins the Ray
  cluster (and until the run is Running), against Ray's autoscaler loop period (1 s here);
* scale-down: from the run's end until its node is gone, against
  ``idle_seconds_before_scaledown + 10`` s;
* memory (PSS) of the idle head and of one idle node, against the figures measured by hand on
  this machine class (shared/reference/engines-on-this-machine.md: ~630 MB head, ~165 MB node).

The cluster is stopped at the end by runyard (only its own processes; never ``ray stop``), and a
guard process stops it if the benchmark is killed. ``run(repeats)`` returns the rows.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runyard import Experiment, ScriptRunConfig, Workspace
from runyard.computetarget import ComputeTarget

IDLE_S = 5
AUTOSCALER_PERIOD_S = 1.0
START = """
import sys, time
t = time.time()
with open(sys.argv[1], "w") as fh:
    fh.write(repr(t))
"""
SLEEP = "import time\ntime.sleep(1)\n"


def _pss_kib(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def _descendants(root: int) -> set[int]:
    table: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    data = fh.read()
                table[int(name)] = int(data[data.rfind(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in table.items():
            if ppid in out and pid not in out:
                out.add(pid)
                grew = True
    return out


def _wait(what: Any, timeout: float, step: float = 0.05) -> float:
    """Seconds until ``what()`` is true (raises after ``timeout``)."""
    start = time.monotonic()
    while not what():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"no result after {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


def _read_start(path: Path, timeout: float = 60) -> float:
    _wait(lambda: path.exists() and path.read_text().strip() != "", timeout, 0.01)
    return float(path.read_text())


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Measure on one fresh local cluster; return the table rows."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        return [{"benchmark": "cluster", "unit": "", "runyard": None, "peer_name": None,
                 "peer": None, "note": "skipped: the 'ray' extra is not installed"}]
    from runyard.compute.cluster.ray import head as headmod
    from runyard.computetarget import ClusterCompute

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="runyard-bench-cluster-") as tmp:
        base = Path(tmp)
        src = base / "src"
        src.mkdir()
        (src / "start.py").write_text(START)
        (src / "sleep.py").write_text(SLEEP)
        marks = base / "marks"
        marks.mkdir()
        ws = Workspace.create("bench-cluster", path=base / "ws")
        guard = headmod.guard(os.getpid(), ws.data_dir)
        exp = Experiment(ws, "bench")
        t0 = time.monotonic()
        cluster = ComputeTarget.create(ws, "bench", ClusterCompute.provisioning_configuration(
            vm_size="local-1cpu", min_nodes=0, max_nodes=2,
            idle_seconds_before_scaledown=IDLE_S))
        assert isinstance(cluster, ClusterCompute)
        try:
            st = cluster.wait_for_completion(timeout=180)
            create_s = time.monotonic() - t0
            if st.provisioning_state != "Succeeded":
                raise RuntimeError(f"cluster did not start: {st.errors}")
            hs = cluster.head_state()
            assert hs is not None
            time.sleep(3)  # let the dashboard's modules settle
            head_kib = _pss_kib(headmod.owned_pids(hs.uid, hs.sid))
            dash = cluster.dashboard()

            def alive_nodes() -> int:
                return sum(1 for n in dash.gcs_nodes()
                           if n.get("state") == "ALIVE" and not n.get("is_head_node"))

            # -- scale-up and scale-down, from zero nodes ----------------------------------
            ups, runs_up, downs, node_kib = [], [], [], []
            for _ in range(max(1, min(2, repeats))):
                _wait(lambda: alive_nodes() == 0, 60, 0.2)
                t_sub = time.monotonic()
                r = exp.submit(ScriptRunConfig(src, "sleep.py", compute_target=cluster))
                _wait(lambda: alive_nodes() >= 1, 60)
                ups.append(time.monotonic() - t_sub)
                _wait(lambda r=r: r.get_status() in ("Running", "Completed"), 60)
                runs_up.append(time.monotonic() - t_sub)
                r.wait_for_completion()
                t_end = time.monotonic()
                nodes = cluster.list_nodes()
                node_pids: set[int] = set()
                for n in nodes:
                    if n.get("raylet_pid"):
                        node_pids |= _descendants(int(n["raylet_pid"]))
                if nodes:
                    node_kib.append(_pss_kib(node_pids) / max(1, len(nodes)))
                _wait(lambda: alive_nodes() == 0, IDLE_S + 60, 0.1)
                downs.append(time.monotonic() - t_end)

            # -- submit-to-start on a warm node ---------------------------------------------
            cluster.update(min_nodes=1)
            _wait(lambda: cluster.get_status().node_state_counts["idle"] >= 1, 60, 0.2)
            client = JobSubmissionClient(dash.url, headers={
                "Authorization": f"Bearer {dash.token}"})

            def ours(i: int) -> float:
                mark = marks / f"ours-{i}"
                t = time.time()
                r = exp.submit(ScriptRunConfig(src, "start.py", arguments=[str(mark)],
                                               compute_target=cluster))
                started = _read_start(mark)
                r.wait_for_completion()
                return started - t

            def raw(i: int) -> float:
                mark = marks / f"raw-{i}"
                t = time.time()
                job = client.submit_job(entrypoint=f"{sys.executable} start.py {mark}",
                                        runtime_env={"working_dir": str(src)},
                                        entrypoint_num_cpus=1)
                started = _read_start(mark)
                _wait(lambda: str(client.get_job_status(job)) in (
                    "SUCCEEDED", "FAILED", "STOPPED", "JobStatus.SUCCEEDED",
                    "JobStatus.FAILED", "JobStatus.STOPPED"), 60, 0.05)
                return started - t

            ours(-1)
            raw(-1)  # warm-up: packages uploaded and unpacked, runtime envs cached
            pairs = max(5, 2 * repeats)
            o_s, r_s = [], []
            for i in range(pairs):
                o_s.append(ours(i))
                r_s.append(raw(i))
            cluster.update(min_nodes=0)
        finally:
            t_del = time.monotonic()
            cluster.delete(force=True)
            delete_s = time.monotonic() - t_del
            guard.kill()
            guard.wait()
            ws.close()

    o_med, r_med = statistics.median(o_s), statistics.median(r_s)
    ratio = o_med / r_med
    diff_ms = statistics.median(a - b for a, b in zip(o_s, r_s, strict=True)) * 1000
    rows.append({"benchmark": "cluster: submit-to-start, warm node", "unit": "s",
                 "runyard": round(o_med, 3), "peer_name": "raw Ray Jobs (same script)",
                 "peer": round(r_med, 3),
                 "note": f"{'meets' if ratio <= 1.10 else 'MISSES'} <=10% overhead; "
                         f"median of {pairs} interleaved pairs; paired difference "
                         f"{diff_ms:+.0f} ms; runs {min(o_s):.2f}-{max(o_s):.2f} s, "
                         f"raw {min(r_s):.2f}-{max(r_s):.2f} s"})
    rows.append({"benchmark": "cluster: scale-up, queued run -> node joined", "unit": "s",
                 "runyard": round(statistics.median(ups), 2),
                 "peer_name": "autoscaler loop period", "peer": AUTOSCALER_PERIOD_S,
                 "note": f"until the run is Running: {statistics.median(runs_up):.2f} s "
                         "(node boot + job start)"})
    bound = IDLE_S + 10
    down = statistics.median(downs)
    rows.append({"benchmark": "cluster: scale-down after the last run", "unit": "s",
                 "runyard": round(down, 2), "peer_name": "idle_seconds + 10 s",
                 "peer": float(bound),
                 "note": f"{'meets' if max(downs) <= bound else 'MISSES'} the bound; "
                         f"idle_seconds_before_scaledown={IDLE_S}"})
    rows.append({"benchmark": "cluster: head memory (idle, PSS)", "unit": "MB",
                 "runyard": round(head_kib / 1024, 1), "peer_name": "reference (by hand)",
                 "peer": 630.0, "note": f"create -> Succeeded {create_s:.1f} s"})
    if node_kib:
        rows.append({"benchmark": "cluster: one idle node (PSS)", "unit": "MB",
                     "runyard": round(statistics.median(node_kib) / 1024, 1),
                     "peer_name": "reference (by hand)", "peer": 165.0,
                     "note": "raylet + its agents and workers"})
    rows.append({"benchmark": "cluster: delete (stop every process)", "unit": "s",
                 "runyard": round(delete_s, 2), "peer_name": None, "peer": None,
                 "note": "only this cluster's processes"})
    return rows


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(row)
