"""Services over a real workspace (SQLite in tmp_path): the compute-target resource API, target
lookup, and several reconcilers at once on the same live runs.

The reconciler test runs three loops of ``Reconciler(ctx).step()`` (threads, or processes like
``python -m runyard.services.runs.reconciler``), each with its own ``WorkspaceContext``, over
runs on a fake target that becomes ready only once they all run, so that dispatch, ingest and
finishing all race; nothing may be applied twice.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from runyard.compute import kinds
from runyard.compute.config import LocalProvisioningConfiguration
from runyard.compute.procs import process_start_time
from runyard.entities import RunStatus
from runyard.errors import (
    ComputeTargetBusy,
    ComputeTargetExists,
    ComputeTargetInvalid,
    ComputeTargetNotFound,
    ComputeTargetNotSupported,
)
from runyard.services.compute import (
    create_compute,
    delete_compute,
    get_record,
    list_compute,
    update_compute,
)
from runyard.services.runs.reconciler import Reconciler
from runyard.services.targets import get_kind, kind_class, live_runs

from .conftest import Harness, wait_for
from .fake_target import read_starts, ready_flag

pytestmark = pytest.mark.integration

S = RunStatus
FULL_LIFE = [S.QUEUED, S.PREPARING, S.STARTING, S.RUNNING, S.FINALIZING, S.COMPLETED]


# -- compute targets as resources ------------------------------------------------------------
def test_create_and_update_a_named_local_target(ws: Harness) -> None:
    rec = create_compute(ws.ctx, "cpu-box", LocalProvisioningConfiguration(max_concurrent_runs=2))
    assert (rec.name, rec.kind, rec.state, rec.managed) == ("cpu-box", "local", "Succeeded", True)
    assert rec.config["max_concurrent_runs"] == 2
    assert [r.name for r in list_compute(ws.ctx)] == ["local", "cpu-box"]
    assert get_kind(ws.context(), "cpu-box").max_concurrent_runs == 2
    with pytest.raises(ComputeTargetExists):
        create_compute(ws.ctx, "cpu-box", LocalProvisioningConfiguration())
    with pytest.raises(ComputeTargetInvalid):
        create_compute(ws.ctx, "local", LocalProvisioningConfiguration())

    updated = update_compute(ws.ctx, "cpu-box", {"max_concurrent_runs": 3})
    assert updated.config["max_concurrent_runs"] == 3
    assert get_record(ws.context(), "cpu-box").config["max_concurrent_runs"] == 3
    with pytest.raises(ComputeTargetInvalid, match="max_concurrent_runs"):
        update_compute(ws.ctx, "cpu-box", {"max_concurrent_runs": 0})
    with pytest.raises(ComputeTargetInvalid, match="vm_size"):
        update_compute(ws.ctx, "cpu-box", {"vm_size": "big"})
    with pytest.raises(ComputeTargetNotSupported):
        update_compute(ws.ctx, "local", {"max_concurrent_runs": 3})
    assert get_record(ws.ctx, "cpu-box").config["max_concurrent_runs"] == 3


def test_delete_refuses_a_busy_target_unless_forced(ws: Harness) -> None:
    create_compute(ws.ctx, "cpu-box", LocalProvisioningConfiguration())
    gate = ws.gate("go")
    run = ws.submit("cpu-box", str(gate))
    assert run.handle is not None
    runner = (int(run.handle["pid"]), run.handle["pid_start"])
    ws.drive(run.id, until=lambda r: r.status == S.RUNNING)
    with pytest.raises(ComputeTargetBusy) as busy:
        delete_compute(ws.ctx, "cpu-box", force=False, detach=False)
    assert busy.value.details["runs"] == [run.id]
    assert run.id in busy.value.message
    assert get_record(ws.ctx, "cpu-box").state == "Succeeded"  # untouched
    assert live_runs(ws.ctx, "cpu-box") == [run.id]
    with pytest.raises(ComputeTargetInvalid):
        delete_compute(ws.ctx, "cpu-box", force=True, detach=True)  # managed: delete, not detach
    with pytest.raises(ComputeTargetNotSupported):
        delete_compute(ws.ctx, "local", force=True, detach=False)

    delete_compute(ws.ctx, "cpu-box", force=True, detach=False)
    assert ws.run(run.id).status == S.CANCELED
    wait_for(lambda: process_start_time(runner[0]) != runner[1], "the runner to be gone")
    with pytest.raises(ComputeTargetNotFound):
        kind_class(ws.context(), "cpu-box")
    assert [r.name for r in list_compute(ws.ctx)] == ["local"]


def test_delete_an_idle_target(ws: Harness) -> None:
    create_compute(ws.ctx, "cpu-box", LocalProvisioningConfiguration())
    run = ws.submit("cpu-box")
    assert ws.drive(run.id).status == S.COMPLETED
    delete_compute(ws.ctx, "cpu-box", force=False, detach=False)
    assert ws.ctx.store.get_compute_target("cpu-box") is None
    assert ws.run(run.id).status == S.COMPLETED  # finished runs stay as they were


def test_kind_class_of_an_unknown_target_names_the_known_ones(ws: Harness) -> None:
    create_compute(ws.ctx, "cpu-box", LocalProvisioningConfiguration())
    ws.fake("fake-one")
    with pytest.raises(ComputeTargetNotFound) as err:
        kind_class(ws.ctx, "gpu-box")
    message = str(err.value)
    for name in ("gpu-box", "local", "cpu-box", "fake-one"):
        assert name in message
    assert kind_class(ws.ctx, "local").kind == "local"
    assert kind_class(ws.ctx, "fake-one").kind == "fake"


def test_kind_class_of_a_target_whose_kind_is_not_installed(
        ws: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.fake("fake-one")
    monkeypatch.delitem(kinds.BUILTIN_KINDS, "fake")
    with pytest.raises(ComputeTargetNotSupported, match="fake"):
        kind_class(ws.ctx, "fake-one")
    assert [r.name for r in list_compute(ws.ctx)] == ["local"]


# -- three reconcilers at once ---------------------------------------------------------------
METRIC_SCRIPT = """
    import sys, time
    from runyard import Run
    run = Run.get_context()
    for burst in range(6):
        for i in range(10):
            run.log("m", float(burst * 10 + i))
            run.tag(f"t{burst}", str(i))
        time.sleep(0.55)  # past the metric flush interval: one metrics line per burst
"""

#: One reconciler process: ``python -c LOOP <contract dir> <workspace folder> <up marker>``.
LOOP = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from runyard.compute import kinds
    kinds.BUILTIN_KINDS["fake"] = "fake_target:FakeTarget"
    from runyard.context import open_context
    from runyard.services.runs.reconciler import Reconciler
    ctx = open_context(sys.argv[2])
    reconciler = Reconciler(ctx)
    reconciler.step()
    open(sys.argv[3], "w").close()  # this loop is up
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if reconciler.step() == 0:
            sys.exit(0)
        time.sleep(0.01)
    sys.exit(5)
""")


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_three_reconcilers_apply_everything_once(ws: Harness, mode: str,
                                                 contract_dir: Path) -> None:
    target = ws.fake("fake-race", "not_ready")
    script = ws.script(METRIC_SCRIPT, "metrics.py")
    runs = [ws.submit(target, script=script) for _ in range(6)]
    assert all(r.status == S.QUEUED and r.handle is None for r in runs)
    up = [ws.gate(f"up-{i}") for i in range(3)]

    if mode == "threads":
        errors: list[BaseException] = []

        def loop(marker: Path) -> None:
            try:
                reconciler = Reconciler(ws.context())
                reconciler.step()
                marker.touch()
                wait_for(lambda: reconciler.step() == 0, "every run to end", 120, 0.01)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        workers = [threading.Thread(target=loop, args=(m,)) for m in up]
        for w in workers:
            w.start()
        try:
            wait_for(lambda: all(m.exists() for m in up), "the three reconcilers to be up")
        finally:
            ready_flag(ws.ctx, target).touch()
            for w in workers:
                w.join(150)
        assert not any(w.is_alive() for w in workers)
        assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    else:
        procs = [subprocess.Popen([sys.executable, "-c", LOOP, str(contract_dir),
                                   str(ws.path), str(m)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for m in up]
        try:
            wait_for(lambda: all(m.exists() or p.poll() is not None
                                 for m, p in zip(up, procs, strict=True)),
                     "the three reconcilers to be up")
        finally:
            ready_flag(ws.ctx, target).touch()
            outputs = []
            for p in procs:
                try:
                    outputs.append(p.communicate(timeout=150)[0].decode(errors="replace"))
                except subprocess.TimeoutExpired:
                    p.kill()
                    outputs.append(p.communicate()[0].decode(errors="replace"))
        assert [p.returncode for p in procs] == [0, 0, 0], outputs

    for run in runs:
        done = ws.run(run.id)
        assert done.status == S.COMPLETED, (run.id, done.error)
        assert [s["attempt"] for s in read_starts(ws.ctx, run.id)] == [1], run.id
        assert ws.statuses(run.id) == FULL_LIFE, run.id
        rows = ws.ctx.store.get_metric_rows(run.id, ["m"])
        assert sorted(r.value for r in rows) == [float(i) for i in range(60)], run.id
        assert len({r.step for r in rows}) == 60, run.id
        assert {k: v for k, v in done.tags.items() if k.startswith("t")} == {
            f"t{b}": "9" for b in range(6)}, run.id
    assert len(read_starts(ws.ctx)) == len(runs)
