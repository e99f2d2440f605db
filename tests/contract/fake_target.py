"""``FakeTarget``: the ``local`` kind with failure injection (dask-gateway's backend-test idea).

Each job runs as a real detached runner process, exactly as :class:`LocalKind` runs it (the
class subclasses it and reuses its ``submit``/``poll``/``cancel``). What goes wrong is chosen
by ``fail_at`` in the target's *stored* configuration (:class:`FakeConfiguration`), so every
kind object made for the target (by the submitter, a reconciler thread, another process) sees
the same faults. The state of a fault (how many polls failed, whether the restart happened)
lives in files, never in the object, for the same reason.

Injection points:

``submit``          ``submit`` raises ``TargetUnavailable`` and starts nothing.
``submit_timeout``  ``submit`` raises ``TimeoutError`` (an ``OSError``) and starts nothing.
``poll``            the first ``poll_failures`` polls of each run raise ``TargetUnavailable``;
                    later polls work.
``lost_handle``     ``poll`` reports ``alive=False``, no chunks and :data:`LOST_REASON`, as if
                    the handle no longer finds the job (the real job is killed so that nothing
                    is left behind).
``not_ready``       ``ready()`` is False until :func:`ready_flag` exists.
``restart``         once attempt 1 is Running, ``poll`` kills it and reports
                    ``restart=RESTART_CAUSE`` (once); ``restart()`` starts the next attempt.
``restart_gate``    ``restart()`` waits (bounded) for :func:`restart_gate` to exist before it
                    starts anything: a window in which the run is between two attempts.

Every runner start is appended to :func:`starts_file` (one JSON line each), so tests can count
starts across threads and processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from runyard.compute.base import JobEvents, JobHandle, JobSpec
from runyard.compute.config import ComputeConfiguration, check_int
from runyard.compute.local import LocalHandle, LocalKind
from runyard.compute.procs import process_start_time, same_process
from runyard.entities import RunStatus
from runyard.errors import ComputeTargetInvalid, NotFound, TargetUnavailable

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

FAIL_POINTS = frozenset({"submit", "submit_timeout", "poll", "lost_handle", "not_ready",
                         "restart", "restart_gate"})
LOST_REASON = "fake: the job handle no longer finds the job"
RESTART_CAUSE = "preempted: test"
GATE_SECONDS = 60.0


def starts_file(ctx: WorkspaceContext) -> Path:
    """One JSON line per runner started by any fake target of the workspace."""
    return ctx.data_dir / "fake-starts.jsonl"


def ready_flag(ctx: WorkspaceContext, name: str) -> Path:
    """With ``not_ready``: target ``name`` is ready once this file exists."""
    return ctx.data_dir / f"fake-{name}.ready"


def restart_gate(ctx: WorkspaceContext, run_id: str) -> Path:
    """With ``restart_gate``: ``restart()`` of ``run_id`` goes on once this file exists."""
    return _fault_dir(ctx, run_id) / "restart-go"


def read_starts(ctx: WorkspaceContext, run_id: str | None = None) -> list[dict[str, object]]:
    """The recorded runner starts (of ``run_id`` only, when given)."""
    try:
        lines = starts_file(ctx).read_text().splitlines()
    except FileNotFoundError:
        return []
    starts = [json.loads(line) for line in lines if line.strip()]
    return [s for s in starts if run_id is None or s["run_id"] == run_id]


def _fault_dir(ctx: WorkspaceContext, run_id: str) -> Path:
    path = ctx.run_dir(run_id) / "fake"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _count(path: Path) -> int:
    """Add one to the counter file ``path`` (under a lock: exact across processes)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        n = int(os.read(fd, 32) or b"0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(n).encode())
        return n
    finally:
        os.close(fd)


def kill_job(handle: LocalHandle) -> None:
    """SIGKILL the runner's group and the script's group of ``handle`` and wait (bounded) until
    the runner is gone (a node that vanished, not a cancel: nothing gets reported)."""
    run_dir = Path(handle.run_dir)
    script_pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int((run_dir / "script.pid").read_text())
        # Only the script of this run: a group leader working in the run's folder.
        if (process_start_time(pid) is not None and os.getpgid(pid) == pid
                and Path(os.readlink(f"/proc/{pid}/cwd")) == (run_dir / "wd").resolve()):
            script_pid = pid
    if same_process(int(handle.pid), handle.pid_start):  # first: it must report nothing
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(handle.pid), signal.SIGKILL)
    if script_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and same_process(int(handle.pid), handle.pid_start):
        time.sleep(0.02)


@dataclass(repr=False)
class FakeConfiguration(ComputeConfiguration):
    """A fake target: a local target plus the faults it injects."""

    kind: ClassVar[str] = "fake"
    fail_at: list[str] = field(default_factory=list)
    poll_failures: int = 3
    max_concurrent_runs: int | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        self.fail_at = sorted(set(self.fail_at))
        unknown = set(self.fail_at) - FAIL_POINTS
        if unknown:
            raise ComputeTargetInvalid("fail_at", f"unknown fail points {sorted(unknown)}; "
                                       f"known: {', '.join(sorted(FAIL_POINTS))}")
        self.poll_failures = check_int("poll_failures", self.poll_failures, 0)
        if self.max_concurrent_runs is not None:
            self.max_concurrent_runs = check_int("max_concurrent_runs",
                                                 self.max_concurrent_runs, 1)


@dataclass
class FakeHandle(LocalHandle):
    """A local handle under the fake kind's name (so other kinds refuse it)."""

    kind: ClassVar[str] = "fake"


class FakeTarget(LocalKind):
    """``LocalKind`` with the faults named by ``fail_at`` in the stored configuration."""

    kind: ClassVar[str] = "fake"
    config_class: ClassVar[type[ComputeConfiguration]] = FakeConfiguration
    updatable: ClassVar[tuple[str, ...]] = ("fail_at", "poll_failures", "max_concurrent_runs",
                                            "description", "tags")
    handle_class: ClassVar[type[JobHandle]] = FakeHandle

    @property
    def fail_at(self) -> frozenset[str]:
        """The injection points in force now (read from the store on every call)."""
        return frozenset(self.config.get("fail_at") or ())

    # -- contract ----------------------------------------------------------------------------
    def ready(self) -> bool:
        if "not_ready" in self.fail_at:
            return ready_flag(self.ctx, self.name).exists()
        return True

    def submit(self, job: JobSpec) -> FakeHandle:
        faults = self.fail_at
        if "submit" in faults:
            raise TargetUnavailable(f"fake target {self.name!r} refused the job of "
                                    f"{job.run_id} (injected)")
        if "submit_timeout" in faults:
            raise TimeoutError(f"fake target {self.name!r} timed out starting {job.run_id} "
                               "(injected)")
        local = super().submit(job)
        handle = FakeHandle(**asdict(local))
        line = json.dumps({"target": self.name, **handle.to_json()}) + "\n"
        fd = os.open(starts_file(self.ctx), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return handle

    def poll(self, handle: LocalHandle, offsets: dict[str, int]) -> JobEvents:
        faults = self.fail_at
        if "lost_handle" in faults:
            kill_job(handle)
            return JobEvents(chunks={}, alive=False, reason=LOST_REASON)
        if "poll" in faults:
            n = _count(_fault_dir(self.ctx, handle.run_id) / "polls")
            limit = int(self.config.get("poll_failures", 3))
            if n <= limit:
                raise TargetUnavailable(f"fake target {self.name!r} is unreachable "
                                        f"(poll {n} of {limit} failing, injected)")
        events = super().poll(handle, offsets)
        if "restart" in faults and not events.chunks and self._preempt_now(handle):
            kill_job(handle)
            return JobEvents(chunks={}, alive=False, restart=RESTART_CAUSE)
        return events

    def _preempt_now(self, handle: LocalHandle) -> bool:
        """Attempt 1 is Running in the store and was not preempted yet (claimed once)."""
        if int(handle.attempt) != 1:
            return False
        run = self.ctx.store.get_run(handle.run_id)
        if run is None or run.status != RunStatus.RUNNING or run.attempt != 1:
            return False
        marker = _fault_dir(self.ctx, handle.run_id) / "preempted"
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True

    def restart(self, handle: LocalHandle, attempt: int) -> FakeHandle:
        if "restart_gate" in self.fail_at:
            gate = restart_gate(self.ctx, handle.run_id)
            (gate.parent / "restart-waiting").touch()
            deadline = time.monotonic() + GATE_SECONDS
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        run = self.ctx.store.get_run(handle.run_id)
        if run is None or "job" not in run.definition:
            raise NotFound(f"run {handle.run_id!r} has no stored job to restart")
        job = JobSpec.from_dict(dict(run.definition["job"]))
        job.attempt = attempt
        return self.submit(job)
