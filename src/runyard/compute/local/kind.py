"""``LocalKind``: runs each job as a detached runner process on this machine (DESIGN.md)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from runyard.compute.base import (
    Capabilities,
    ComputeKind,
    JobEvents,
    JobHandle,
    JobSpec,
    TargetStatus,
    slot_key,
)
from runyard.compute.capabilities import LOCAL
from runyard.compute.config import ComputeConfiguration, LocalProvisioningConfiguration
from runyard.compute.procs import keep, process_start_time, same_process
from runyard.entities import ComputeRecord
from runyard.runtime import bundle, envscrub, jobwire, procmarks
from runyard.runtime.spool import list_streams, read_chunk

BUILTIN = "local"
#: Bundle folder per workspace, once this process has written or found it.
_BUNDLES: dict[Path, Path] = {}


def remove_tree(path: Path) -> None:
    """Remove the folder ``path`` if it exists (a link to one is only unlinked); folders a
    script made unreadable are made readable first; what still resists is left."""
    if path.is_symlink():
        path.unlink()
        return
    if not path.is_dir():
        return
    import shutil  # noqa: PLC0415

    for dirpath, dirs, _files in os.walk(path):
        for d in dirs:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                with contextlib.suppress(OSError):
                    os.chmod(full, 0o700)
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class LocalHandle(JobHandle):
    """A runner process on this machine: pid + start time identify it across restarts."""

    kind: ClassVar[str] = "local"
    pid: int = 0
    pid_start: int | None = None
    run_dir: str = ""


class LocalKind(ComputeKind):
    """Runs each job as a detached runner process on this machine.

    ``local`` is built in; more local targets can be created, each with its own concurrency
    limit (``max_concurrent_runs``) and its own queue.
    """

    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = LOCAL
    managed: ClassVar[bool] = True
    config_class: ClassVar[type[ComputeConfiguration]] = LocalProvisioningConfiguration
    updatable: ClassVar[tuple[str, ...]] = ("max_concurrent_runs", "description", "tags")
    handle_class: ClassVar[type[JobHandle]] = LocalHandle
    group_slots: ClassVar[bool] = True

    @property
    def record(self) -> ComputeRecord | None:
        return None if self.name == BUILTIN else super().record

    @property
    def max_concurrent_runs(self) -> int:
        """Runs of this target that may execute at once; the rest wait in Queued."""
        configured = self.config.get("max_concurrent_runs") if self.name != BUILTIN else None
        return int(configured or self.ctx.max_concurrent_runs)

    def capacity(self) -> int | None:
        """Its concurrency limit."""
        return self.max_concurrent_runs

    def status(self) -> TargetStatus:
        rec = self.record
        if rec is None:
            return TargetStatus(provisioning_state="Succeeded")
        return TargetStatus(provisioning_state=rec.state, errors=list(rec.errors))

    def _bundle_dir(self) -> Path:
        """The runtime bundle for this workspace's runs (written once per bundle digest)."""
        root = self.ctx.data_dir / "bundle"
        known = _BUNDLES.get(root)
        if known is not None and (known / "runyard" / "__init__.py").is_file():
            return known  # this process checked it already (the runtime does not change)
        digest = bundle.bundle_digest()
        dest = root / digest
        if not (dest / "runyard" / "__init__.py").is_file():
            tmp = root / f".{digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            bundle.write_bundle(tmp)
            try:
                os.rename(tmp, dest)
            except OSError:  # another process published it first
                import shutil  # noqa: PLC0415

                shutil.rmtree(tmp, ignore_errors=True)
        _BUNDLES[root] = dest
        return dest

    # -- contract ----------------------------------------------------------------------------
    def submit(self, job: JobSpec) -> LocalHandle:
        rd = self.ctx.run_dir(job.run_id)
        wd = rd / "wd"
        artifacts = self.artifacts_dir(job.run_id)
        spool = rd / "spool"
        for d in (artifacts, spool):
            d.mkdir(parents=True, exist_ok=True)
        if job.snapshot_id:
            self.ctx.snapshots.restore(job.snapshot_id, wd)
        else:
            wd.mkdir(parents=True, exist_ok=True)
        spec = job.to_dict()
        bundle_dir = str(self._bundle_dir())
        env = jobwire.script_env(spec, run_id=job.run_id, spool_dir=str(spool),
                                 artifacts_dir=str(artifacts), bundle_dir=bundle_dir,
                                 pythonpath=os.environ.get("PYTHONPATH", ""))
        runner = jobwire.runner_job(
            spec, run_id=job.run_id, workdir=str(wd), artifacts_dir=str(artifacts),
            spool_dir=str(spool), env=env, env_cache_dir=str(self.ctx.env_cache_dir),
            slots={"dir": str(self.ctx.data_dir / "slots" / self.name),
                   "count": self.max_concurrent_runs},
            group_slots=(job.slot_group and {
                "dir": str(self.ctx.data_dir / "slots" / "groups"
                           / slot_key(str(job.slot_group["key"]))),
                "count": int(job.slot_group["count"])}),
            # inputs: the workspace's dataset cache is this host's (the submit filled it)
            input_blobs=f"{self.ctx.dataset_cache_dir}/{{sha2}}/{{sha}}",
            input_views=str(self.ctx.data_dir / "cache" / "dataset-views"))
        claim_path = rd / f"runner-a{job.attempt}.claim"
        claimed = self._claimed(job, claim_path)
        if claimed is not None:  # started once already (its submitter died before recording)
            return claimed
        runner["claim_path"] = str(claim_path)
        # the working copy goes when the run ends (its outputs and logs are collected first)
        runner["remove_workdir"] = not self.ctx.keep_run_folders
        job_path = rd / f"job-a{job.attempt}.json"
        job_path.write_text(json.dumps(runner))
        # the runner needs no credential either, and a script can read its parent's environ
        runner_env = envscrub.scrub(os.environ)
        runner_env["PYTHONPATH"] = env["PYTHONPATH"]
        with open(rd / "runner.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runyard.runtime.runner", str(job_path)],
                cwd=rd, env=runner_env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        keep(proc)
        return LocalHandle(run_id=job.run_id, attempt=job.attempt, pid=proc.pid,
                           pid_start=process_start_time(proc.pid), run_dir=str(rd))

    @staticmethod
    def _claimed(job: JobSpec, claim_path: Path) -> LocalHandle | None:
        """The handle of the runner that claimed this attempt, if one did (each attempt
        starts once: a repeated submit returns the first start)."""
        try:
            data = json.loads(claim_path.read_text())
        except (OSError, ValueError):
            return None
        return LocalHandle(run_id=job.run_id, attempt=job.attempt, pid=int(data["pid"]),
                           pid_start=data.get("pid_start"), run_dir=str(claim_path.parent))

    def on_run_end(self, run_id: str) -> bool:
        """Remove the working copy a run's runner left behind (it removes its own before it
        reports the end; one killed outright cannot), unless ``keep_run_folders`` is set."""
        if not self.ctx.keep_run_folders:
            remove_tree(self.ctx.run_dir(run_id) / "wd")
        return False

    def alive(self, handle: LocalHandle) -> bool:
        """Whether the runner of ``handle`` still runs (pid and start time both match)."""
        return same_process(int(handle.pid), handle.pid_start)

    def poll(self, handle: LocalHandle, offsets: dict[str, int]) -> JobEvents:
        alive = self.alive(handle)  # before reading: a dead runner has written everything
        spool = Path(handle.run_dir) / "spool"
        chunks: dict[str, tuple[int, bytes]] = {}
        for stream in list_streams(spool):
            frm = offsets.get(stream, 0)
            data = read_chunk(spool / f"{stream}.jsonl", frm)
            if data:
                chunks[stream] = (frm, data)
        return JobEvents(chunks=chunks, alive=alive)

    def cancel(self, handle: LocalHandle, *, wait_seconds: float = 10.0) -> None:
        """SIGTERM to the runner (it ends the script and everything carrying the run's
        marker, then reports Canceled); a runner that does not answer within ``wait_seconds``,
        or one that is already gone, is followed by :meth:`kill_leftovers`."""
        if self.alive(handle):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(handle.pid), signal.SIGTERM)
            deadline = time.monotonic() + wait_seconds
            while time.monotonic() < deadline and self.alive(handle):
                time.sleep(0.02)
        self.kill_leftovers(handle)

    def kill_leftovers(self, handle: LocalHandle, *, grace: float = 2.0) -> int:
        """End the runner of ``handle`` if it still runs (SIGKILL to its process group) and
        every process carrying the attempt's run marker (SIGTERM, SIGKILL after ``grace``).

        Linux only for the marker part (``/proc``); see :mod:`runyard.runtime.procmarks` for
        what escapes (a process that cleared its environment).
        """
        count = 0
        if self.alive(handle):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(handle.pid), signal.SIGKILL)
            count += 1
        return count + procmarks.stop_marked(
            procmarks.ENV_RUN_MARKER, procmarks.run_marker(handle.run_id, handle.attempt),
            grace=grace)
