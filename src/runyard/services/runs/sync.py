"""Pulling a run's events from its target into the workspace (the reconcile step)."""

from __future__ import annotations

import fcntl
import os
import time
from typing import TYPE_CHECKING

from runyard.entities import RunRecord, RunStatus
from runyard.errors import ComputeTargetNotFound, NotFound, RunyardError
from runyard.services.runs.ingest import build_batch
from runyard.store.base import RunFilter, Transition

if TYPE_CHECKING:
    from runyard.compute.base import ComputeTarget
    from runyard.workspace import Workspace

#: Children still open when their parent ends take the parent's outcome.
_CHILD_OUTCOME = {RunStatus.COMPLETED: RunStatus.COMPLETED, RunStatus.FAILED: RunStatus.FAILED,
                  RunStatus.CANCELED: RunStatus.CANCELED,
                  RunStatus.NOT_RESPONDING: RunStatus.NOT_RESPONDING}


def sync_run(ws: Workspace, run_id: str) -> RunRecord:
    """Ingest everything new for ``run_id`` (idempotent) and return the fresh record.

    A run whose supervisor is gone without reporting an end becomes ``NotResponding``.
    """
    store = ws.store
    run = store.get_run(run_id)
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
    try:
        target = ws.get_target(owner.target)
    except ComputeTargetNotFound:
        if not owner.status.terminal:
            ws.store.transition(Transition(owner.id, RunStatus.NOT_RESPONDING,
                                           f"compute target {owner.target!r} was removed",
                                           time.time()))
        result = store.get_run(run_id)
        assert result is not None
        return result
    for _ in range(100):  # bounded: each pass reads at most 64 MiB per stream
        events = target.poll(owner.handle, store.get_offsets(owner.id))
        if events.chunks:
            applied = store.apply_ingest(owner.id, build_batch(owner, events.chunks))
            _close_children(ws, owner.id, applied)
        fresh = store.get_run(owner.id)
        assert fresh is not None
        if not events.chunks:
            if events.restart and not fresh.status.terminal and fresh.handle is not None:
                _restart(ws, target, fresh, events.restart)
                break
            if not events.alive and not fresh.status.terminal and fresh.handle is not None:
                now = time.time()
                tr = Transition(owner.id, RunStatus.NOT_RESPONDING,
                                events.reason or "the runner process vanished without "
                                "reporting an end", now,
                                error={"message": events.reason or "The run's runner process "
                                       "is gone; the run stopped without reporting its result."})
                if store.transition(tr):
                    _close_children(ws, owner.id, [tr])
            break
    final = store.get_run(owner.id)
    if final is not None and final.status.terminal:
        target.on_run_end(owner.id)
    result = store.get_run(run_id)
    assert result is not None
    return result


def _restart(ws: Workspace, target: ComputeTarget, run: RunRecord, cause: str) -> None:
    """A new attempt after the target lost the last one (a preempted node): back to Queued,
    started again on the target; it does not count against the run's retries."""
    lock = ws.run_dir(run.id) / ".attempt.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one restart per lost attempt, across processes
        fresh = ws.store.get_run(run.id)
        if (fresh is None or fresh.status.terminal or fresh.handle is None
                or int(fresh.handle.get("attempt", fresh.attempt)) != run.attempt
                or fresh.attempt != run.attempt):
            return  # another process restarted it already (or it ended)
        _start_next_attempt(ws, target, fresh, cause)
    finally:
        os.close(fd)


def _start_next_attempt(ws: Workspace, target: ComputeTarget, run: RunRecord,
                        cause: str) -> None:
    assert run.handle is not None
    attempt = ws.store.start_attempt(run.id, cause, time.time())
    try:
        handle = target.restart(run.handle, attempt)
    except (OSError, RunyardError) as exc:
        ws.store.transition(Transition(run.id, RunStatus.FAILED, "restart failed", time.time(),
                                       attempt=attempt, error={
                                           "message": f"could not start attempt {attempt} "
                                                      f"after '{cause}': {exc}"}))
        return
    ws.store.set_handle(run.id, handle)


def _close_children(ws: Workspace, parent_id: str, applied: list[Transition]) -> None:
    for tr in applied:
        if tr.run_id != parent_id or not tr.new.terminal:
            continue
        outcome = _CHILD_OUTCOME[tr.new]
        open_children = ws.store.list_runs(RunFilter(parent_id=parent_id, top_level_only=False))
        for child in open_children:
            if not child.status.terminal:
                ws.store.transition(Transition(child.id, outcome,
                                               f"parent run ended {tr.new.value}", tr.at))


def reconcile(ws: Workspace) -> list[RunRecord]:
    """Sync every unfinished top-level run (reattach after a restart; mark vanished ones)."""
    live = [s for s in RunStatus if not s.terminal]
    out = []
    for run in ws.store.list_runs(RunFilter(statuses=live)):
        out.append(sync_run(ws, run.id))
    return out
