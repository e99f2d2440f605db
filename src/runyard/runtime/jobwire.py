"""The one wire format between a target and the runtime next to the script.

Every kind turns a job (the ``JobSpec`` of :mod:`runyard.compute.base`, as its plain dict) into
the runner's job description and the script's environment here, and only here:
:func:`runner_job` gives what ``python -m runyard.runtime.runner JOB`` reads, and
:func:`script_env` the variables through which the script's ``Run.get_context()`` finds its run
(run id, spool, artifacts, experiment name, attempt, tags, properties). The script never gets
the workspace's location or any credential: what it needs comes through this description.
Standard library only (Python >= 3.8).
"""

from __future__ import annotations

import json
import os
from typing import Any

from runyard.runtime import envscrub

ENV_RUN_ID = "RUNYARD_RUN_ID"
ENV_SPOOL_DIR = "RUNYARD_SPOOL_DIR"
ENV_ARTIFACTS_DIR = "RUNYARD_ARTIFACTS_DIR"
ENV_EXPERIMENT = "RUNYARD_EXPERIMENT_NAME"
ENV_WORKSPACE_NAME = "RUNYARD_WORKSPACE_NAME"
ENV_ATTEMPT = "RUNYARD_ATTEMPT"
ENV_PROPERTIES = "RUNYARD_RUN_PROPERTIES"
ENV_TAGS = "RUNYARD_RUN_TAGS"
ENV_INPUTS_FILE = "RUNYARD_INPUTS_FILE"
#: Version of the runner job description written by :func:`runner_job`.
WIRE_VERSION = 1


def script_env(job: dict[str, Any], *, run_id: str, spool_dir: str, artifacts_dir: str,
               bundle_dir: str, pythonpath: str = "",
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """The script's environment: the user's variables, ``extra`` (e.g. ranks), then runyard's.

    ``bundle_dir`` (the folder holding the runtime's ``runyard`` package) goes first on
    ``PYTHONPATH`` so ``from runyard import Run`` works in any interpreter. Variables that
    carry credentials (:func:`runyard.runtime.envscrub.scrub`) never get through.
    """
    env = {str(k): str(v) for k, v in (job.get("env") or {}).items()}
    env.update(extra or {})
    env = envscrub.scrub(env)
    env.update({
        ENV_RUN_ID: run_id,
        ENV_SPOOL_DIR: spool_dir,
        ENV_ARTIFACTS_DIR: artifacts_dir,
        ENV_EXPERIMENT: str(job.get("experiment", "")),
        ENV_WORKSPACE_NAME: str(job.get("workspace_name", "")),
        ENV_ATTEMPT: str(job.get("attempt", 1)),
        ENV_PROPERTIES: json.dumps(job.get("properties") or {}),
        ENV_TAGS: json.dumps(job.get("tags") or {}),
        "AZUREML_RUN_ID": run_id,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (bundle_dir, pythonpath) if p),
    })
    return env


def runner_job(job: dict[str, Any], *, run_id: str, workdir: str, artifacts_dir: str,
               spool_dir: str, env: dict[str, str], command: list[str] | None = None,
               env_cache_dir: str | None = None,
               slots: dict[str, Any] | None = None,
               group_slots: dict[str, Any] | None = None,
               input_blobs: str | None = None,
               input_views: str | None = None) -> dict[str, Any]:
    """The runner's job description for one attempt (what ``runner.py`` reads).

    ``input_blobs``: where the target's per-host cache keeps the blobs of the job's inputs (a
    template formatted with ``sha``, ``sha2`` and ``rest``; see ``runtime.bindings``);
    ``input_views``: the folder of that host's shared read-only input views.
    """
    out: dict[str, Any] = {
        "wire_version": WIRE_VERSION,
        "run_id": run_id,
        "attempt": int(job.get("attempt", 1)),
        "workdir": workdir,
        "artifacts_dir": artifacts_dir,
        "spool_dir": spool_dir,
        "command": list(command if command is not None else job["command"]),
        "env": env,
        "max_run_duration_seconds": job.get("max_run_duration_seconds"),
        "output_collection": bool(job.get("output_collection", True)),
    }
    if slots:
        out["slots"] = slots
    if group_slots and job.get("slot_group"):
        out["group_slots"] = group_slots
    if job.get("inputs"):
        if not input_blobs:
            raise ValueError("input_blobs: a job with inputs needs the target's data cache")
        out["inputs"] = job["inputs"]
        out["input_blobs"] = input_blobs
        if input_views:
            out["input_views"] = input_views
    if job.get("outputs"):
        out["outputs"] = [{"name": o["name"], "token": o["token"]} for o in job["outputs"]]
    if job.get("environment") is not None:
        if env_cache_dir is None:
            raise ValueError("env_cache_dir: a system-managed environment needs the target's "
                             "environment cache folder")
        out["environment"] = {**job["environment"], "cache_dir": env_cache_dir}
    return out
