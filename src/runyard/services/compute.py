"""Compute targets as workspace resources: create, attach, list, status, update, delete.

Receives a :class:`~runyard.context.WorkspaceContext` and returns records; the kind objects
(:class:`~runyard.compute.base.ComputeKind`) do the kind-specific work through their hooks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import TYPE_CHECKING, Any

from runyard.compute.base import ComputeKind, TargetStatus
from runyard.compute.config import ComputeConfiguration, check_compute_name
from runyard.compute.kinds import load_kind
from runyard.entities import ComputeRecord
from runyard.errors import (
    ComputeTargetBusy,
    ComputeTargetExists,
    ComputeTargetInvalid,
    ComputeTargetNotSupported,
    NotFound,
    RunyardError,
)
from runyard.services.runs.control import cancel_run
from runyard.services.targets import BUILTIN, get_kind, get_record, live_runs

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

__all__ = ["attach_compute", "compute_status", "create_compute", "delete_compute",
           "finish_run_on_target", "get_kind", "get_record", "list_compute", "live_runs",
           "update_compute"]

TERMINAL_STATES = ("Succeeded", "Failed", "Canceled")


def _prepare(ctx: WorkspaceContext, name: str, config: ComputeConfiguration,
             mode: str) -> type[ComputeKind]:
    check_compute_name(name)
    if not isinstance(config, ComputeConfiguration):
        raise ComputeTargetInvalid("configuration", f"expected a {mode} configuration (e.g. "
                                   f"from {'provisioning' if mode == 'provision' else 'attach'}"
                                   f"_configuration()), got {type(config).__name__}")
    if config.mode != mode:
        verb = "created" if config.mode == "provision" else "attached"
        raise ComputeTargetInvalid("configuration", f"a {config.kind} target is {verb}, not "
                                   f"{'created' if mode == 'provision' else 'attached'}; use "
                                   f"ComputeTarget.{'create' if verb == 'created' else 'attach'}")
    config.validate()
    try:
        cls = load_kind(config.kind)
    except NotFound as exc:
        raise ComputeTargetInvalid("kind", str(exc)) from exc
    if ctx.store.get_compute_target(name) is not None:
        raise ComputeTargetExists(f"a compute target named {name!r} already exists; choose "
                                  "another name or delete it first")
    cls.preflight(config)
    return cls


def _store(ctx: WorkspaceContext, name: str, cls: type[ComputeKind],
           config: ComputeConfiguration, state: str) -> None:
    secrets = config.secrets()
    now = time.time()
    ctx.store.create_compute_target(
        ComputeRecord(name=name, kind=config.kind, managed=cls.managed,
                      config=config.to_config(), config_version=1, state=state, errors=[],
                      created_at=now, updated_at=now),
        {k: ctx.secrets.encrypt(v) for k, v in secrets.items()} if secrets else None)


def create_compute(ctx: WorkspaceContext, name: str,
                   config: ComputeConfiguration) -> ComputeRecord:
    """Validate, store as Creating, provision; a failure leaves the target Failed with why."""
    cls = _prepare(ctx, name, config, "provision")
    _store(ctx, name, cls, config, "Creating")
    target = cls(ctx, name)
    try:
        pending = target.provision()
    except Exception as exc:
        ctx.store.update_compute_target(name, state="Failed", errors=[str(exc)])
        raise
    if pending is None:  # else it comes up in the background; status() finishes the state
        ctx.store.update_compute_target(name, state="Succeeded", errors=[])
    return get_record(ctx, name)


def attach_compute(ctx: WorkspaceContext, name: str,
                   config: ComputeConfiguration) -> ComputeRecord:
    """Check the target first; store it only when every check passed."""
    cls = _prepare(ctx, name, config, "attach")
    cls(ctx, name).check_attach(config)
    _store(ctx, name, cls, config, "Succeeded")
    return get_record(ctx, name)


def list_compute(ctx: WorkspaceContext) -> list[ComputeRecord]:
    """``local`` then every stored target (of an installed kind) by name."""
    out = [get_record(ctx, BUILTIN)]
    for rec in ctx.store.list_compute_targets():
        try:
            load_kind(rec.kind)
        except NotFound:
            continue
        out.append(rec)
    return out


def compute_status(ctx: WorkspaceContext, name: str) -> TargetStatus:
    """Provisioning state, errors and (for clusters) node counts of ``name``."""
    return get_kind(ctx, name).status()


def update_compute(ctx: WorkspaceContext, name: str, changes: dict[str, Any]) -> ComputeRecord:
    """Validate changed settings, apply them to the live target, store them."""
    target = get_kind(ctx, name)
    rec = target.record
    if rec is None or target.config_class is None:
        raise ComputeTargetNotSupported(f"target {name!r} has no settings to update")
    for key in changes:
        if key not in target.updatable:
            allowed = ", ".join(target.updatable) or "nothing"
            raise ComputeTargetInvalid(key, f"cannot be updated on a {target.kind} target "
                                       f"(updatable: {allowed})")
    new = target.config_class.from_config({**rec.config, **changes})
    target.apply_update(new)
    return ctx.store.update_compute_target(name, config=new.to_config())


def delete_compute(ctx: WorkspaceContext, name: str, *, force: bool, detach: bool) -> None:
    """Delete (managed) or detach (attached) a target; live runs need ``force``."""
    target = get_kind(ctx, name)
    if target.record is None:
        raise ComputeTargetNotSupported(f"{name!r} is built in and cannot be removed")
    if detach and target.managed:
        raise ComputeTargetInvalid("detach", f"{name!r} was created by runyard; "
                                   "use delete() (runyard compute delete)")
    if not detach and not target.managed:
        raise ComputeTargetInvalid("delete", f"{name!r} is attached; use detach() "
                                   "(runyard compute detach)")
    runs = live_runs(ctx, name)
    if runs and not force:
        raise ComputeTargetBusy(
            f"target {name!r} has {len(runs)} unfinished run(s): {', '.join(runs)}; "
            "cancel them or pass force=True (--force) to cancel them and go on",
            details={"runs": runs})
    ctx.store.update_compute_target(name, state="Deleting")
    for run_id in runs:
        cancel_run(ctx, run_id)
    target.teardown()
    ctx.store.delete_compute_target(name)


def finish_run_on_target(ctx: WorkspaceContext, target: ComputeKind, run_id: str) -> None:
    """After a top-level run ended: delete its run-based target once nothing else runs there.

    One process deletes it; another that gets here meanwhile waits until that deletion is over
    (a lock per target), so whoever saw the run end also sees the target gone.
    """
    if not target.on_run_end(run_id):  # most kinds never ask: no lock, no I/O
        return
    lock = ctx.data_dir / "locks" / f"compute-{target.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not target.on_run_end(run_id) or live_runs(ctx, target.name):
            return
        with contextlib.suppress(RunyardError):  # a run started there meanwhile: it stays
            delete_compute(ctx, target.name, force=False, detach=False)
    finally:
        os.close(fd)
