"""The ``local`` compute target: a detached process group on this machine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import runyard
from runyard.compute.base import (
    HANDLE_VERSION,
    Capabilities,
    ComputeTarget,
    JobEvents,
    JobSpec,
    TargetStatus,
)
from runyard.compute.capabilities import LOCAL
from runyard.compute.config import ComputeConfiguration, LocalProvisioningConfiguration
from runyard.entities import ComputeRecord
from runyard.runtime import context as ctx
from runyard.runtime.runner import DRIVER_LOG
from runyard.runtime.spool import list_streams, read_chunk


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks (from /proc), None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


class LocalTarget(ComputeTarget):
    """Runs each job as a detached runner process on this machine (see DESIGN.md).

    ``local`` is built in; more local targets can be created, each with its own concurrency
    limit (``max_concurrent_runs``) and its own queue.
    """

    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = LOCAL
    managed: ClassVar[bool] = True
    config_class: ClassVar[type[ComputeConfiguration]] = LocalProvisioningConfiguration
    updatable: ClassVar[tuple[str, ...]] = ("max_concurrent_runs", "description", "tags")

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> LocalProvisioningConfiguration:
        """A named local target's settings (``max_concurrent_runs``, description, tags)."""
        return LocalProvisioningConfiguration.build(**kwargs)

    @property
    def record(self) -> ComputeRecord | None:
        return None if self.name == "local" else super().record

    @property
    def max_concurrent_runs(self) -> int:
        """Runs of this target that may execute at once; the rest wait in Queued."""
        configured = self.config.get("max_concurrent_runs") if self.name != "local" else None
        return int(configured or self.workspace.max_concurrent_runs)

    def status(self) -> TargetStatus:
        rec = self.record
        if rec is None:
            return TargetStatus(provisioning_state="Succeeded")
        return TargetStatus(provisioning_state=rec.state, errors=list(rec.errors))

    # -- paths -------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.workspace.run_dir(run_id)

    def log_path(self, run_id: str) -> str | None:
        return str(self.run_dir(run_id) / "artifacts" / DRIVER_LOG)

    def _pylib(self) -> Path:
        """A folder holding only ``runyard`` (a link), for the script's PYTHONPATH."""
        lib = self.workspace.data_dir / "pylib"
        link = lib / "runyard"
        pkg = Path(runyard.__file__).resolve().parent
        if not (link.is_symlink() and Path(os.readlink(link)) == pkg):
            lib.mkdir(parents=True, exist_ok=True)
            tmp = lib / f".runyard-{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(pkg, target_is_directory=True)
            os.replace(tmp, link)
        return lib

    # -- contract ----------------------------------------------------------------------------
    def submit(self, job: JobSpec) -> dict[str, Any]:
        rd = self.run_dir(job.run_id)
        wd = rd / "wd"
        artifacts = rd / "artifacts"
        spool = rd / "spool"
        for d in (artifacts, spool):
            d.mkdir(parents=True, exist_ok=True)
        if job.snapshot_id:
            self.workspace.snapshots.restore(job.snapshot_id, wd)
        else:
            wd.mkdir(parents=True, exist_ok=True)
        pylib = str(self._pylib())
        env = dict(job.env)
        env.update({
            ctx.ENV_RUN_ID: job.run_id,
            ctx.ENV_SPOOL_DIR: str(spool),
            ctx.ENV_ARTIFACTS_DIR: str(artifacts),
            ctx.ENV_EXPERIMENT: job.experiment,
            ctx.ENV_WORKSPACE: str(self.workspace.path),
            ctx.ENV_ATTEMPT: str(job.attempt),
            ctx.ENV_PROPERTIES: json.dumps(job.properties),
            ctx.ENV_TAGS: json.dumps(job.tags),
            "AZUREML_RUN_ID": job.run_id,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (pylib, os.environ.get("PYTHONPATH", "")) if p),
        })
        spec = {
            "run_id": job.run_id,
            "attempt": job.attempt,
            "workdir": str(wd),
            "artifacts_dir": str(artifacts),
            "spool_dir": str(spool),
            "command": job.command,
            "env": env,
            "max_run_duration_seconds": job.max_run_duration_seconds,
            "output_collection": job.output_collection,
            "slots": {"dir": str(self.workspace.data_dir / "slots" / self.name),
                      "count": self.max_concurrent_runs},
        }
        if job.environment is not None:
            spec["environment"] = {**job.environment,
                                   "cache_dir": str(self.workspace.data_dir / "envs")}
        job_path = rd / f"job-a{job.attempt}.json"
        job_path.write_text(json.dumps(spec))
        runner_env = dict(os.environ)
        runner_env["PYTHONPATH"] = env["PYTHONPATH"]
        with open(rd / "runner.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runyard.runtime.runner", str(job_path)],
                cwd=rd, env=runner_env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        return {"version": HANDLE_VERSION, "kind": self.kind, "pid": proc.pid,
                "pid_start": process_start_time(proc.pid), "run_dir": str(rd),
                "attempt": job.attempt}

    def alive(self, handle: dict[str, Any]) -> bool:
        """Whether the runner of ``handle`` still runs (pid and start time both match)."""
        pid = int(handle["pid"])
        reap(pid)
        start = process_start_time(pid)
        return start is not None and start == handle.get("pid_start")

    def poll(self, handle: dict[str, Any], offsets: dict[str, int]) -> JobEvents:
        alive = self.alive(handle)  # before reading: a dead runner has written everything
        spool = Path(handle["run_dir"]) / "spool"
        chunks: dict[str, tuple[int, bytes]] = {}
        for stream in list_streams(spool):
            frm = offsets.get(stream, 0)
            data = read_chunk(spool / f"{stream}.jsonl", frm)
            if data:
                chunks[stream] = (frm, data)
        return JobEvents(chunks=chunks, alive=alive)

    def cancel(self, handle: dict[str, Any], *, wait_seconds: float = 10.0) -> None:
        if not self.alive(handle):
            return
        pid = int(handle["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and self.alive(handle):
            time.sleep(0.02)
        if self.alive(handle):  # the runner did not answer: end its whole group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
