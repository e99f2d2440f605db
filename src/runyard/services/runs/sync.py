"""Pulling a run's events from its target into the workspace (the reconcile step)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from runyard.entities import FileRecord, RunRecord, RunStatus
from runyard.errors import ComputeTargetNotFound, NotFound, RunyardError
from runyard.services.runs import bindings
from runyard.services.runs.ingest import build_batch
from runyard.services.targets import get_kind
from runyard.store.base import IngestBatch, RejectedEvent, RunFilter, Transition

if TYPE_CHECKING:
    from runyard.compute.base import ComputeKind
    from runyard.context import WorkspaceContext

#: Where the lines the ingest refused are kept, in the owner run's artifacts.
REJECTED_EVENTS = "system_logs/rejected_events.jsonl"

#: Passes of one sync: each reads at most 64 MiB per stream. The reconciler loop comes back
#: for the rest; a reader's bounded sync stops here too.
MAX_PASSES = 100

#: Children still open when their parent ends take the parent's outcome.
_CHILD_OUTCOME = {RunStatus.COMPLETED: RunStatus.COMPLETED, RunStatus.FAILED: RunStatus.FAILED,
                  RunStatus.CANCELED: RunStatus.CANCELED,
                  RunStatus.NOT_RESPONDING: RunStatus.NOT_RESPONDING}


def sync_run(ctx: WorkspaceContext, run_id: str, max_passes: int = MAX_PASSES, *,
             vanished: tuple[RunStatus, str] | None = None,
             record: RunRecord | None = None) -> RunRecord:
    """Ingest what is new for ``run_id`` (idempotent) and return the fresh record.

    A run whose supervisor is gone without reporting an end becomes ``NotResponding`` (or
    ``vanished``: the status and cause to record instead, e.g. Canceled after a cancel that
    stopped the runner before it could report). Finishing
    actions (deleting a run-based target) are the reconciler's (``reconcile_run``).
    ``record``: the run as the caller just read it (saves a read).
    """
    store = ctx.store
    run = record if record is not None and record.id == run_id else store.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist")
    owner = run
    while owner.handle is None and owner.parent_id:  # children live in the parent's spool
        parent = store.get_run(owner.parent_id)
        if parent is None:
            break
        owner = parent
    if owner.handle is None:
        return run
    with _ingest_lock(ctx, owner.id) as mine:
        if not mine:  # another process is ingesting this run now: what it applies is enough
            return run
        return _sync_owner(ctx, run_id, owner, max_passes, vanished)


@contextlib.contextmanager
def _ingest_lock(ctx: WorkspaceContext, run_id: str) -> Iterator[bool]:
    """Try to become the one process ingesting ``run_id`` now (yields False when another is):
    two ingesters would both read the same bytes, and the store would drop one batch."""
    path = ctx.run_dir(run_id) / ".ingest.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:  # a run folder of another machine (no local spool): no lock
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _sync_owner(ctx: WorkspaceContext, run_id: str, owner: RunRecord, max_passes: int,
                vanished: tuple[RunStatus, str] | None) -> RunRecord:
    store = ctx.store
    try:
        target = get_kind(ctx, owner.target)
    except ComputeTargetNotFound:
        if not owner.status.terminal:
            ctx.store.transition(Transition(owner.id, RunStatus.NOT_RESPONDING,
                                           f"compute target {owner.target!r} was removed",
                                           time.time()))
        result = store.get_run(run_id)
        assert result is not None
        return result
    assert owner.handle is not None
    handle = target.load_handle(owner.handle)
    fresh: RunRecord | None = owner
    for _ in range(max_passes):  # bounded: each pass reads at most 64 MiB per stream
        events = target.poll(handle, store.get_offsets(owner.id))
        if events.chunks:
            batch = build_batch(owner, events.chunks, _lookup(ctx))
            if (owner.definition.get("job") or {}).get("outputs"):
                _finish_outputs(ctx, owner, batch)
            applied = store.apply_ingest(owner.id, batch)
            if batch.applied and batch.rejected:
                _keep_rejected(ctx, owner.id, batch.rejected)
            close_children(ctx, owner.id, applied)
            fresh = None  # changed: read again below
        if not events.chunks:
            fresh = fresh or store.get_run(owner.id)
            assert fresh is not None
            if events.restart and not fresh.status.terminal and fresh.handle is not None:
                _restart(ctx, target, fresh, events.restart)
                break
            if not events.alive and not fresh.status.terminal and fresh.handle is not None:
                now = time.time()
                if vanished is not None:
                    tr = Transition(owner.id, vanished[0], vanished[1], now)
                    if store.transition(tr):
                        close_children(ctx, owner.id, [tr])
                    fresh = None
                    break
                tr = Transition(owner.id, RunStatus.NOT_RESPONDING,
                                events.reason or "the runner process vanished without "
                                "reporting an end", now,
                                error={"message": events.reason or "The run's runner process "
                                       "is gone; the run stopped without reporting its result."})
                if store.transition(tr):
                    close_children(ctx, owner.id, [tr])
                # the runner is gone: what it started goes too (not on a host that could not
                # be reached: its run may still be running there, and come back)
                if not events.unreachable:
                    with contextlib.suppress(RunyardError, OSError):
                        target.kill_leftovers(handle)
                fresh = None
            break
    if fresh is not None and run_id == owner.id and not events.restart:
        return fresh  # nothing was applied since it was read
    result = store.get_run(run_id)
    assert result is not None
    return result


def _finish_outputs(ctx: WorkspaceContext, owner: RunRecord, batch: IngestBatch) -> None:
    """Before the runner's Completed is recorded: upload the run's output folders (and
    register their datasets); a failure turns the Completed into Failed saying why."""
    outputs = list(owner.definition["job"]["outputs"])
    for i, t in enumerate(batch.transitions):
        if t.run_id != owner.id or t.new != RunStatus.COMPLETED:
            continue
        try:
            bindings.finish_outputs(ctx, owner.id, outputs)
        except (RunyardError, OSError) as exc:
            batch.transitions[i] = dataclasses.replace(
                t, new=RunStatus.FAILED, cause="output upload failed",
                error={"message": f"the script completed, but its output data could not be "
                                  f"uploaded: {exc}"})


def _lookup(ctx: WorkspaceContext) -> Callable[[str], RunRecord | None]:
    cache: dict[str, RunRecord | None] = {}

    def lookup(run_id: str) -> RunRecord | None:
        if run_id not in cache:
            cache[run_id] = ctx.store.get_run(run_id)
        return cache[run_id]
    return lookup


def _keep_rejected(ctx: WorkspaceContext, run_id: str, rejected: list[RejectedEvent]) -> None:
    """Record refused lines in the run's ``system_logs/rejected_events.jsonl`` (after the
    batch that counted them committed, so each is kept once)."""
    data = "".join(json.dumps(r.to_json(), separators=(",", ":")) + "\n" for r in rejected)
    try:
        size = ctx.artifacts.append(run_id, REJECTED_EVENTS, data.encode())
    except (OSError, RunyardError):
        return  # the count on the run still tells
    ctx.store.add_files([FileRecord(run_id, REJECTED_EVENTS, size)])


def _restart(ctx: WorkspaceContext, target: ComputeKind, run: RunRecord, cause: str) -> None:
    """A new attempt after the target lost the last one (a preempted node): back to Queued,
    started again on the target; it does not count against the run's retries."""
    lock = ctx.run_dir(run.id) / ".attempt.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one restart per lost attempt, across processes
        fresh = ctx.store.get_run(run.id)
        if (fresh is None or fresh.status.terminal or fresh.handle is None
                or int(fresh.handle.get("attempt", fresh.attempt)) != run.attempt
                or fresh.attempt != run.attempt):
            return  # another process restarted it already (or it ended)
        _start_next_attempt(ctx, target, fresh, cause)
    finally:
        os.close(fd)


def _start_next_attempt(ctx: WorkspaceContext, target: ComputeKind, run: RunRecord,
                        cause: str) -> None:
    assert run.handle is not None
    attempt = ctx.store.start_attempt(run.id, cause, time.time())
    try:
        handle = target.restart(target.load_handle(run.handle), attempt)
    except (OSError, RunyardError) as exc:
        ctx.store.transition(Transition(run.id, RunStatus.FAILED, "restart failed", time.time(),
                                       attempt=attempt, error={
                                           "message": f"could not start attempt {attempt} "
                                                      f"after '{cause}': {exc}"}))
        return
    ctx.store.set_handle(run.id, handle.to_json())


def close_children(ctx: WorkspaceContext, parent_id: str, applied: list[Transition]) -> None:
    """Children still open when their parent ends (or is lost) take the parent's outcome."""
    for tr in applied:
        if tr.run_id != parent_id or not tr.new.terminal:
            continue
        outcome = _CHILD_OUTCOME[tr.new]
        open_children = ctx.store.list_runs(RunFilter(parent_id=parent_id, top_level_only=False))
        for child in open_children:
            if not child.status.terminal:
                ctx.store.transition(Transition(child.id, outcome,
                                               f"parent run ended {tr.new.value}", tr.at))
