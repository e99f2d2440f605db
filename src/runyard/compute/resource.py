"""Compute targets as workspace resources: create, attach, list, wait, update, delete."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from runyard.compute.base import ComputeTarget, TargetStatus
from runyard.compute.config import ComputeConfiguration, check_compute_name
from runyard.entities import ComputeRecord, RunStatus
from runyard.errors import (
    ComputeTargetBusy,
    ComputeTargetExists,
    ComputeTargetInvalid,
    ComputeTargetNotFound,
    ComputeTargetNotSupported,
    NotFound,
)
from runyard.plugins import load_kind
from runyard.store.base import RunFilter

if TYPE_CHECKING:
    from runyard.workspace import Workspace

BUILTIN = "local"
TERMINAL_STATES = ("Succeeded", "Failed", "Canceled")


def target_class(ws: Workspace, name: str) -> type[ComputeTarget]:
    """The class of target ``name`` (``ComputeTargetNotFound`` when there is none)."""
    if name == BUILTIN:
        return load_kind("local")
    rec = ws.store.get_compute_target(name)
    if rec is None:
        known = [BUILTIN, *(r.name for r in ws.store.list_compute_targets())]
        raise ComputeTargetNotFound(
            f"unknown compute target {name!r}: this workspace has {', '.join(known)}; "
            "create or attach it first (runyard compute create/attach)")
    try:
        return load_kind(rec.kind)
    except NotFound as exc:
        raise ComputeTargetNotSupported(f"target {name!r} is of kind {rec.kind!r}, which this "
                                        "installation does not provide") from exc


def _prepare(ws: Workspace, name: str, config: ComputeConfiguration,
             mode: str) -> type[ComputeTarget]:
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
    if ws.store.get_compute_target(name) is not None:
        raise ComputeTargetExists(f"a compute target named {name!r} already exists; choose "
                                  "another name or delete it first")
    cls.preflight(config)
    return cls


def _store(ws: Workspace, name: str, cls: type[ComputeTarget], config: ComputeConfiguration,
           state: str) -> None:
    from runyard.secrets import SecretBox  # noqa: PLC0415

    secrets = config.secrets()
    box = SecretBox() if secrets else None
    now = time.time()
    ws.store.create_compute_target(
        ComputeRecord(name=name, kind=config.kind, managed=cls.managed,
                      config=config.to_config(), config_version=1, state=state, errors=[],
                      created_at=now, updated_at=now),
        {k: box.encrypt(v) for k, v in secrets.items()} if box else None)


def create_target(ws: Workspace, name: str, config: ComputeConfiguration) -> ComputeTarget:
    """Validate, store as Creating, provision; a failure leaves the target Failed with why."""
    cls = _prepare(ws, name, config, "provision")
    _store(ws, name, cls, config, "Creating")
    target = cls(ws, name)
    try:
        pending = target.provision()
    except Exception as exc:
        ws.store.update_compute_target(name, state="Failed", errors=[str(exc)])
        raise
    if pending is None:  # else it comes up in the background; status() finishes the state
        ws.store.update_compute_target(name, state="Succeeded", errors=[])
    return target


def attach_target(ws: Workspace, name: str, config: ComputeConfiguration) -> ComputeTarget:
    """Check the target first; store it only when every check passed."""
    cls = _prepare(ws, name, config, "attach")
    probe = cls.__new__(cls)
    probe.workspace, probe.name = ws, name
    probe.check_attach(config)
    _store(ws, name, cls, config, "Succeeded")
    return cls(ws, name)


def list_targets(ws: Workspace) -> list[ComputeTarget]:
    """``local`` then every stored target by name."""
    out: list[ComputeTarget] = [load_kind("local")(ws, BUILTIN)]
    for rec in ws.store.list_compute_targets():
        try:
            out.append(load_kind(rec.kind)(ws, rec.name))
        except NotFound:
            continue
    return out


def wait_target(target: ComputeTarget, show_output: bool, timeout: float) -> TargetStatus:
    """Poll the target's status until provisioning ends or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        st = target.status()
        if show_output and st.provisioning_state != last:
            counts = ", ".join(f"{k}={v}" for k, v in st.node_state_counts.items())
            print(f"{target.name}: {st.provisioning_state}" + (f" ({counts})" if counts else ""),
                  file=sys.stdout, flush=True)
            last = st.provisioning_state
        if st.provisioning_state in TERMINAL_STATES:
            if show_output and st.errors:
                print("errors: " + "; ".join(st.errors), flush=True)
            return st
        if time.monotonic() > deadline:
            return st
        time.sleep(0.5)


def update_target(target: ComputeTarget, changes: dict[str, Any]) -> ComputeRecord:
    """Validate changed settings, apply them to the live target, store them."""
    rec = target.record
    if rec is None or target.config_class is None:
        raise ComputeTargetNotSupported(f"target {target.name!r} has no settings to update")
    for key in changes:
        if key not in target.updatable:
            allowed = ", ".join(target.updatable) or "nothing"
            raise ComputeTargetInvalid(key, f"cannot be updated on a {target.kind} target "
                                       f"(updatable: {allowed})")
    new = target.config_class.from_config({**rec.config, **changes})
    target.apply_update(new)
    return target.workspace.store.update_compute_target(target.name, config=new.to_config())


def live_runs(ws: Workspace, name: str) -> list[str]:
    """Ids of unfinished runs on target ``name``."""
    live = [s for s in RunStatus if not s.terminal]
    return [r.id for r in ws.store.list_runs(RunFilter(target=name, statuses=live,
                                                       top_level_only=False))]


def remove_target(target: ComputeTarget, *, force: bool, detach: bool) -> None:
    """Delete (managed) or detach (attached) a target; live runs need ``force``."""
    from runyard.services.runs.control import cancel_run  # noqa: PLC0415

    ws = target.workspace
    if target.record is None:
        raise ComputeTargetNotSupported(f"{target.name!r} is built in and cannot be removed")
    if detach and target.managed:
        raise ComputeTargetInvalid("detach", f"{target.name!r} was created by runyard; "
                                   "use delete() (runyard compute delete)")
    if not detach and not target.managed:
        raise ComputeTargetInvalid("delete", f"{target.name!r} is attached; use detach() "
                                   "(runyard compute detach)")
    runs = live_runs(ws, target.name)
    if runs and not force:
        raise ComputeTargetBusy(
            f"target {target.name!r} has {len(runs)} unfinished run(s): {', '.join(runs)}; "
            "cancel them or pass force=True (--force) to cancel them and go on",
            details={"runs": runs})
    ws.store.update_compute_target(target.name, state="Deleting")
    for run_id in runs:
        cancel_run(ws, run_id)
    target.teardown()
    ws.store.delete_compute_target(target.name)
