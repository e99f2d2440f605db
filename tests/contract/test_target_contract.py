"""The compute-kind contract (``runyard.compute.base.ComputeKind``), one suite for every kind,
then failure injection through the services with :class:`FakeTarget`.

Parametrized over ``local`` (the built-in target) and ``fake`` (``FakeTarget`` with no fault).
``cluster`` (Ray) and ``remote`` (SSH) are left out on purpose: getting a Ray cluster or an
sshd is not cheap, and ``tests/integration/test_cluster_ray.py`` and
``tests/integration/test_remote_ssh.py`` start them and exercise those kinds. A new kind joins
this suite by adding a target factory to ``KIND_TARGETS``.

Everything is real: SQLite in ``tmp_path``, detached runner processes, the user's script.
Waits are bounded polling loops; nothing asserts on elapsed time.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runyard.compute.base import HANDLE_VERSION, HandleError, JobHandle, JobSpec, TargetStatus
from runyard.compute.procs import process_start_time
from runyard.entities import RunStatus
from runyard.errors import TargetUnavailable
from runyard.runtime.spool import parse_lines
from runyard.services.compute import compute_status
from runyard.services.runs.control import cancel_run
from runyard.services.runs.reconciler import Reconciler, reconcile_run
from runyard.services.runs.sync import sync_run
from runyard.services.targets import get_kind, live_runs
from runyard.store.base import RunFilter

from .conftest import Harness, wait_for
from .fake_target import (
    LOST_REASON,
    RESTART_CAUSE,
    read_starts,
    ready_flag,
    restart_gate,
)

pytestmark = pytest.mark.integration

S = RunStatus
FULL_LIFE = [S.QUEUED, S.PREPARING, S.STARTING, S.RUNNING, S.FINALIZING, S.COMPLETED]

#: kind -> makes the target in a fresh workspace and returns its name.
KIND_TARGETS: dict[str, Callable[[Harness], str]] = {
    "local": lambda ws: "local",
    "fake": lambda ws: ws.fake("fake-ok"),
}

#: Logs loss 0..4, then waits for the file named by argv[1] (exit 3 after 90 s without it).
WAIT_CODE = """
import os, sys, time
from runyard import Run
run = Run.get_context()
for i in range(5):
    run.log("loss", float(i))
deadline = time.time() + 90
while len(sys.argv) > 1 and not os.path.exists(sys.argv[1]):
    if time.time() > deadline:
        sys.exit(3)
    time.sleep(0.02)
"""


@pytest.fixture(params=sorted(KIND_TARGETS))
def target(request: pytest.FixtureRequest, ws: Harness) -> str:
    return KIND_TARGETS[request.param](ws)


def direct_job(ws: Harness, run_id: str, gate: Path | None = None) -> JobSpec:
    args = [str(gate)] if gate else []
    return JobSpec(run_id=run_id, attempt=1, experiment="contract", snapshot_id=None,
                   command=[sys.executable, "-c", WAIT_CODE, *args], workspace_name="ws")


def spool_dir_of(handle: JobHandle) -> Path | None:
    """Where the job's spool is, for kinds that keep it on this machine (else None)."""
    run_dir = getattr(handle, "run_dir", "")
    return Path(run_dir) / "spool" if run_dir else None


def metric_steps(ws: Harness, run_id: str, name: str = "loss") -> list[int]:
    return sorted(r.step for r in ws.ctx.store.get_metric_rows(run_id) if r.name == name)


# -- the contract ----------------------------------------------------------------------------
def test_status_answers(ws: Harness, target: str) -> None:
    kind = get_kind(ws.ctx, target)
    status = kind.status()
    assert isinstance(status, TargetStatus)
    assert status.provisioning_state == "Succeeded"
    assert status.errors == []
    assert compute_status(ws.ctx, target).provisioning_state == "Succeeded"


def test_submit_returns_a_handle_that_round_trips(ws: Harness, target: str) -> None:
    kind = get_kind(ws.ctx, target)
    gate = ws.gate("go")
    handle = kind.submit(direct_job(ws, "contract_1_00000001", gate))
    # submit returned while the job still waits for its gate: it did not wait for the job
    assert kind.poll(handle, {}).alive
    assert isinstance(handle, kind.handle_class)
    data = handle.to_json()
    assert data["version"] == HANDLE_VERSION and data["kind"] == kind.kind
    assert data["run_id"] == "contract_1_00000001" and data["attempt"] == 1
    stored = json.loads(json.dumps(data))  # what the store keeps
    other = get_kind(ws.context(), target)
    again = other.load_handle(stored)
    assert again == handle and type(again) is type(handle)
    assert other.poll(again, {}).alive
    with pytest.raises(HandleError):
        other.load_handle({**stored, "kind": "local" if kind.kind != "local" else "fake"})
    with pytest.raises(HandleError):
        other.load_handle({**stored, "version": HANDLE_VERSION + 1})
    gate.touch()
    wait_for(lambda: not kind.poll(handle, {}).alive, "the job to end")


def test_concurrent_first_submits_in_one_process(ws: Harness, target: str) -> None:
    """Several threads (a server, reconcilers sharing a process) submit at the same moment to
    a target that has never run anything: every job starts and completes."""
    n = 6
    barrier = threading.Barrier(n)
    handles: dict[int, JobHandle] = {}
    errors: list[BaseException] = []

    def submit(i: int) -> None:
        kind = get_kind(ws.context(), target)
        job = direct_job(ws, f"contract_1_{i:08x}")
        try:
            barrier.wait(30)
            handles[i] = kind.submit(job)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    kind = get_kind(ws.ctx, target)
    for handle in handles.values():
        wait_for(lambda h=handle: not kind.poll(h, {}).alive, "the job to end")
        events = [e for _, data in kind.poll(handle, {}).chunks.values()
                  for e in parse_lines(data)]
        statuses = [e["status"] for e in events if e.get("type") == "status"]
        assert statuses[-1:] == ["Completed"], (handle.run_id, statuses)
    assert len(handles) == n


def test_poll_returns_new_complete_lines_idempotently(ws: Harness, target: str) -> None:
    kind = get_kind(ws.ctx, target)
    handle = kind.submit(direct_job(ws, "contract_1_00000002"))
    wait_for(lambda: not kind.poll(handle, {}).alive, "the job to end")
    first = kind.poll(handle, {})
    second = kind.poll(handle, {})
    assert first.chunks == second.chunks  # same offsets, same bytes
    assert first.chunks, "a finished job left no spool lines"
    events = []
    for stream, (frm, data) in first.chunks.items():
        assert frm == 0 and data.endswith(b"\n"), stream
        lines = data.splitlines()
        assert all(json.loads(line) for line in lines), stream
        events += list(parse_lines(data))
    assert [e["status"] for e in events if e.get("type") == "status"][-1] == "Completed"
    assert sum(len(e["values"]) for e in events if e.get("type") == "metrics") == 5
    # from the end of every stream: nothing new
    ends = {s: frm + len(data) for s, (frm, data) in first.chunks.items()}
    assert kind.poll(handle, ends).chunks == {}
    # from the middle of a stream (after its first line): exactly the rest
    stream, (_, data) = next(iter(first.chunks.items()))
    cut = data.index(b"\n") + 1
    rest = {stream: (cut, data[cut:])} if data[cut:] else {}
    assert kind.poll(handle, {**ends, stream: cut}).chunks == rest
    spool = spool_dir_of(handle)
    if spool is None:
        return
    # a half-written line is never returned; once complete, only it comes
    line = b'{"seq":1,"ts":1.0,"run_id":"contract_1_00000002","type":"tags","tags":{}}\n'
    with open(spool / "extra.jsonl", "ab") as fh:
        fh.write(line + line[:20])
    assert kind.poll(handle, ends).chunks == {"extra": (0, line)}
    assert kind.poll(handle, {**ends, "extra": len(line)}).chunks == {}
    with open(spool / "extra.jsonl", "ab") as fh:
        fh.write(line[20:])
    assert kind.poll(handle, {**ends, "extra": len(line)}).chunks == {
        "extra": (len(line), line)}


def test_job_runs_to_completed_through_sync_run(ws: Harness, target: str) -> None:
    run = ws.submit(target)
    assert run.status == S.QUEUED and run.handle is not None
    assert run.handle["kind"] == get_kind(ws.ctx, target).kind
    done = ws.drive(run.id)
    assert done.status == S.COMPLETED, done.error
    assert ws.statuses(run.id) == FULL_LIFE
    assert metric_steps(ws, run.id) == [0, 1, 2, 3, 4]
    assert sync_run(ws.ctx, run.id).status == S.COMPLETED  # idempotent afterwards
    assert ws.statuses(run.id) == FULL_LIFE
    assert metric_steps(ws, run.id) == [0, 1, 2, 3, 4]


TREE_SCRIPT = """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(120)
"""


def test_cancel_stops_the_whole_process_tree(ws: Harness, target: str) -> None:
    pids_file = ws.gate("pids")
    run = ws.submit(target, str(pids_file), script=ws.script(TREE_SCRIPT, "tree.py"))
    wait_for(pids_file.exists, "the script to start its child")
    assert run.handle is not None
    pids = [int(run.handle["pid"]), *map(int, pids_file.read_text().split())]
    starts = {pid: process_start_time(pid) for pid in pids}
    assert all(starts.values()), "runner, script and grandchild must be running"
    ws.drive(run.id, until=lambda r: r.status == S.RUNNING)
    assert cancel_run(ws.ctx, run.id).status == S.CANCELED
    wait_for(lambda: all(process_start_time(p) != starts[p] for p in pids),
             "the runner, the script and its child to be gone")
    events = ws.statuses(run.id)
    assert events[-1] == S.CANCELED and events.count(S.CANCELED) == 1
    # a no-op on a finished job, through the kind and through the service
    kind = get_kind(ws.context(), target)
    kind.cancel(kind.load_handle(run.handle))
    assert cancel_run(ws.ctx, run.id).status == S.CANCELED
    assert ws.statuses(run.id) == events


def test_cancel_right_after_submit_ends_canceled(ws: Harness, target: str) -> None:
    """A cancel that reaches the job before its supervisor settled is still a cancel."""
    run = ws.submit(target, str(ws.gate("never")))
    assert run.handle is not None
    runner = (int(run.handle["pid"]), run.handle["pid_start"])
    done = cancel_run(ws.ctx, run.id)
    assert done.status == S.CANCELED, (done.status, done.error, ws.statuses(run.id))
    assert ws.statuses(run.id) == [S.QUEUED, S.CANCELED]
    wait_for(lambda: process_start_time(runner[0]) != runner[1], "the runner to be gone")


def test_cancel_is_a_no_op_on_a_completed_job(ws: Harness, target: str) -> None:
    run = ws.submit(target)
    assert ws.drive(run.id).status == S.COMPLETED
    kind = get_kind(ws.ctx, target)
    assert run.handle is not None
    kind.cancel(kind.load_handle(run.handle))
    assert cancel_run(ws.ctx, run.id).status == S.COMPLETED
    assert ws.statuses(run.id) == FULL_LIFE


def test_job_survives_the_submitter_and_is_reattached(ws: Harness, target: str) -> None:
    gate = ws.gate("go")
    submitter = ws.context()
    run = ws.submit(target, str(gate), ctx=submitter)
    ws.drive(run.id, ctx=submitter, until=lambda r: r.status == S.RUNNING)
    submitter.close()
    del submitter
    fresh = ws.context()  # as a restarted workspace process would
    stored = ws.run(run.id, fresh)
    assert stored.handle is not None
    kind = get_kind(fresh, stored.target)
    assert kind.poll(kind.load_handle(stored.handle), fresh.store.get_offsets(run.id)).alive
    gate.touch()
    done = ws.drive(run.id, ctx=fresh)
    assert done.status == S.COMPLETED, done.error
    assert ws.statuses(run.id) == FULL_LIFE
    assert metric_steps(ws, run.id) == [0, 1, 2, 3, 4]


# -- failure injection through the services --------------------------------------------------
@pytest.mark.parametrize(("point", "error"), [("submit", TargetUnavailable),
                                              ("submit_timeout", TimeoutError)])
def test_submit_failure_fails_the_run_and_raises(ws: Harness, point: str,
                                                 error: type[Exception]) -> None:
    target = ws.fake("fake-bad", point)
    with pytest.raises(error, match="injected"):
        ws.submit(target)
    runs = ws.ctx.store.list_runs(RunFilter(experiment="exp"))
    assert len(runs) == 1
    run = runs[0]
    assert run.status == S.FAILED and run.handle is None
    assert run.error is not None
    assert run.error["message"].startswith("could not start the run")
    assert "injected" in run.error["message"]
    assert ws.statuses(run.id) == [S.QUEUED, S.FAILED]
    assert read_starts(ws.ctx) == []
    assert live_runs(ws.ctx, target) == []
    assert Reconciler(ws.ctx).step() == 0  # nothing left queued for the reconciler
    assert read_starts(ws.ctx) == []


def test_poll_errors_keep_the_run_going(ws: Harness) -> None:
    target = ws.fake("fake-flaky", "poll", poll_failures=3)
    gate = ws.gate("go")
    run = ws.submit(target, str(gate))
    for _ in range(3):
        with pytest.raises(TargetUnavailable):
            reconcile_run(ws.ctx, run.id)
        assert not ws.run(run.id).status.terminal
    gate.touch()
    reconciler = Reconciler(ws.context())
    wait_for(lambda: reconciler.step() == 0, "the reconciler to finish the run")
    done = ws.run(run.id)
    assert done.status == S.COMPLETED, done.error
    assert ws.statuses(run.id) == FULL_LIFE
    assert metric_steps(ws, run.id) == [0, 1, 2, 3, 4]
    assert len(read_starts(ws.ctx, run.id)) == 1


def test_lost_handle_ends_not_responding_with_the_reason(ws: Harness) -> None:
    target = ws.fake("fake-lost", "lost_handle")
    run = ws.submit(target, str(ws.gate("never")))
    assert run.handle is not None
    lost = sync_run(ws.ctx, run.id)
    assert lost.status == S.NOT_RESPONDING
    assert lost.error is not None and lost.error["message"] == LOST_REASON
    events = ws.ctx.store.list_events(run.id)
    assert events[-1].status == S.NOT_RESPONDING and events[-1].cause == LOST_REASON
    assert sync_run(ws.ctx, run.id).status == S.NOT_RESPONDING
    assert len(ws.ctx.store.list_events(run.id)) == len(events)


def test_not_ready_queues_then_dispatches_exactly_once(ws: Harness) -> None:
    target = ws.fake("fake-slow", "not_ready")
    run = ws.submit(target)
    assert run.status == S.QUEUED and run.handle is None
    assert "job" in run.definition
    assert reconcile_run(ws.ctx, run.id).status == S.QUEUED
    assert ws.run(run.id).handle is None and read_starts(ws.ctx) == []

    ready = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            reconciler = Reconciler(ws.context())
            reconciler.step()
            ready.wait(30)
            wait_for(lambda: reconciler.step() == 0, "the run to end", interval=0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    ready_flag(ws.ctx, target).touch()
    ready.set()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    done = ws.run(run.id)
    assert done.status == S.COMPLETED, done.error
    assert [s["attempt"] for s in read_starts(ws.ctx, run.id)] == [1]
    assert ws.statuses(run.id) == FULL_LIFE
    assert metric_steps(ws, run.id) == [0, 1, 2, 3, 4]


ATTEMPT_SCRIPT = """
    import os, sys, time
    from runyard import Run
    run = Run.get_context()
    if os.environ["RUNYARD_ATTEMPT"] == "1":
        time.sleep(90)  # preempted long before
        sys.exit(4)
    run.log("attempt", float(os.environ["RUNYARD_ATTEMPT"]))
"""


def test_restart_records_a_second_attempt_with_its_cause(ws: Harness) -> None:
    target = ws.fake("fake-pre", "restart")
    run = ws.submit(target, script=ws.script(ATTEMPT_SCRIPT, "attempts.py"))
    done = ws.drive(run.id)
    assert done.status == S.COMPLETED, done.error
    assert done.attempt == 2
    attempts = ws.ctx.store.list_attempts(run.id)
    assert [a.attempt for a in attempts] == [1, 2]
    assert attempts[1].cause == RESTART_CAUSE
    starts = read_starts(ws.ctx, run.id)
    assert [s["attempt"] for s in starts] == [1, 2]
    assert process_start_time(int(starts[0]["pid"])) != starts[0]["pid_start"]
    events = ws.ctx.store.list_events(run.id)
    second = [(e.status, e.cause) for e in events if e.attempt == 2]
    assert second[0] == (S.QUEUED, RESTART_CAUSE)
    assert [s for s, _ in second] == FULL_LIFE
    assert [e.status for e in events if e.attempt == 1] == [S.QUEUED, S.PREPARING, S.STARTING,
                                                            S.RUNNING]
    rows = ws.ctx.store.get_metric_rows(run.id)
    assert [(r.name, r.value) for r in rows] == [("attempt", 2.0)]


def test_run_between_attempts_is_not_dispatched_again(ws: Harness) -> None:
    """While ``restart()`` of attempt 2 is under way the run is Queued without a handle; a
    reconciler passing by then must not dispatch the stored job (attempt 1) once more."""
    target = ws.fake("fake-gate", "restart", "restart_gate")
    run = ws.submit(target, script=ws.script(ATTEMPT_SCRIPT, "attempts.py"))
    errors: list[BaseException] = []

    def restarter() -> None:
        try:
            ws.drive(run.id, ctx=ws.context(), until=lambda r: r.attempt == 2
                     and r.handle is not None)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=restarter)
    thread.start()
    gate = restart_gate(ws.ctx, run.id)
    try:
        wait_for((gate.parent / "restart-waiting").exists, "restart() to be under way")
        between = ws.run(run.id)
        assert (between.attempt, between.status) == (2, S.QUEUED)
        reconcile_run(ws.context(), run.id)  # a second reconciler passes by
    finally:
        gate.touch()
        thread.join(120)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    done = ws.drive(run.id)
    assert done.status == S.COMPLETED, done.error
    assert [s["attempt"] for s in read_starts(ws.ctx, run.id)] == [1, 2]


def test_fake_faults_are_per_target(ws: Harness) -> None:
    """The injection is the fake's own: another target of the workspace is untouched."""
    bad = ws.fake("fake-bad", "submit")
    with pytest.raises(TargetUnavailable):
        ws.submit(bad)
    run = ws.submit("local")
    assert ws.drive(run.id).status == S.COMPLETED
