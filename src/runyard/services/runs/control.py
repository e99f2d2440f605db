"""Cancelling runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runyard.entities import RunRecord, RunStatus
from runyard.errors import NotFound
from runyard.services.runs.sync import sync_run
from runyard.store.base import Transition

if TYPE_CHECKING:
    from runyard.workspace import Workspace


def cancel_run(ws: Workspace, run_id: str) -> RunRecord:
    """Cancel a run: its target stops the whole process tree; the run ends Canceled.

    A run that already finished is left as it is.
    """
    run = sync_run(ws, run_id)
    if run.status.terminal:
        return run
    if run.handle is not None and run.parent_id is None:
        ws.get_target(run.target).cancel(run.handle)
        run = sync_run(ws, run_id)
    if not run.status.terminal:  # the supervisor could not say so itself
        ws.store.transition(Transition(run_id, RunStatus.CANCELED, "canceled by user",
                                       time.time()))
    fresh = ws.store.get_run(run_id)
    if fresh is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return fresh
