"""Deleting runs and collecting what nothing needs any more (``runyard run delete``, ``gc``).

Where a workspace's disk goes and what frees it:

* a run's folder ``.runyard/runs/<id>/`` holds its artifacts (outputs, logs), its spool and,
  while it runs, its working copy of the code (``wd/``, removed when the run ends unless the
  workspace sets ``keep_run_folders``); :func:`delete_runs` removes the folder with the run's
  records;
* the snapshot store holds each file's bytes once (content-addressed); :func:`collect_garbage`
  removes the snapshots no remaining run refers to and that were not taken or used lately, then
  the blobs no remaining snapshot refers to;
* the environment cache holds built environments; :func:`collect_garbage` removes those not
  used since the cutoff (never one being built or used: the cache's locks say so).

Everything is listed first (``dry_run`` stops there) and checked before anything is removed:
a bad argument, an unknown run or a live one removes nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.entities import RunRecord
from runyard.errors import InvalidParameter, InvalidTransition, NotFound
from runyard.store.base import RunFilter

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

#: A snapshot taken or used this recently is always kept (a run being submitted refers to it
#: before its record exists), whatever ``older_than`` says.
SNAPSHOT_GRACE_SECONDS = 600.0
_DAY = 86400.0


@dataclass(frozen=True)
class Removal:
    """One thing deleted (or, in a dry run, that would be): what, which, how many bytes."""

    kind: str   # "run", "working copy", "run folder", "snapshot", "blob", "temp file", ...
    name: str
    bytes: int
    path: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "name": self.name, "bytes": self.bytes, "path": self.path,
                "note": self.note}


@dataclass
class CleanupReport:
    """What a delete or garbage collection removed (``dry_run``: would remove)."""

    dry_run: bool
    removed: list[Removal] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Bytes freed (or that would be freed)."""
        return sum(r.bytes for r in self.removed)

    def count(self, kind: str) -> int:
        """How many removals of ``kind``."""
        return sum(1 for r in self.removed if r.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"dry_run": self.dry_run, "total_bytes": self.total_bytes,
                "removed": [r.to_dict() for r in self.removed]}


def disk_usage(path: Path | str, seen: set[tuple[int, int]] | None = None) -> tuple[int, int]:
    """``(apparent, allocated)`` bytes of the files under ``path``, like ``du --apparent-size``
    and ``du``: links are not followed, a hard-linked inode counts once (across calls that
    share ``seen``), folders are not counted; (0, 0) when ``path`` does not exist."""
    seen = set() if seen is None else seen
    apparent = allocated = 0

    def add(st: os.stat_result) -> None:
        nonlocal apparent, allocated
        key = (st.st_dev, st.st_ino)
        if key not in seen:
            seen.add(key)
            apparent += st.st_size
            allocated += getattr(st, "st_blocks", 0) * 512

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0, 0
    if not os.path.isdir(path) or os.path.islink(path):
        add(st)
        return apparent, allocated
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                add(os.lstat(os.path.join(root, name)))
    return apparent, allocated


def tree_bytes(path: Path | str, seen: set[tuple[int, int]] | None = None) -> int:
    """Apparent size of the files under ``path`` (see :func:`disk_usage`)."""
    return disk_usage(path, seen)[0]


def _remove_tree(path: Path) -> None:
    from runyard.compute.local.kind import remove_tree  # noqa: PLC0415

    remove_tree(path)


# -- runs ---------------------------------------------------------------------------------------
def _with_descendants(ctx: WorkspaceContext, runs: Iterable[RunRecord]) -> list[RunRecord]:
    """``runs`` and every run under them (children of children too), without duplicates."""
    out: dict[str, RunRecord] = {}
    todo = list(runs)
    while todo:
        run = todo.pop()
        if run.id in out:
            continue
        out[run.id] = run
        todo.extend(ctx.store.list_runs(RunFilter(parent_id=run.id, top_level_only=False)))
    return list(out.values())


def _plan_runs(ctx: WorkspaceContext, runs: list[RunRecord]) -> list[Removal]:
    seen: set[tuple[int, int]] = set()
    out = []
    for run in runs:
        folder = ctx.run_dir(run.id)
        note = f"{run.status.value}, experiment {run.experiment}"
        if run.parent_id:
            note += f", child of {run.parent_id}"
        out.append(Removal("run", run.id, tree_bytes(folder, seen),
                           str(folder) if folder.exists() else "", note))
    return out


def _delete_planned_runs(ctx: WorkspaceContext, runs: list[RunRecord]) -> None:
    """Records first (one transaction), then folders: a folder left by a crash in between
    has no record, and :func:`collect_garbage` removes it as an orphan."""
    ctx.store.delete_runs([r.id for r in runs])
    for run in runs:
        _remove_tree(ctx.run_dir(run.id))


def delete_runs(ctx: WorkspaceContext, run_ids: Sequence[str], *,
                dry_run: bool = False) -> CleanupReport:
    """Delete ended runs with their children: records, metrics, artifacts, working copies.

    Checked before anything is removed: every id must name a run (``NotFound`` naming the
    first that does not) and every run, children included, must have ended
    (``InvalidTransition`` naming it and how to cancel it).
    """
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        raise InvalidParameter("run_ids", "name at least one run to delete")
    found: list[RunRecord] = []
    for run_id in ids:
        run = ctx.store.get_run(run_id)
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist; nothing was deleted",
                           details={"run_id": run_id})
        found.append(run)
    runs = _with_descendants(ctx, found)
    live = [r for r in runs if not r.status.terminal]
    if live:
        r = live[0]
        top = r.parent_id or r.id
        raise InvalidTransition(
            f"run {r.id} is {r.status.value}: only ended runs can be deleted; cancel it first "
            f"(`runyard run cancel {top}`) and wait for it to end; nothing was deleted",
            details={"run_id": r.id, "status": r.status.value})
    report = CleanupReport(dry_run=dry_run, removed=_plan_runs(ctx, runs))
    if not dry_run:
        _delete_planned_runs(ctx, runs)
    return report


# -- garbage collection -------------------------------------------------------------------------
def check_older_than(days: Any) -> float:
    """``days`` as a number of days >= 0, or ``InvalidParameter`` naming ``older_than``."""
    try:
        value = float(days)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(days, bool) or not math.isfinite(value) or value < 0:
        raise InvalidParameter("older_than", f"{days!r} is not a number of days >= 0 "
                               "(e.g. --older-than 30, or 0 for everything that ended)")
    return value


def collect_garbage(ctx: WorkspaceContext, older_than_days: float, *, dry_run: bool = False,
                    now: float | None = None) -> CleanupReport:
    """Remove what nothing needs any more, older than ``older_than_days``:

    * ended top-level runs that ended before the cutoff, with their children (as
      :func:`delete_runs`; a run with a live child is kept);
    * working copies left behind by runs that ended (a runner killed outright), unless the
      workspace sets ``keep_run_folders``;
    * run folders without a run record (a delete interrupted by a crash), older than the cutoff;
    * snapshots no remaining run refers to, not taken or used since the cutoff (nor in the last
      :data:`SNAPSHOT_GRACE_SECONDS`), and the blobs no remaining snapshot and no registered
      model version refers to;
    * built environments of this machine's cache not used since the cutoff (never one being
      built or used by a run: the cache's locks are checked).
    """
    days = check_older_than(older_than_days)
    now = time.time() if now is None else now
    cutoff = now - days * _DAY
    report = CleanupReport(dry_run=dry_run)

    # runs
    ended = [r for r in ctx.store.list_runs(RunFilter(top_level_only=True))
             if r.status.terminal and (r.end_time or r.created_at) < cutoff]
    doomed: list[RunRecord] = []
    for run in ended:
        family = _with_descendants(ctx, [run])
        if all(r.status.terminal for r in family):
            doomed.extend(family)
    doomed_ids = {r.id for r in doomed}
    report.removed.extend(_plan_runs(ctx, doomed))
    remaining = [r for r in ctx.store.list_runs(RunFilter(top_level_only=False))
                 if r.id not in doomed_ids]

    # working copies of ended runs, and folders without a run
    leftovers: list[Path] = []
    if not ctx.keep_run_folders:
        for run in remaining:
            wd = ctx.run_dir(run.id) / "wd"
            if run.status.terminal and (wd.is_dir() or wd.is_symlink()):
                leftovers.append(wd)
                report.removed.append(Removal("working copy", run.id, tree_bytes(wd), str(wd),
                                              "left by a run that ended"))
    known = {r.id for r in remaining} | doomed_ids
    orphans: list[Path] = []
    runs_dir = ctx.data_dir / "runs"
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.scandir(runs_dir), key=lambda e: e.name):
            if entry.name in known or entry.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                mtime = entry.stat(follow_symlinks=False).st_mtime
                if mtime < min(cutoff, now - SNAPSHOT_GRACE_SECONDS):
                    orphans.append(Path(entry.path))
                    report.removed.append(Removal("run folder", entry.name,
                                                  tree_bytes(entry.path), entry.path,
                                                  "no run record"))

    if not dry_run:
        _delete_planned_runs(ctx, doomed)
        for path in [*leftovers, *orphans]:
            _remove_tree(path)

    # snapshots and blobs (after the runs: what they referred to is free now)
    keep = {r.snapshot_id for r in remaining if r.snapshot_id}
    garbage = ctx.snapshots.collect_garbage(
        keep, unused_since=min(cutoff, now - SNAPSHOT_GRACE_SECONDS), dry_run=dry_run,
        keep_blobs=ctx.store.model_blobs())  # registered models' files live there too
    report.removed.extend(Removal(g.kind, g.name, g.bytes, g.path) for g in garbage)

    # environments
    report.removed.extend(_collect_environments(ctx, days * _DAY, dry_run=dry_run, now=now))
    return report


def _collect_environments(ctx: WorkspaceContext, older_than_seconds: float, *, dry_run: bool,
                          now: float) -> list[Removal]:
    from runyard.runtime.envcache import prune_cache  # noqa: PLC0415

    cache = ctx.env_cache_dir
    if not cache.is_dir():
        return []
    planned = prune_cache(cache, older_than_seconds, dry_run=True, now=now)
    sizes = {str(item.get("path")): tree_bytes(str(item.get("path") or "")) for item in planned}
    items = planned if dry_run else prune_cache(cache, older_than_seconds, now=now)
    out = []
    for item in items:
        label = str(item.get("name") or "")
        if label and item.get("version"):
            label = f"{label}:{item['version']}"
        note = str(item.get("reason") or "")
        out.append(Removal("environment", str(item["key"]), sizes.get(str(item.get("path")), 0),
                           str(item.get("path") or ""), f"{label}, {note}" if label else note))
    return out
