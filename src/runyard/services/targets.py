"""Finding a target's kind object and record, and the runs live on it (no resource changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runyard.compute.base import ComputeKind
from runyard.compute.kinds import load_kind
from runyard.entities import ComputeRecord, RunStatus
from runyard.errors import ComputeTargetNotFound, ComputeTargetNotSupported, NotFound
from runyard.store.base import RunFilter

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

BUILTIN = "local"


def kind_class(ctx: WorkspaceContext, name: str) -> type[ComputeKind]:
    """The kind class of target ``name`` (``ComputeTargetNotFound`` when there is none)."""
    if name == BUILTIN:
        return load_kind("local")
    rec = ctx.store.get_compute_target(name)
    if rec is None:
        known = [BUILTIN, *(r.name for r in ctx.store.list_compute_targets())]
        raise ComputeTargetNotFound(
            f"unknown compute target {name!r}: this workspace has {', '.join(known)}; "
            "create or attach it first (runyard compute create/attach)")
    try:
        return load_kind(rec.kind)
    except NotFound as exc:
        raise ComputeTargetNotSupported(f"target {name!r} is of kind {rec.kind!r}, which this "
                                        "installation does not provide") from exc


def get_kind(ctx: WorkspaceContext, name: str) -> ComputeKind:
    """The kind object of target ``name``, bound to ``ctx``."""
    return kind_class(ctx, name)(ctx, name)


def get_record(ctx: WorkspaceContext, name: str) -> ComputeRecord:
    """The stored record of ``name`` (a synthetic one for the built-in ``local``)."""
    if name == BUILTIN:
        return ComputeRecord(name=BUILTIN, kind="local", managed=True, config={},
                             config_version=1, state="Succeeded", errors=[], created_at=0.0,
                             updated_at=0.0)
    rec = ctx.store.get_compute_target(name)
    if rec is None:
        kind_class(ctx, name)  # raises the "unknown target" error with the known names
        raise ComputeTargetNotFound(f"unknown compute target {name!r}")
    return rec


def live_runs(ctx: WorkspaceContext, name: str) -> list[str]:
    """Ids of unfinished runs on target ``name``."""
    live = [s for s in RunStatus if not s.terminal]
    return [r.id for r in ctx.store.list_runs(RunFilter(target=name, statuses=live,
                                                        top_level_only=False))]
