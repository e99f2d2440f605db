"""Cancelling runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runyard.entities import RunRecord, RunStatus
from runyard.errors import NotFound
from runyard.services.runs.sync import sync_run
from runyard.services.targets import get_kind
from runyard.store.base import Transition

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext


def cancel_run(ctx: WorkspaceContext, run_id: str) -> RunRecord:
    """Cancel a run: its target stops the whole process tree; the run ends Canceled.

    A run that already finished is left as it is.
    """
    run = sync_run(ctx, run_id)
    if run.status.terminal:
        return run
    if run.handle is not None and run.parent_id is None:
        target = get_kind(ctx, run.target)
        target.cancel(target.load_handle(run.handle))
        run = sync_run(ctx, run_id, vanished=(RunStatus.CANCELED, "canceled by user"))
    if not run.status.terminal:  # the supervisor could not say so itself
        ctx.store.transition(Transition(run_id, RunStatus.CANCELED, "canceled by user",
                                       time.time()))
    fresh = ctx.store.get_run(run_id)
    if fresh is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return fresh
