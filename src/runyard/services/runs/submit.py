"""Submitting a ``ScriptRunConfig``: validate everything, snapshot, record, dispatch."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.compute.base import RUN_BASED_TAG, ComputeKind, JobSpec
from runyard.compute.config import ComputeConfiguration
from runyard.compute.kinds import compute_kinds, load_kind
from runyard.entities import RunRecord, RunStatus
from runyard.environments.spec import resolve_for_run, script_variables
from runyard.errors import InvalidParameter, NotSupported, RunyardError
from runyard.naming import check_experiment_name
from runyard.runconfig import RunConfiguration, ScriptRunConfig
from runyard.runtime.envbuild import ENV_PYTHON
from runyard.services.compute import create_compute
from runyard.services.runs import bindings
from runyard.services.targets import BUILTIN, get_kind, kind_class
from runyard.store.base import Transition

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext


def new_run_id(experiment: str) -> str:
    """``<experiment>_<unix seconds>_<8 hex>`` (the Azure ML v1 format)."""
    return f"{experiment}_{int(time.time())}_{secrets.token_hex(4)}"


def _interpreter(rc: RunConfiguration, on_target: bool = False) -> str:
    py = rc.environment.python
    if not py.user_managed_dependencies and (rc.environment.has_dependencies
                                             or rc.environment.docker.enabled):
        return ENV_PYTHON  # system-managed: the runner puts the built environment's python here
    path = py.interpreter_path
    if on_target:  # a path on the target's host (remote kind): the target resolves "python"
        return path or "python"
    if not path or path == "python":
        return sys.executable
    found = shutil.which(path) if os.sep not in path else (path if os.path.isfile(path) else None)
    if not found or not os.access(found, os.X_OK):
        raise InvalidParameter(
            "environment.python.interpreter_path",
            f"{path!r} does not exist or is not executable; give the full path of a python "
            "interpreter, or leave it as 'python' to use the current one")
    return found


def build_command(src: Path, rc: RunConfiguration, on_target: bool = False) -> list[str]:
    """The command line of the run, checked against the source directory.

    ``on_target``: the interpreter path belongs to the target's host and is not checked here.
    """
    if rc.command and rc.script:
        raise InvalidParameter("command", "give either script (with arguments) or command, "
                               "not both")
    if rc.command:
        if isinstance(rc.command, str):
            return ["/bin/sh", "-c", rc.command]
        return [str(c) for c in rc.command]
    if not rc.script:
        raise InvalidParameter("script", "no script given; pass script='train.py' (a file in "
                               "the source directory) or a command")
    script = Path(rc.script)
    full = (src / script).resolve() if not script.is_absolute() else script.resolve()
    if not full.is_relative_to(src):
        raise InvalidParameter("script", f"{rc.script!r} is outside the source directory "
                               f"{src}; move it inside, or point source_directory at its folder")
    if not full.is_file():
        raise InvalidParameter("script", f"{rc.script!r} does not exist in the source "
                               f"directory {src}; check the name or the source_directory")
    return [_interpreter(rc, on_target), full.relative_to(src).as_posix(),
            *(str(a) for a in rc.arguments)]


def _run_based(ctx: WorkspaceContext, rc: RunConfiguration
               ) -> tuple[type[ComputeKind], ComputeConfiguration] | None:
    """The kind and configuration of a target made for this run (run-based creation), asked of
    every kind's ``run_based`` hook; None when ``rc.target`` names an existing target."""
    if rc.target == BUILTIN:
        return None
    if ctx.store.get_compute_target(rc.target) is not None:
        return None
    for kind in compute_kinds():
        cls = load_kind(kind)
        config = cls.run_based(ctx, rc)
        if config is not None:
            return cls, config
    return None


def check_tags(tags: dict[str, Any] | None) -> dict[str, str | None]:
    """Tags as stored (keys non-empty strings of at most 255 characters without control
    characters; values strings, numbers or None, without NUL), else ``InvalidParameter``."""
    if tags is not None and not isinstance(tags, dict):
        raise InvalidParameter("tags", f"must be a dict of name to value, got "
                               f"{type(tags).__name__}")
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key.strip() or len(key) > 255 \
                or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
            raise InvalidParameter("tags", f"tag name {repr(key)[:80]} must be a non-empty "
                                   "string of "
                                   "at most 255 characters without control characters")
        if value is not None and not isinstance(value, (str, int, float)):
            raise InvalidParameter(f"tags[{key!r}]", f"{type(value).__name__} is not a tag "
                                   "value; give a string or a number")
        if "\x00" in str(value):
            raise InvalidParameter(f"tags[{key!r}]", "contains a NUL character")
    return {str(k): (None if v is None else str(v)) for k, v in (tags or {}).items()}


def plan_run(ctx: WorkspaceContext, experiment: str, config: ScriptRunConfig,
             tags: dict[str, Any] | None = None, *, allow_run_based: bool = True
             ) -> tuple[dict[str, Any], tuple[type[ComputeKind], ComputeConfiguration] | None]:
    """Check everything about a script run and take its snapshot; returns the run's template
    (JSON: experiment, target, snapshot, tags, the job and the definition without a run id)
    and, for a run-based target, its kind and configuration (created by the caller).

    Every input is checked here, before anything is stored or started: the experiment name,
    the tags (:func:`check_tags`) and the run configuration (``RunConfiguration.validate``:
    types of script, arguments, command, environment and its variables, limits), the data
    bindings (their files fetched and checked), the target and its capabilities.
    """
    if not isinstance(config, ScriptRunConfig):
        raise InvalidParameter("config", f"cannot submit a {type(config).__name__}; pass a "
                               "ScriptRunConfig")
    check_experiment_name(experiment)
    clean_tags = check_tags(tags)
    rc = config.effective_run_config()
    rc.validate()
    src = Path(config.source_directory).resolve()
    if not src.is_dir():
        raise InvalidParameter("source_directory", f"{config.source_directory!r} is not a "
                               "directory; pass the folder that holds your script")
    try:
        cls: type[ComputeKind] | None = kind_class(ctx, rc.target)
    except RunyardError:
        cls = None  # an unknown target is reported below, after the script checks
    command = build_command(src, rc, on_target=bool(cls and cls.interpreter_on_target))
    env_request, env_recorded = resolve_for_run(
        rc.environment, src, rc.auto_prepare_environment,
        strict=bool(ctx.config.get("strict_environments", False)))
    run_based = _run_based(ctx, rc) if cls is None else None
    if run_based is not None and not allow_run_based:
        raise NotSupported(f"target {rc.target!r} makes a cluster for one run; create the "
                           "cluster first (ComputeTarget.create) and name it as the target")
    target_name = rc.target
    if run_based is None:
        if cls is None:
            cls = kind_class(ctx, rc.target)  # raises the unknown-target error
        target = cls(ctx, rc.target)
        if not target.capabilities.script_runs.supported:
            raise NotSupported(f"target {rc.target!r}: "
                               f"{target.capabilities.script_runs.reason}")
        if rc.node_count > 1 and not target.capabilities.multi_node.supported:
            raise NotSupported(f"node_count: {target.capabilities.multi_node.reason}")
        target.check_run(rc)
        target_name = target.name
    bind_in, bind_out = bindings.collect(rc)
    job_inputs, job_outputs = (bindings.prepare(ctx, bind_in, bind_out)
                               if bind_in or bind_out else ([], []))
    snapshot_id = None
    if rc.history.snapshot_project:
        max_bytes, max_files = ctx.snapshot_limits
        snapshot_id = ctx.snapshots.take(src, max_bytes=max_bytes, max_files=max_files,
                                         exclude=[ctx.data_dir]).id
    job = JobSpec(run_id="", attempt=1, experiment=experiment, snapshot_id=snapshot_id,
                  command=command, env={**rc.environment.environment_variables,
                                        **script_variables(rc.environment)},
                  max_run_duration_seconds=rc.max_run_duration_seconds,
                  output_collection=rc.history.output_collection, node_count=rc.node_count,
                  tags=clean_tags, properties={}, environment=env_request,
                  process_count_per_node=rc.mpi.process_count_per_node,
                  resources={k: float(v) for k, v in (("cpu", rc.resources.cpu),
                                                      ("gpu", rc.resources.gpu),
                                                      ("memory_gb", rc.resources.memory_gb))
                             if v is not None},
                  workspace_name=ctx.name, inputs=job_inputs, outputs=job_outputs)
    definition = {"runDefinition": {**rc.to_dict(), "environment": env_recorded},
                  "sourceDirectory": str(src), "command": command,
                  "environment": env_request and {"builder": env_request["builder"],
                                                  "specHash": env_request["spec_hash"]},
                  "inputDatasets": bindings.input_details(job_inputs)}
    template = {"experiment": experiment, "target": target_name, "snapshot_id": snapshot_id,
                "tags": clean_tags, "job": job.to_dict(), "definition": definition}
    return template, run_based


def record_run(ctx: WorkspaceContext, template: dict[str, Any], run_id: str, *,
               parent_id: str | None = None, extra_args: list[str] | None = None,
               extra_tags: dict[str, str | None] | None = None,
               display_name: str | None = None, start: bool = True,
               slot_group: dict[str, Any] | None = None) -> RunRecord:
    """Record run ``run_id`` from a :func:`plan_run` template (a child of ``parent_id`` with
    ``extra_args`` appended to its command and ``extra_tags``) and dispatch it when its
    target is ready and ``start``. ``AlreadyExists`` when ``run_id`` is taken (a repeated
    start of the same child)."""
    job = JobSpec.from_dict(copy.deepcopy(template["job"]))
    job.run_id = run_id
    job.command = [*job.command, *(extra_args or [])]
    job.tags = {**job.tags, **(extra_tags or {})}
    job.slot_group = slot_group
    bindings.resolve_destinations(job.outputs, run_id)
    target = get_kind(ctx, str(template["target"]))
    definition = copy.deepcopy(template["definition"])
    if extra_args:
        rd = definition["runDefinition"]
        rd["arguments"] = [*rd.get("arguments", []), *extra_args]
        definition["command"] = job.command
    definition["job"] = job.to_dict()
    definition["outputDatasets"] = [{k: o[k] for k in ("name", "datastore", "path",
                                                       "register")} for o in job.outputs]
    experiment = str(template["experiment"])
    run = RunRecord(id=run_id, experiment=experiment, status=RunStatus.QUEUED,
                    created_at=time.time(), target=target.name,
                    snapshot_id=template.get("snapshot_id"), definition=definition,
                    tags=dict(job.tags), parent_id=parent_id, display_name=display_name)
    ctx.store.get_or_create_experiment(experiment)
    ready = target.ready()
    ctx.store.create_run(run, "submitted" if ready else
                         f"submitted; waiting for target {target.name!r} to be ready")
    if ready and start:
        dispatch(ctx, target, run.id, raise_errors=parent_id is None)
    return ctx.store.get_run(run.id) or run


def submit_script_run(ctx: WorkspaceContext, experiment: str, config: ScriptRunConfig,
                      tags: dict[str, Any] | None = None) -> RunRecord:
    """Validate, snapshot, record and dispatch a script run; returns as soon as it is queued.

    A target that is not ready yet (a cluster still starting) leaves the run Queued with its
    job stored; the reconciler dispatches it once the target is up. Everything is checked
    before anything is stored (:func:`plan_run`).
    """
    template, run_based = plan_run(ctx, experiment, config, tags)
    run_id = new_run_id(experiment)
    if run_based is not None:
        kind, target_config = run_based
        tag_field = getattr(target_config, "tags", None)
        if isinstance(tag_field, dict):
            tag_field[RUN_BASED_TAG] = run_id
        rc = config.effective_run_config()
        name = kind.run_based_name(rc) or f"run-{secrets.token_hex(4)}"
        create_compute(ctx, name, target_config)
        template["target"] = name
    return record_run(ctx, template, run_id)


#: How long a start intent left by a dispatcher that died is given before the start is
#: repeated (the repeat finds the first start where one happened).
INTENT_GRACE_SECONDS = 30.0


def _intent_grace(ctx: WorkspaceContext) -> float:
    try:  # workspace config key ``start_intent_grace_seconds``
        return float(ctx.config.get("start_intent_grace_seconds", INTENT_GRACE_SECONDS))
    except (TypeError, ValueError):
        return INTENT_GRACE_SECONDS


def _record_intent(path: Path) -> None:
    """Record, durably, that a start of this attempt begins now (before anything executes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, str(time.time()).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def dispatch(ctx: WorkspaceContext, target: ComputeKind, run_id: str, *,
             raise_errors: bool = False) -> bool:
    """Start the stored job of a Queued run that has no handle yet, once (a file lock per run
    makes the submitter and any number of reconcilers agree); store its handle.

    A start intent (``.intent-a<N>`` in the run folder, fsynced) is recorded before the
    target starts anything; a dispatcher that finds one left by a dispatcher that died (a
    killed submitter, a database busy past its timeout at ``set_handle``) waits
    ``start_intent_grace_seconds`` and starts again, which every kind turns into "hand back the
    first start" (local: the runner's claim file; remote: the host's start lock; cluster: the
    Ray job's submission id), so the script runs once and the run gets its handle.

    A start that fails ends the run Failed with why (and raises when ``raise_errors``).
    Returns whether this call started it.
    """
    lock = ctx.run_dir(run_id) / ".dispatch.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        run = ctx.store.get_run(run_id)
        if run is None or run.handle is not None or run.status != RunStatus.QUEUED:
            return False
        job = JobSpec.from_dict(dict(run.definition.get("job") or {}))
        if run.attempt != job.attempt:
            return False  # a later attempt is being started by a restart, not by dispatch
        intent = ctx.run_dir(run_id) / f".intent-a{job.attempt}"
        with contextlib.suppress(FileNotFoundError):
            # a dispatcher before this one began the start and died before recording it: give
            # it time to have started, then start again (every kind starts a (run, attempt)
            # once and hands back the first start's handle)
            if time.time() - intent.stat().st_mtime < _intent_grace(ctx):
                return False
        _record_intent(intent)
        try:
            handle = target.submit(job)
        except (OSError, RunyardError) as exc:
            ctx.store.transition(Transition(run_id, RunStatus.FAILED, "dispatch failed",
                                            time.time(), error={
                                                "message": f"could not start the run: {exc}"}))
            if raise_errors:
                raise
            return False
        ctx.store.set_handle(run_id, handle.to_json())
        return True
    finally:
        os.close(fd)
