"""The ``cluster`` kind on a real local Ray cluster (Ray's autoscaler, fake multi-node provider).

One low-priority cluster (min 0, max 2 nodes of ``local-1cpu``, 5 s idle scale-down) serves most
tests in this module, in order: scale-up by queued runs and scale-down, live logs and metrics,
an environment built on the node, cancel, a live update, a 2-node PyTorch DDP run, a preempted
node, reattaching from another process. Other tests make their own short-lived clusters (a second
one deleted while the first keeps running, one that fails to start, a run-based one). Every
cluster is checked to leave no process behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from runyard import Environment, Experiment, RunConfiguration, ScriptRunConfig, Workspace
from runyard.compute.cluster.ray import head as headmod
from runyard.computetarget import ClusterCompute, ComputeTarget
from runyard.errors import ComputeTargetInvalid, InvalidParameter, TargetUnavailable
from runyard.run import Run
from runyard.runconfig import MpiConfiguration

pytestmark = pytest.mark.integration

IDLE_S = 5

TRAIN = """
import os, sys, time
from runyard import Run
run = Run.get_context()
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
print("start", os.environ.get("RANK"), os.environ.get("WORLD_SIZE"), flush=True)
for i in range(3):
    run.log("loss", 1.0 / (i + 1))
    print("step", i, flush=True)
    time.sleep(seconds / 3)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights")
print("done", flush=True)
"""

SLEEPER = """
import os, time
from pathlib import Path
Path("outputs").mkdir(exist_ok=True)
print("sleeping", os.getpid(), flush=True)
time.sleep(120)
"""

DDP = """
import os
import torch
import torch.distributed as dist
from runyard import Run

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
print("rank", rank, "of", world, "node", os.environ["NODE_RANK"], "master",
      os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"], "hosts",
      os.environ["AZ_BATCH_HOST_LIST"], flush=True)
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(64, 4)
y = x.sum(1, keepdim=True)
run = Run.get_context()
for step in range(25):
    opt.zero_grad()
    loss = ((model(x[rank::world]) - y[rank::world]) ** 2).mean()
    loss.backward()
    opt.step()
    if rank == 0:
        run.log("loss", loss.item())
w = model.module.weight.detach().clone()
dist.all_reduce(w)
same = torch.allclose(w / world, model.module.weight.detach())
print("rank", rank, "weights in sync", same, flush=True)
dist.destroy_process_group()
"""

SIX = """
import six
from runyard import Run
Run.get_context().log("six", six.__version__)
"""


def wait_for(what: Callable[[], Any], timeout: float, step: float = 0.25,
             message: str | Callable[[], str] = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout} s waiting for {text or what}")
        time.sleep(step)


def assert_no_processes(uid: str, sid: int | None) -> None:
    left = wait_for(lambda: not headmod.owned_pids(uid, sid), 20,
                    message=f"the processes of cluster {uid} to end")
    assert left


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("cluster")
    w = Workspace.create("ray-ws", root / "ws")
    watcher = headmod.guard(os.getpid(), w.data_dir)  # no cluster outlives a killed test run
    src = root / "project"
    src.mkdir()
    for name, body in (("train.py", TRAIN), ("sleeper.py", SLEEPER), ("ddp.py", DDP),
                       ("six_user.py", SIX)):
        (src / name).write_text(textwrap.dedent(body))
    w.__dict__["test_src"] = src
    yield w
    w.close()
    watcher.kill()
    watcher.wait()


@pytest.fixture(scope="module")
def cluster(ws: Workspace) -> Iterator[ClusterCompute]:
    cfg = ClusterCompute.provisioning_configuration(
        vm_size="local-1cpu", vm_priority="lowpriority", min_nodes=0, max_nodes=2,
        idle_seconds_before_scaledown=IDLE_S, description="test cluster")
    target = ComputeTarget.create(ws, "cpu-cluster", cfg)
    assert isinstance(target, ClusterCompute)
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        st = target.wait_for_completion(show_output=True, timeout=120)
    assert st.provisioning_state == "Succeeded", st.errors
    assert "cpu-cluster: Creating" in out.getvalue()
    assert "cpu-cluster: Succeeded" in out.getvalue()
    hs = target.head_state()
    assert hs is not None
    yield target
    target.delete(force=True)
    assert_no_processes(hs.uid, hs.sid)
    assert not target.cluster_dir.exists() and not Path(hs.temp_dir).exists()
    assert "cpu-cluster" not in ws.compute_targets


def src(ws: Workspace) -> Path:
    return Path(ws.__dict__["test_src"])


def submit(ws: Workspace, target: ComputeTarget | str, script: str, *args: str,
           **kwargs: Any) -> Any:
    cfg = ScriptRunConfig(src(ws), script, arguments=list(args), compute_target=target,
                          **kwargs)
    return Experiment(ws, "cluster-exp").submit(cfg)


def node_count(target: ClusterCompute) -> int:
    return target.get_status().current_node_count


# -- the module cluster, in order ------------------------------------------------------------------
def test_cluster_is_up_with_no_nodes(cluster: ClusterCompute, ws: Workspace) -> None:
    st = cluster.get_status()
    assert st.provisioning_state == "Succeeded" and st.errors == []
    assert st.node_state_counts == {"idle": 0, "running": 0, "preparing": 0, "leaving": 0,
                                    "preempted": 0, "unusable": 0}
    assert st.current_node_count == 0 and cluster.list_nodes() == []
    assert ComputeTarget(ws, "cpu-cluster").serialize()["configuration"]["max_nodes"] == 2
    # the token is a secret: stored encrypted, never in the configuration
    assert "cluster_token" not in cluster.config
    hs = cluster.head_state()
    assert hs is not None
    listening = _listeners()  # loopback only (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0)
    for port in (hs.dashboard_port, hs.gcs_port):
        assert ("127.0.0.1", port) in listening
        assert not any(p == port and a != "127.0.0.1" for a, p in listening)


def _listeners() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket (/proc/net/tcp and tcp6); IPv4-mapped
    loopback (::ffff:127.0.0.1) counts as 127.0.0.1."""
    out = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":
                continue
            addr, port = local.split(":")
            if len(addr) == 32 and addr.startswith("0000000000000000FFFF0000"):
                addr = addr[24:]
            if len(addr) == 8:
                ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                ip = "::1" if addr == "00000000000000000000000001000000" else f"v6:{addr}"
            out.add((ip, int(port, 16)))
    return out


def test_queued_runs_scale_up_then_down(cluster: ClusterCompute, ws: Workspace) -> None:
    runs = [submit(ws, cluster, "train.py", "3") for _ in range(3)]
    seen: dict[str, int] = {}
    statuses: set[tuple[str, ...]] = set()

    def settled() -> bool:
        st = cluster.get_status()
        for k, v in st.node_state_counts.items():
            seen[k] = max(seen.get(k, 0), v)
        now = tuple(sorted(r.get_status() for r in runs))
        statuses.add(now)
        return all(s == "Completed" for s in now)

    wait_for(settled, 150, message=lambda: f"three runs to complete: {statuses} "
             f"{[r.get_details().get('error') for r in runs]} {cluster.get_status()}")
    assert seen["preparing"] >= 1 and seen["running"] == 2  # scaled out to max_nodes, no more
    assert any(s.count("Queued") >= 1 and s.count("Running") == 2 for s in statuses) or \
        any("Queued" in s and "Completed" in s for s in statuses)  # the 3rd run waited
    for r in runs:
        assert r.get_metrics()["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
        assert set(r.get_file_names()) >= {"outputs/model.txt", "system_logs/driver_log.txt"}
        log = (ws.run_dir(r.id) / "artifacts/system_logs/driver_log.txt").read_text()
        assert "start 0 1" in log and "done" in log
        events = [e["status"] for e in r.get_events()]
        assert events[0] == "Queued" and events[-1] == "Completed" and "Running" in events
    ended = time.monotonic()
    wait_for(lambda: node_count(cluster) == 0, IDLE_S + 10 + 15, message="scale down")
    assert time.monotonic() - ended <= IDLE_S + 10 + 15


def test_a_sweep_of_the_sklearn_example_autoscales_the_cluster(cluster: ClusterCompute,
                                                               ws: Workspace) -> None:
    from runyard.model import Model  # noqa: PLC0415
    from runyard.run import HyperDriveRun  # noqa: PLC0415
    from runyard.sweeps import (  # noqa: PLC0415
        BanditPolicy,
        HyperDriveConfig,
        PrimaryMetricGoal,
        RandomParameterSampling,
        loguniform,
    )

    wait_for(lambda: node_count(cluster) == 0, IDLE_S + 40, message="an idle cluster")
    example = Path(__file__).resolve().parents[2] / "examples" / "sklearn"
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(example), "train.py", compute_target=cluster),
        hyperparameter_sampling=RandomParameterSampling({"--C": loguniform(-7, 2)},
                                                        properties={"seed": 2}),
        policy=BanditPolicy(slack_factor=0.05, evaluation_interval=1, delay_evaluation=1),
        primary_metric_name="fold_accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=12, max_concurrent_runs=4)
    with pytest.warns(UserWarning, match="max_concurrent_runs=4"):  # max_nodes is 2
        hd = Experiment(ws, "cluster-sweep").submit(cfg)
    assert isinstance(hd, HyperDriveRun)
    most = 0
    while not hd._refresh().status.terminal:
        most = max(most, node_count(cluster))
        time.sleep(0.2)
    assert hd.get_status() == "Completed", hd.get_details().get("error")
    assert most >= 1  # the trials brought nodes up
    children = list(hd.get_children())
    assert sorted(int(c.id.rsplit("_", 1)[1]) for c in children) == list(range(12))
    assert {c.get_status() for c in children} <= {"Completed", "Canceled"}
    best = hd.get_best_run_by_primary_metric()
    assert best is not None and best.get_status() == "Completed"
    model = best.register_model("cluster-sweep-best", "outputs/model.pkl")
    assert Model(ws, model.name).run_id == best.id
    ended = time.monotonic()
    wait_for(lambda: node_count(cluster) == 0, IDLE_S + 10 + 15, message="scale down")
    assert time.monotonic() - ended <= IDLE_S + 10 + 15


def test_logs_stream_live_and_outputs_come_back(cluster: ClusterCompute,
                                                ws: Workspace) -> None:
    run = submit(ws, cluster, "train.py", "6")
    log = ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt"
    wait_for(lambda: run.get_status() == "Running" and log.exists()
             and "step 0" in log.read_text(), 60, message="a live log line")
    assert "done" not in log.read_text()  # it arrived while the script still ran
    out = io.StringIO()
    details = run.wait_for_completion(show_output=True, out=out)
    assert details["status"] == "Completed"
    assert "step 2" in out.getvalue() and "Execution Summary" in out.getvalue()
    assert (ws.run_dir(run.id) / "artifacts/outputs/model.txt").read_text() == "weights"
    # the node's working copy of the code went when the run ended; its node folder stays
    hs = cluster.head_state()
    assert hs is not None
    node = Path(hs.node_root, "runs", run.id, "a1", "n0")
    assert (node / "job.json").is_file() and not (node / "wd").exists()


def test_environment_is_built_on_the_node_and_cached(cluster: ClusterCompute, ws: Workspace,
                                                     tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("six==1.16.0\n")
    env = Environment.from_pip_requirements("six-env", req)
    first = submit(ws, cluster, "six_user.py", environment=env)
    first.wait_for_completion()
    assert first.get_metrics()["six"] == "1.16.0"
    assert first.get_properties()["environment_build"] == "built"
    again = submit(ws, cluster, "six_user.py", environment=env)
    again.wait_for_completion()
    assert again.get_properties()["environment_build"] == "cached"
    assert again.get_properties()["environment_key"] == first.get_properties()[
        "environment_key"]


def test_cancel_stops_the_ray_job_and_every_process(cluster: ClusterCompute,
                                                    ws: Workspace) -> None:
    run = submit(ws, cluster, "sleeper.py")
    wait_for(lambda: run.get_status() == "Running", 60, message="Running")
    hs = cluster.head_state()
    assert hs is not None
    pid_file = Path(hs.node_root) / "runs" / run.id / "a1" / "n0" / "script.pid"
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10))
    rec = ws.store.get_run(run.id)
    assert rec is not None and rec.handle is not None
    handle = rec.handle
    started = time.monotonic()
    run.cancel()
    assert run.get_status() == "Canceled"
    assert time.monotonic() - started < 20
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 15, message="the script to end")
    info = cluster.dashboard().job(handle["job_id"])
    assert info is not None and info["status"] == "STOPPED"


def test_update_applies_to_the_live_cluster(cluster: ClusterCompute, ws: Workspace) -> None:
    cluster.update(min_nodes=1)
    wait_for(lambda: cluster.get_status().node_state_counts["idle"] == 1, 40,
             message="min_nodes=1 to bring an idle node up")
    assert ComputeTarget(ws, "cpu-cluster").config["min_nodes"] == 1
    with pytest.raises(ComputeTargetInvalid, match="min_nodes"):
        cluster.update(min_nodes=3)  # above max_nodes: refused, nothing changes
    with pytest.raises(ComputeTargetInvalid, match="vm_size"):
        cluster.update(vm_size="local-2cpu")
    cluster.update(min_nodes=0, idle_seconds_before_scaledown=2)
    wait_for(lambda: node_count(cluster) == 0, 30, message="scale down to min_nodes=0")
    cluster.update(idle_seconds_before_scaledown=IDLE_S)


def test_pytorch_ddp_across_two_nodes(cluster: ClusterCompute, ws: Workspace) -> None:
    pytest.importorskip("torch")
    run = submit(ws, cluster, "ddp.py", distributed_job_config=MpiConfiguration(
        process_count_per_node=1, node_count=2))
    details = run.wait_for_completion(timeout=240, raise_on_error=False)
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert details["status"] == "Completed", (details.get("error"), log)
    assert "rank 0 of 2 node 0" in log and "weights in sync True" in log
    assert "hosts 127.0.0.1,127.0.0.1" in log
    losses = run.get_metrics()["loss"]
    assert len(losses) == 25 and losses[-1] < losses[0] / 10
    children = list(run.get_children())
    assert [c.id for c in children] == [f"{run.id}_node1"]
    child_log = (ws.run_dir(f"{run.id}_node1") / "artifacts/system_logs/driver_log.txt")
    wait_for(lambda: children[0].get_status() == "Completed" and child_log.exists()
             and "weights in sync True" in child_log.read_text(), 30,
             message="node 1's log and status")
    assert "rank 1 of 2 node 1" in child_log.read_text()


def test_preempted_node_starts_a_new_attempt(cluster: ClusterCompute, ws: Workspace) -> None:
    run = submit(ws, cluster, "train.py", "9")
    wait_for(lambda: run.get_status() == "Running", 60, message="Running")
    time.sleep(1.0)
    victim = wait_for(lambda: [n for n in cluster.list_nodes() if run.id in n["run_ids"]], 10)
    os.kill(victim[0]["raylet_pid"], signal.SIGKILL)  # the low-priority node is preempted
    seen_preempted = wait_for(
        lambda: cluster.get_status().node_state_counts["preempted"] >= 1, 30,
        message="the node to show as preempted")
    assert seen_preempted
    details = run.wait_for_completion(timeout=150, raise_on_error=False)
    assert details["status"] == "Completed", details.get("error")
    attempts = run.get_attempts()
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[1]["cause"].startswith("preempted")
    assert attempts[1]["status"] == "Completed"
    names = run.get_file_names()
    assert "system_logs/attempt_1/driver_log.txt" in names
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert "/a2/n0/wd" not in log and log.startswith("start") and "done" in log


def test_a_restarted_workspace_process_reattaches(cluster: ClusterCompute,
                                                  ws: Workspace) -> None:
    code = textwrap.dedent(f"""
        from runyard import Workspace, Experiment, ScriptRunConfig
        ws = Workspace.from_config({str(ws.path)!r})
        cfg = ScriptRunConfig({str(src(ws))!r}, "train.py", arguments=["4"],
                              compute_target="cpu-cluster")
        print(Experiment(ws, "cluster-exp").submit(cfg).id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    run_id = out.stdout.strip().splitlines()[-1]
    fresh = Workspace.from_config(ws.path)  # a new process would open it like this
    try:
        run = Run.get(fresh, run_id)
        details = run.wait_for_completion(timeout=120)
        assert details["status"] == "Completed"
        assert run.get_metrics()["loss"][-1] == pytest.approx(1 / 3)
        again = ComputeTarget(fresh, "cpu-cluster")
        assert again.get_status().provisioning_state == "Succeeded"
    finally:
        fresh.close()


def test_requests_beyond_the_vm_size_are_refused_before_anything_starts(
        cluster: ClusterCompute, ws: Workspace) -> None:
    before = len(list(Experiment(ws, "cluster-exp").get_runs()))
    rc = RunConfiguration()
    rc.resources.cpu = 4
    with pytest.raises(InvalidParameter, match="4 CPUs per node, but a local-1cpu node has 1"):
        submit(ws, cluster, "train.py", run_config=rc)
    rc = RunConfiguration()
    rc.resources.gpu = 1
    with pytest.raises(InvalidParameter, match="GPU"):
        submit(ws, cluster, "train.py", run_config=rc)
    with pytest.raises(InvalidParameter, match="max_nodes=2"):
        submit(ws, cluster, "ddp.py", distributed_job_config=MpiConfiguration(node_count=3))
    assert len(list(Experiment(ws, "cluster-exp").get_runs())) == before


# -- clusters of their own ---------------------------------------------------------------------
def test_deleting_one_cluster_leaves_another_running(cluster: ClusterCompute,
                                                     ws: Workspace) -> None:
    hs_a = cluster.head_state()
    assert hs_a is not None
    other = ComputeTarget.create(ws, "other", ClusterCompute.provisioning_configuration(
        vm_size="local-1cpu", min_nodes=1, max_nodes=1, idle_seconds_before_scaledown=5))
    assert isinstance(other, ClusterCompute)
    assert other.wait_for_completion(timeout=120).provisioning_state == "Succeeded"
    wait_for(lambda: node_count(other) == 1, 40, message="the other cluster's node")
    hs_b = other.head_state()
    assert hs_b is not None
    mine = headmod.owned_pids(hs_a.uid, hs_a.sid)
    theirs = headmod.owned_pids(hs_b.uid, hs_b.sid)
    assert mine and theirs and not (mine & theirs)
    other.delete()
    assert_no_processes(hs_b.uid, hs_b.sid)
    assert all(os.path.exists(f"/proc/{p}") for p in mine if _is_daemon(p))
    assert cluster.dashboard().alive()
    run = submit(ws, cluster, "train.py")
    assert run.wait_for_completion(timeout=90)["status"] == "Completed"


def _is_daemon(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"gcs_server" in cmd or b"dashboard.py" in cmd


def test_a_cluster_that_cannot_start_is_failed_with_rays_message(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    blockers: list[Path] = []
    real = headmod.new_state

    def in_the_way(*args: Any) -> headmod.HeadState:  # a file where Ray's temp dir must go
        st = real(*args)
        blockers.append(Path(st.temp_dir))
        blockers[-1].write_text("not a directory")
        return st

    monkeypatch.setattr(headmod, "new_state", in_the_way)
    try:
        target = ComputeTarget.create(ws, "broken", ClusterCompute.provisioning_configuration(
            vm_size="local-1cpu", max_nodes=1))
        assert isinstance(target, ClusterCompute)
        hs = target.head_state()
        assert hs is not None
        st = target.wait_for_completion(timeout=120)
        assert st.provisioning_state == "Failed"
        assert "FileExistsError" in " ".join(st.errors)  # Ray's own words
        assert target.get_status().errors == st.errors
        assert_no_processes(hs.uid, hs.sid)
        with pytest.raises(TargetUnavailable, match="Failed"):
            submit(ws, target, "train.py")
        target.delete(force=True)
        assert "broken" not in ws.compute_targets
    finally:
        for b in blockers:
            b.unlink(missing_ok=True)


def test_run_based_cluster_is_made_for_the_run_and_deleted_after(ws: Workspace) -> None:
    rc = RunConfiguration()
    rc.target = "cluster"  # the spelling; Azure's "amlcompute" runs in the compat tests
    rc.amlcompute.vm_size = "local-1cpu"
    rc.amlcompute._cluster_max_node_count = 1
    run = submit(ws, rc.target, "train.py", run_config=rc)
    name = run.get_details()["target"]
    assert name.startswith("run-") and name in ws.compute_targets
    target = ws.get_target(name)
    assert isinstance(target, ClusterCompute)
    hs = target.head_state()
    assert hs is not None
    details = run.wait_for_completion(timeout=180)
    assert details["status"] == "Completed"
    assert run.get_metrics()["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert name not in ws.compute_targets  # deleted once the run ended
    assert_no_processes(hs.uid, hs.sid)
    assert details["runDefinition"]["target"] == "cluster"
