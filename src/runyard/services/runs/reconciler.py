"""The reconciler: the one loop that moves runs forward.

:func:`reconcile_run` is one step for one run: dispatch it when its target has become ready,
ingest what its target has (bounded), and finish it (delete a run-based target once its run
ended). :class:`Reconciler` runs that step over every live run in batches, polling each run
again after a backoff that grows while nothing happens, and will host the pipeline/sweep
controllers and the schedule loop.

Embedded mode: :func:`ensure_reconciler` (called by submit) starts a detached
``python -m runyard.services.runs.reconciler <workspace>`` unless one runs; the one that holds
``.runyard/reconciler.lock`` is the leader, the others exit at once, and the leader exits after
a quiet period with nothing live. ``runyard reconcile`` runs one in the foreground. Several
reconcilers at once are safe: ingest is keyed by offsets, transitions are conditional, dispatch
and restarts hold a lock per run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runyard.compute.procs import keep
from runyard.entities import RunRecord, RunStatus
from runyard.errors import DatabaseBusy, NotFound, RunyardError, WorkspaceError
from runyard.services.compute import finish_run_on_target
from runyard.services.runs.submit import dispatch
from runyard.services.runs.sync import close_children, sync_run
from runyard.services.targets import get_kind
from runyard.store.base import RunFilter, Transition

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

LOCK_NAME = "reconciler.lock"
#: How long a detached reconciler waits before its first pass: the submitting process usually
#: reads its own run, so the background one (needed when nobody reads) starts after a pause,
#: and imports nothing before it, so it costs no CPU while a short run is being watched.
START_DELAY_SECONDS = 3.0
#: The detached process: take the leader lock (exit at once if another leads), then pause,
#: then import and serve holding that lock.
_LAUNCH = ("import fcntl, os, sys, time\n"
           "fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)\n"
           "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
           "except BlockingIOError:\n    sys.exit(0)\n"
           f"os.nice(10)\ntime.sleep({START_DELAY_SECONDS})\n"
           "from runyard.services.runs.reconciler import main\n"
           "sys.exit(main([sys.argv[1]], lock_fd=fd))\n")
#: A detached leader exits after this long with nothing live.
QUIET_EXIT_SECONDS = 10.0
#: Longest wait before a live run is polled again (backoff grows to it while nothing moves).
MAX_BACKOFF_SECONDS = 2.0
MIN_BACKOFF_SECONDS = 0.25
#: How long a NotResponding run may come back (its runner or host) before the reconciler fails
#: it and stops what is left of it.
NOT_RESPONDING_GRACE_SECONDS = 1800.0
#: How often a live sweep's controller steps (each step polls its live trials).
SWEEP_STEP_SECONDS = 0.25
#: Runs polled per pass (the rest wait for the next pass).
BATCH_SIZE = 64


def reconcile_run(ctx: WorkspaceContext, run_id: str, max_passes: int = 100) -> RunRecord:
    """One reconcile step for one run: dispatch, ingest (bounded), finish."""
    run = ctx.store.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist")
    top = run
    while top.parent_id and top.handle is None:
        parent = ctx.store.get_run(top.parent_id)
        if parent is None:
            break
        top = parent
    if top.run_type == "hyperdrive" and not top.status.terminal:  # a sweep: its controller
        from runyard.services.sweeps.controller import step  # noqa: PLC0415

        step(ctx, top.id)
        return ctx.store.get_run(run_id) or run
    if top.handle is None and top.status == RunStatus.QUEUED and "job" in top.definition:
        try:
            target = get_kind(ctx, top.target)
            if target.ready() and dispatch(ctx, target, top.id):
                run = None  # it has a handle now: read again
        except RunyardError:
            pass  # a target that is gone or failing: its run is ended by sync below
    fresh = sync_run(ctx, run_id, max_passes, record=run)
    owner = fresh if fresh.id == top.id else ctx.store.get_run(top.id)
    if owner is not None and owner.status is RunStatus.NOT_RESPONDING \
            and owner.parent_id is None and _give_up(ctx, owner):
        fresh = ctx.store.get_run(run_id) or fresh
        owner = ctx.store.get_run(top.id)
    if owner is not None and owner.status.terminal and owner.parent_id is None:
        with contextlib.suppress(RunyardError):  # idempotent: a target asks once, then it's gone
            finish_run_on_target(ctx, get_kind(ctx, owner.target), owner.id)
            return ctx.store.get_run(run_id) or fresh
    return fresh


def not_responding_grace(ctx: WorkspaceContext) -> float:
    """How long a NotResponding run may come back before it is failed (workspace config key
    ``not_responding_grace_seconds``; default :data:`NOT_RESPONDING_GRACE_SECONDS`)."""
    try:
        return float(ctx.config.get("not_responding_grace_seconds",
                                    NOT_RESPONDING_GRACE_SECONDS))
    except (TypeError, ValueError):
        return NOT_RESPONDING_GRACE_SECONDS


def _give_up(ctx: WorkspaceContext, run: RunRecord) -> bool:
    """Fail a run NotResponding for longer than the grace; its leftovers are stopped first."""
    grace = not_responding_grace(ctx)
    events = ctx.store.list_events(run.id)
    since = next((e.at for e in reversed(events) if e.status is RunStatus.NOT_RESPONDING),
                 None)
    if since is None or time.time() - since < grace:
        return False
    if run.handle is not None:
        with contextlib.suppress(RunyardError, OSError):
            target = get_kind(ctx, run.target)
            target.kill_leftovers(target.load_handle(run.handle))
    tr = Transition(run.id, RunStatus.FAILED, f"not responding for longer than {grace:g} s",
                    time.time(), error={"message": f"The run stopped responding and did not "
                                        f"come back within {grace:g} s "
                                        "(not_responding_grace_seconds); it was failed and "
                                        "its leftover processes stopped."})
    if ctx.store.transition(tr):
        close_children(ctx, run.id, [tr])
    return True


def reconcile(ctx: WorkspaceContext) -> list[RunRecord]:
    """One step for every unfinished top-level run (reattach after a restart; dispatch what
    waits; mark vanished runners); returns the runs as they are after it."""
    return [reconcile_run(ctx, run.id) for run in live_runs(ctx)]


def live_runs(ctx: WorkspaceContext) -> list[RunRecord]:
    """Unfinished top-level runs, oldest first."""
    live = [s for s in RunStatus if not s.terminal]
    return list(reversed(ctx.store.list_runs(RunFilter(statuses=live))))


@dataclass
class _Pace:
    due: float = 0.0
    delay: float = MIN_BACKOFF_SECONDS
    seen: tuple[object, ...] = field(default_factory=tuple)


class Reconciler:
    """Polls every live run of a workspace with backoff until told to stop."""

    def __init__(self, ctx: WorkspaceContext, *, batch_size: int = BATCH_SIZE,
                 max_backoff: float = MAX_BACKOFF_SECONDS) -> None:
        self.ctx = ctx
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._pace: dict[str, _Pace] = {}

    def step(self) -> int:
        """One pass over the live runs that are due; returns how many runs are live."""
        runs = live_runs(self.ctx)
        now = time.monotonic()
        due = [r for r in runs if self._pace.get(r.id, _Pace()).due <= now][:self.batch_size]
        for run in due:
            try:
                fresh = reconcile_run(self.ctx, run.id)
            except RunyardError:
                fresh = run
            pace = self._pace.setdefault(run.id, _Pace())
            mark = (fresh.status, fresh.handle is None, len(fresh.properties))
            pace.delay = (MIN_BACKOFF_SECONDS if mark != pace.seen
                          else min(pace.delay * 2, self.max_backoff))
            if fresh.run_type == "hyperdrive":  # a sweep's step polls its trials: keep it brisk
                pace.delay = SWEEP_STEP_SECONDS
            pace.seen = mark
            pace.due = time.monotonic() + pace.delay
        live_ids = {r.id for r in runs}
        for gone in set(self._pace) - live_ids:
            del self._pace[gone]
        return len(runs)

    def run(self, *, quiet_exit: float | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> None:
        """Loop until ``should_stop()``; with ``quiet_exit``, also after that many seconds
        with nothing live."""
        quiet_since: float | None = None
        while not should_stop():
            try:
                live = self.step()
            except DatabaseBusy:  # another process holds the database: try again shortly
                time.sleep(MAX_BACKOFF_SECONDS)
                continue
            now = time.monotonic()
            if live:
                quiet_since = None
            elif quiet_exit is not None:
                quiet_since = quiet_since or now
                if now - quiet_since >= quiet_exit:
                    return
            nxt = min((p.due for p in self._pace.values()), default=now + 0.5)
            time.sleep(min(max(nxt - time.monotonic(), 0.02), 0.5))


def lock_path(ctx: WorkspaceContext) -> Path:
    """The leader lock of the workspace's detached reconciler."""
    return ctx.data_dir / LOCK_NAME


def try_lead(ctx: WorkspaceContext) -> int | None:
    """Take the leader lock (an fd held for the process's life) or None if another leads."""
    path = lock_path(ctx)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def leader_running(ctx: WorkspaceContext) -> bool:
    """Whether a reconciler holds the workspace's leader lock now."""
    fd = try_lead(ctx)
    if fd is None:
        return True
    os.close(fd)
    return False


def ensure_reconciler(ctx: WorkspaceContext) -> bool:
    """Start a detached reconciler for the workspace unless one runs; returns True when it
    started one. (Two callers may both start one: the second exits at once.)"""
    if os.environ.get("RUNYARD_NO_RECONCILER") or leader_running(ctx):
        return False
    log = ctx.data_dir / "reconciler.log"
    with open(log, "ab") as out:
        keep(subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(ctx.path), str(lock_path(ctx))],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=str(ctx.data_dir),
            env=os.environ.copy()))
    return True


def serve(ctx: WorkspaceContext, *, detached: bool, lock_fd: int | None = None) -> int:
    """Lead the workspace's reconciliation (exit 0 at once when another process leads).

    Detached (started niced and after a pause by :func:`ensure_reconciler`): exit after a quiet
    period or when the workspace folder disappears. Foreground: run until interrupted.
    """
    fd = lock_fd if lock_fd is not None else try_lead(ctx)
    if fd is None:
        return 0
    try:
        Reconciler(ctx).run(quiet_exit=QUIET_EXIT_SECONDS if detached else None,
                            should_stop=lambda: not ctx.data_dir.is_dir())
    finally:
        os.close(fd)
        ctx.close()
    return 0


def main(argv: list[str] | None = None, lock_fd: int | None = None) -> int:
    """``python -m runyard.services.runs.reconciler WORKSPACE_FOLDER`` (detached mode).

    Exit 0 when done (quiet, another leader, the folder gone); 2 when the workspace cannot be
    opened; 1 when it stops because its database became unusable (deleted or replaced under it,
    a full disk, busy past the timeout): one line on stderr, no traceback."""
    from runyard.context import open_context  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    try:
        ctx = open_context(args[0])
    except (IndexError, RunyardError) as exc:
        print(f"runyard reconciler: {exc}", file=sys.stderr)
        return 2
    try:
        return serve(ctx, detached=True, lock_fd=lock_fd)
    except WorkspaceError as exc:  # the database deleted or replaced under it, a full disk
        print(f"runyard reconciler: stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
