"""Cancelling runs, and ending them from outside their script."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from runyard.entities import RunRecord, RunStatus
from runyard.errors import InvalidParameter, InvalidTransition, NotFound
from runyard.services.runs.sync import sync_run
from runyard.services.targets import get_kind
from runyard.store.base import RunFilter, Transition

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext


#: Tag of a run stopped by what runs it (a sweep's policy, a canceled parent): why.
STOPPED_TAG = "runyard.termination_reason"


def cancel_run(ctx: WorkspaceContext, run_id: str) -> RunRecord:
    """Cancel a run: its target stops the whole process tree; the run ends Canceled.

    A run that already finished is left as it is.
    """
    run = sync_run(ctx, run_id)
    if run.status.terminal:
        return run
    if run.handle is not None:  # a top-level run or a sweep's trial (node children have none)
        target = get_kind(ctx, run.target)
        target.cancel(target.load_handle(run.handle))
        run = sync_run(ctx, run_id, vanished=(RunStatus.CANCELED, "canceled by user"))
    if not run.status.terminal:  # the supervisor could not say so itself
        ctx.store.transition(Transition(run_id, RunStatus.CANCELED, "canceled by user",
                                       time.time()))
    if run.handle is None:  # a parent of runs of their own (a sweep's trials): them too
        for child in ctx.store.list_runs(RunFilter(parent_id=run_id, top_level_only=False)):
            if not child.status.terminal and (child.handle is not None
                                              or "job" in child.definition):
                if not child.tags.get(STOPPED_TAG):
                    ctx.store.set_tags(child.id, {STOPPED_TAG: "its parent run was canceled"})
                cancel_run(ctx, child.id)
    fresh = ctx.store.get_run(run_id)
    if fresh is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return fresh


def end_run(ctx: WorkspaceContext, run_id: str, status: RunStatus, cause: str,
            error: dict[str, Any] | None = None) -> RunRecord:
    """End a live run from outside its script as ``status`` (Azure ML v1's ``run.complete()``
    / ``run.fail()`` on a submitted run): the status is recorded first (so the runner's own
    report of being stopped cannot replace it), then the target stops the script's process
    tree like a cancel. A run that has already ended is refused with ``InvalidTransition``
    naming its status, and left as it is.
    """
    if not status.terminal:
        raise InvalidParameter("status", f"{status.value} does not end a run; use Completed, "
                               "Failed or Canceled")
    run = sync_run(ctx, run_id)
    applied = not run.status.terminal and ctx.store.transition(
        Transition(run_id, status, cause, time.time(), error=error))
    fresh = ctx.store.get_run(run_id)
    if fresh is None:
        raise NotFound(f"run {run_id!r} does not exist")
    if not applied:
        raise InvalidTransition(f"run {run_id} has already ended {fresh.status.value}; "
                                f"it cannot be set {status.value} (its status is unchanged)",
                                details={"run_id": run_id, "status": fresh.status.value})
    if fresh.handle is not None and fresh.parent_id is None:
        target = get_kind(ctx, fresh.target)
        target.cancel(target.load_handle(fresh.handle))
        fresh = sync_run(ctx, run_id)
    return fresh
