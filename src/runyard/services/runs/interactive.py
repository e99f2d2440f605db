"""Interactive runs: a run tracked from the calling process (``Experiment.start_logging``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runyard.compute.local import LocalHandle, process_start_time
from runyard.entities import RunRecord, RunStatus
from runyard.runtime.context import LiveRun, start_interactive
from runyard.services.runs.submit import new_run_id

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext


def start_interactive_run(ctx: WorkspaceContext, experiment: str,
                          snapshot_directory: Path | None, outputs: str | None,
                          display_name: str | None) -> tuple[RunRecord, LiveRun]:
    """Record a Running interactive run owned by this process and return its tracker."""
    snapshot_id = None
    if snapshot_directory is not None:
        max_bytes, max_files = ctx.snapshot_limits
        snapshot_id = ctx.snapshots.take(snapshot_directory, max_bytes=max_bytes,
                                         max_files=max_files, exclude=[ctx.data_dir]).id
    now = time.time()
    run_id = new_run_id(experiment)
    rd = ctx.run_dir(run_id)
    handle = LocalHandle(run_id=run_id, attempt=1, pid=os.getpid(),
                         pid_start=process_start_time(os.getpid()), run_dir=str(rd))
    record = RunRecord(id=run_id, experiment=experiment, status=RunStatus.RUNNING,
                       created_at=now, start_time=now, run_type="runyard.interactive",
                       display_name=display_name, target="local", snapshot_id=snapshot_id,
                       handle=handle.to_json(), definition={"outputs": outputs})
    ctx.store.get_or_create_experiment(experiment)
    ctx.store.create_run(record, "interactive run started")
    artifacts = ctx.artifacts.local_dir(run_id)
    assert artifacts is not None
    live = start_interactive(run_id, rd / "spool", artifacts, experiment, ctx.name)
    return record, live
