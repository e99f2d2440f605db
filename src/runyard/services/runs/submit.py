"""Submitting a ``ScriptRunConfig``: validate everything, snapshot, record, dispatch."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.compute.base import JobSpec
from runyard.entities import RunRecord, RunStatus
from runyard.environments.spec import resolve_for_run
from runyard.errors import InvalidParameter, NotSupported, RunyardError
from runyard.runconfig import RunConfiguration, ScriptRunConfig
from runyard.runtime.envbuild import ENV_PYTHON
from runyard.store.base import Transition

if TYPE_CHECKING:
    from runyard.compute.base import ComputeTarget
    from runyard.workspace import Workspace


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


def _interpreter_on_target(ws: Workspace, name: str) -> bool:
    """Whether target ``name`` resolves user-managed interpreter paths on its own host."""
    from runyard.compute.resource import target_class  # noqa: PLC0415

    try:
        return bool(getattr(target_class(ws, name), "interpreter_on_target", False))
    except RunyardError:
        return False  # an unknown target is reported below, after the script checks


def submit_script_run(ws: Workspace, experiment: str, config: ScriptRunConfig,
                      tags: dict[str, Any] | None = None) -> RunRecord:
    """Validate, snapshot, record and dispatch a script run; returns as soon as it is queued."""
    rc = config.effective_run_config()
    rc.validate()
    src = Path(config.source_directory).resolve()
    if not src.is_dir():
        raise InvalidParameter("source_directory", f"{config.source_directory!r} is not a "
                               "directory; pass the folder that holds your script")
    command = build_command(src, rc, on_target=_interpreter_on_target(ws, rc.target))
    env_request, env_recorded = resolve_for_run(rc.environment, src,
                                                rc.auto_prepare_environment)
    run_based = False  # a cluster made for this run (Azure's run-based creation)
    if rc.target in ("amlcompute", "cluster"):
        from runyard.compute.cluster import is_run_based  # noqa: PLC0415

        run_based = is_run_based(ws, rc)
    target: ComputeTarget | None = None
    if not run_based:
        target = ws.get_target(rc.target)
        if not target.capabilities.script_runs.supported:
            raise NotSupported(f"target {rc.target!r}: "
                               f"{target.capabilities.script_runs.reason}")
        if rc.node_count > 1 and not target.capabilities.multi_node.supported:
            raise NotSupported(f"node_count: {target.capabilities.multi_node.reason}")
        target.check_run(rc)
    snapshot_id = None
    if rc.history.snapshot_project:
        max_bytes, max_files = ws.snapshot_limits
        snapshot_id = ws.snapshots.take(src, max_bytes=max_bytes, max_files=max_files,
                                        exclude=[ws.data_dir]).id
    clean_tags = {str(k): (None if v is None else str(v)) for k, v in (tags or {}).items()}
    run_id = new_run_id(experiment)
    if target is None:
        from runyard.compute.cluster import create_run_based  # noqa: PLC0415

        target = create_run_based(ws, rc, run_id)
    now = time.time()
    run = RunRecord(
        id=run_id, experiment=experiment, status=RunStatus.QUEUED,
        created_at=now, target=target.name, snapshot_id=snapshot_id,
        definition={"runDefinition": {**rc.to_dict(), "environment": env_recorded},
                    "sourceDirectory": str(src), "command": command,
                    "environment": env_request and {"builder": env_request["builder"],
                                                    "specHash": env_request["spec_hash"]}},
        tags=clean_tags)
    ws.store.get_or_create_experiment(experiment)
    ws.store.create_run(run, "submitted")
    job = JobSpec(run_id=run.id, attempt=1, experiment=experiment, snapshot_id=snapshot_id,
                  command=command, env=dict(rc.environment.environment_variables),
                  max_run_duration_seconds=rc.max_run_duration_seconds,
                  output_collection=rc.history.output_collection, node_count=rc.node_count,
                  tags=clean_tags, properties={}, environment=env_request,
                  process_count_per_node=rc.mpi.process_count_per_node,
                  resources={k: float(v) for k, v in (("cpu", rc.resources.cpu),
                                                      ("gpu", rc.resources.gpu),
                                                      ("memory_gb", rc.resources.memory_gb))
                             if v is not None})
    try:
        handle = target.submit(job)
    except (OSError, RunyardError) as exc:
        ws.store.transition(Transition(run.id, RunStatus.FAILED, "dispatch failed", time.time(),
                                       error={"message": f"could not start the run: {exc}"}))
        raise
    ws.store.set_handle(run.id, handle)
    run.handle = handle
    return run
