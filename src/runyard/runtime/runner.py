"""The runner: supervises one attempt of one run next to the user's script.

Started detached (its own session) by a compute target as
``python -m runyard.runtime.runner <job.json>``. It waits for a concurrency slot, starts the
user's command in its own process group with stdout and stderr going to the driver log, keeps
``./logs`` collected while the script runs, collects ``./outputs`` at Finalizing, enforces
``max_run_duration_seconds``, and reports every state change to the spool. SIGTERM means
cancel: the script's process group gets SIGTERM, then SIGKILL after a grace period.

No process outlives its run (see :mod:`runyard.runtime.procmarks`):

* the script gets ``RUNYARD_RUN_MARKER=<run id>.a<attempt>`` in its environment, which every
  process it starts inherits (``setsid`` or not); once the script's main process has exited
  (Completed, Failed, timed out) and on cancel, the runner ends its process group *and* every
  process carrying the marker (SIGTERM, SIGKILL after the grace period);
* on Linux the script is started with a parent-death signal (``PR_SET_PDEATHSIG``: SIGKILL), so
  a runner killed outright (``kill -9``) takes the script with it; what the script started is
  left for whoever gives up on the run (a cancel, or the kind's ``kill_leftovers``) to find by
  marker. Elsewhere (macOS) only the script's process group is reached.

Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runyard.runtime import azureml_alias, procmarks
from runyard.runtime.spool import SpoolWriter

DRIVER_LOG = "system_logs/driver_log.txt"
KILL_GRACE_SECONDS = 5.0
_TRACEBACK = b"Traceback (most recent call last):"
#: States after which the runner removes the working copy (when the job asks it to).
_END_STATES = ("Completed", "Failed", "Canceled")
#: The end of the script's output kept on a failed run's error (``output_tail``).
TAIL_LINES = 20
TAIL_BYTES = 4096


class _Canceled(Exception):
    pass


def _regular_files(root: Path, skipped: set[str]) -> list[Path]:
    """Regular files under ``root``; symbolic links (to files or folders) are not followed,
    the same on every kind (their paths go to ``skipped``)."""
    out: list[Path] = []
    for dirpath, dirs, files in os.walk(root):
        for name in list(dirs) + files:
            full = Path(dirpath) / name
            if full.is_symlink():
                skipped.add(full.relative_to(root.parent).as_posix())
            elif name in files and full.is_file():
                out.append(full)
    return out


class Runner:
    """Runs one job described by a ``job.json`` file (see ``runyard.runtime.jobwire``)."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.run_id: str = job["run_id"]
        self.attempt: int = int(job.get("attempt", 1))
        self.workdir = Path(job["workdir"])
        self.artifacts = Path(job["artifacts_dir"])
        self.spool = SpoolWriter(job["spool_dir"], f"runner-a{self.attempt}", self.run_id)
        self.proc: subprocess.Popen[bytes] | None = None
        self.cancel_requested = False
        #: The value of ``RUNYARD_RUN_MARKER`` every process of this attempt carries.
        self.marker = procmarks.run_marker(self.run_id, self.attempt)
        self._logs_seen: dict[str, tuple[int, int]] = {}
        self._skipped: set[str] = set()
        self._script_log_start = 0
        self._alias = False  # the script's `azureml` is runyard's (system-managed environment)
        self._data_folders: list[str] = []  # the run's input folders (removed with the workdir)
        self._prepared: Any = None  # runtime.bindings.Prepared of the run's inputs

    # -- states ------------------------------------------------------------------------------
    def status(self, status: str, cause: str, **extra: Any) -> None:
        if status in _END_STATES and self._prepared is not None and self._prepared.watch:
            self.check_inputs()
        if status in _END_STATES and self.job.get("remove_workdir"):
            self.remove_workdir()  # before the end is told: an ended run has no working copy
        self.spool.emit("status", status=status, cause=cause, attempt=self.attempt, **extra)

    def check_inputs(self) -> None:
        """Drop from this host's cache every linked input file the script changed (so no
        later run reads it), and say so in the driver log."""
        from runyard.runtime import bindings  # noqa: PLC0415

        changed = bindings.check_after(self._prepared)
        self._prepared = None
        if changed:
            with contextlib.suppress(OSError), \
                    open(self.artifacts / DRIVER_LOG, "a") as log:
                for path in changed[:20]:
                    log.write(f"[runyard] the run changed its read-only input file {path}; it "
                              "was removed from this host's data cache (later runs fetch the "
                              "recorded bytes again)\n")

    def remove_workdir(self) -> None:
        """Remove the run's working copy of the code (``remove_workdir`` in the job): its
        ``logs/`` and ``outputs/`` are in the artifacts by now, the snapshot stays in the
        workspace. A folder the script made unreadable is made readable first."""
        def unlock(func: Any, path: str, exc: Any) -> None:
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(path), 0o700)
                if os.path.isdir(path) and not os.path.islink(path):
                    os.chmod(path, 0o700)
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)

        if self.job.get("inputs") or self.job.get("outputs"):
            from runyard.runtime import bindings  # noqa: PLC0415

            bindings.remove(self.job, self.workdir, self._data_folders)
        if self.workdir.is_dir() and not self.workdir.is_symlink():
            if sys.version_info >= (3, 12):  # onerror is deprecated there
                shutil.rmtree(self.workdir, onexc=unlock)  # novermin (guarded)
            else:
                shutil.rmtree(self.workdir, onerror=unlock)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.cancel_requested = True
        if self.proc is None:
            raise _Canceled()

    def _preparing_cause(self) -> str:
        env = self.job.get("environment")
        if not env:
            return "slot acquired"
        key = str(env.get("spec_hash") or "")[:8]
        return f"slot acquired; preparing the environment ({env.get('builder', 'uv')}, " \
               f"spec {key})"

    # -- slots -------------------------------------------------------------------------------
    def acquire_slot(self) -> int | None:
        """Wait for a slot of the run's group (a sweep's ``max_concurrent_runs``), then one of
        the target's (its concurrency limit); each is held until this process exits."""
        group = self.job.get("group_slots")
        if group:
            self._wait_slot(group)
        slots = self.job.get("slots")
        if not slots:
            return None
        return self._wait_slot(slots)

    @staticmethod
    def _wait_slot(slots: dict[str, Any]) -> int:
        folder = Path(slots["dir"])
        folder.mkdir(parents=True, exist_ok=True)
        count = max(1, int(slots["count"]))
        delay = 0.005
        while True:
            for i in range(count):
                fd = os.open(folder / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd  # held until this process exits
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    # -- files -------------------------------------------------------------------------------
    def sync_logs(self) -> None:
        """Copy new or changed files of ``./logs`` into the run's artifacts."""
        src = self.workdir / "logs"
        if not src.is_dir():
            return
        new: list[list[Any]] = []
        for f in _regular_files(src, self._skipped):
            st = f.stat()
            key = f.relative_to(self.workdir).as_posix()
            sig = (st.st_size, st.st_mtime_ns)
            if self._logs_seen.get(key) == sig:
                continue
            dest = self.artifacts / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copyfile(f, dest)
                self._logs_seen[key] = sig
                new.append([key, st.st_size])
        if new:
            self.spool.emit("files", files=new)

    def collect_outputs(self) -> None:
        src = self.workdir / "outputs"
        if not src.is_dir():
            return
        new: list[list[Any]] = []
        for f in sorted(_regular_files(src, self._skipped)):
            key = f.relative_to(self.workdir).as_posix()
            dest = self.artifacts / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = f.stat().st_size
            shutil.move(str(f), dest)
            new.append([key, size])
        if new:
            self.spool.emit("files", files=new)

    def note_skipped(self, log_path: Path) -> None:
        """Say in the driver log which links were left out of logs/ and outputs/."""
        if not self._skipped:
            return
        with contextlib.suppress(OSError), open(log_path, "a") as log:
            for rel in sorted(self._skipped):
                log.write(f"[runyard] not collected: {rel} is a symbolic link (links in "
                          "outputs/ and logs/ are never followed; copy the file instead)\n")
        self._skipped.clear()

    def traceback_text(self, log_path: Path) -> str | None:
        try:
            with open(log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 65536))
                tail = fh.read()
        except OSError:
            return None
        i = tail.rfind(_TRACEBACK)
        return tail[i:].decode(errors="replace").strip() if i >= 0 else None

    def output_tail(self, log_path: Path, start: int = 0) -> str:
        """The last ``TAIL_LINES`` lines (at most ``TAIL_BYTES``) the script wrote to the driver
        log after byte ``start`` (stdout and stderr share the log, in order), without the
        runner's own ``[runyard]`` notes: where argparse's and ``sys.exit``'s messages are."""
        try:
            with open(log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(start, size - TAIL_BYTES))
                data = fh.read()
        except OSError:
            return ""
        lines = [ln for ln in data.decode(errors="replace").splitlines()
                 if not ln.startswith("[runyard]")]
        if size - start > TAIL_BYTES and lines:
            lines = lines[1:]  # the first line read may be cut
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines[-TAIL_LINES:])

    # -- processes ---------------------------------------------------------------------------
    def markers(self) -> dict[str, str]:
        """The marker variables the script's environment must carry: this attempt's run marker
        and the markers this runner inherited (its cluster's), whatever else was scrubbed."""
        out = {name: os.environ[name] for name in procmarks.INHERITED_MARKERS
               if name in os.environ}
        out[procmarks.ENV_RUN_MARKER] = self.marker
        return out

    def kill_script(self) -> None:
        """End the script: SIGTERM to its process group and to every process carrying this
        attempt's marker, SIGKILL to what is left after the grace period."""
        grace = float(self.job.get("kill_grace_seconds", KILL_GRACE_SECONDS))
        deadline = time.monotonic() + grace
        groups: list[int] = []
        if self.proc is not None:
            groups.append(self.proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            while time.monotonic() < deadline and self.proc.poll() is None:
                time.sleep(0.02)
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()  # reaped before the group is checked (a zombie leader lingers)
        procmarks.stop_marked(procmarks.ENV_RUN_MARKER, self.marker, groups=groups,
                              grace=max(0.0, deadline - time.monotonic()))

    def stop_leftovers(self) -> None:
        """After the script's main process exited: end what it left running (its process group
        and every process carrying the marker, ``setsid`` descendants included)."""
        groups = [self.proc.pid] if self.proc is not None else []
        procmarks.stop_marked(procmarks.ENV_RUN_MARKER, self.marker, groups=groups,
                              grace=float(self.job.get("kill_grace_seconds",
                                                       KILL_GRACE_SECONDS)))

    # -- main --------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self.acquire_slot()
            self.status("Preparing", self._preparing_cause())
            from runyard.runtime.envscrub import scrub  # noqa: PLC0415  (no credentials)
            env = scrub(os.environ)
            env.update(self.job.get("env", {}))
            env = azureml_alias.with_alias(env)  # system-managed: `import azureml` is runyard's
            self._alias = env.get(azureml_alias.ENV_AZUREML_ALIAS) == "1"
            env.update(self.markers())
            command = list(self.job["command"])
            log_path = self.artifacts / DRIVER_LOG
            log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.job.get("environment"):  # system-managed: build or reuse it (in Preparing)
                from runyard.runtime import envbuild  # noqa: PLC0415

                self.spool.emit("files", files=[[DRIVER_LOG, 0]])
                try:
                    command, env, props = envbuild.prepare_run(self.job, env, log_path)
                except envbuild.EnvBuildError as exc:
                    self.spool.emit("files", files=[[DRIVER_LOG, log_path.stat().st_size]])
                    self.status("Failed", "environment preparation failed", error=exc.error())
                    return 0
                self.spool.emit("properties", properties=props)
                env.update(self.markers())
            if self.job.get("inputs") or self.job.get("outputs"):  # lay out the run's data
                from runyard.runtime import bindings  # noqa: PLC0415

                self.spool.emit("files", files=[[DRIVER_LOG, 0]])
                try:
                    prepared = bindings.prepare(self.job, self.workdir)
                except (bindings.BindingError, OSError) as exc:
                    self.status("Failed", "input preparation failed",
                                error={"message": f"could not prepare the run's data: {exc}"})
                    return 0
                self._data_folders = prepared.folders
                self._prepared = prepared
                command = bindings.render(command, prepared.values)
                env.update(prepared.env)
                if prepared.inputs:
                    with open(log_path, "a") as note:
                        note.write(prepared.summary() + "\n")
            self.status("Starting", "starting the script")
            with open(log_path, "ab") as log:
                self._script_log_start = log.tell()
                self.proc = subprocess.Popen(
                    command, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=procmarks.parent_death_signal())
            if self.cancel_requested:
                raise _Canceled()
            (self.workdir.parent / "script.pid").write_text(str(self.proc.pid))
            self.spool.emit("files", files=[[DRIVER_LOG, 0]])
            node = _ray_node_id()
            self.status("Running", f"script started (pid {self.proc.pid})"
                        + (f" on node {node[-6:]}" if node else ""))
            return self._supervise(log_path)
        except _Canceled:
            self.kill_script()
            self.status("Canceled", "cancel requested")
            return 0
        except Exception as exc:  # a failure of the runner itself still ends the run
            self.kill_script()
            self.status("Failed", "runner error",
                        error={"message": f"{type(exc).__name__}: {exc}"})
            return 1

    def _supervise(self, log_path: Path) -> int:
        assert self.proc is not None
        limit = self.job.get("max_run_duration_seconds")
        started = time.monotonic()
        last_sync = started
        timed_out = False
        delay = 0.005
        while self.proc.poll() is None:
            if self.cancel_requested:
                raise _Canceled()
            now = time.monotonic()
            if limit and now - started > float(limit):
                timed_out = True
                self.kill_script()
                break
            if now - last_sync > 1.0:
                self.sync_logs()
                last_sync = now
            time.sleep(delay)
            delay = min(delay * 1.5, 0.02)  # the end is seen within 20 ms (a waitpid each)
        code = self.proc.wait()
        if self.cancel_requested:
            raise _Canceled()
        self.stop_leftovers()
        if self.cancel_requested:
            raise _Canceled()
        self.status("Finalizing", f"script exited with code {code}")
        self.spool.emit("files", files=[[DRIVER_LOG, log_path.stat().st_size]])
        self.sync_logs()
        if self.job.get("output_collection", True):
            self.collect_outputs()
        if code == 0 and not timed_out and self.job.get("outputs"):
            from runyard.runtime import bindings  # noqa: PLC0415

            bindings.stage_outputs(self.job, self.workdir, self.artifacts)
        if self._skipped:
            self.note_skipped(log_path)
            self.spool.emit("files", files=[[DRIVER_LOG, log_path.stat().st_size]])
        if timed_out:
            self.status("Failed", "max_run_duration_seconds exceeded", error={
                "message": f"The run exceeded max_run_duration_seconds={limit} and was stopped.",
                "exit_code": code})
        elif code == 0:
            # only where a real SDK can answer `import azureml` (not under runyard's alias)
            offline = (None if self._alias else
                       azureml_alias.offline_sdk_error(log_path, self._script_log_start))
            if offline:  # the real SDK swallowed the metrics: never a silent Completed
                self.status("Failed", "the script logged to the Azure ML SDK's offline run",
                            error=offline)
            else:
                self.status("Completed", "script exited with code 0")
        else:
            tb = self.traceback_text(log_path)
            tail = self.output_tail(log_path, self._script_log_start)
            msg = f"The script exited with code {code}."
            last = tb or tail
            if last:
                msg = f"{msg} {last.strip().splitlines()[-1]}"
            self.status("Failed", f"script exited with code {code}",
                        error={"message": msg, "exit_code": code, "traceback": tb,
                               "output_tail": tail})
        return 0


def _ray_node_id() -> str:
    """The id of the Ray node this runner is on (cluster kind; '' elsewhere), from what the
    raylet passes down to its workers' processes."""
    for name in ("RAY_NODE_ID", "RAY_CLOUD_INSTANCE_ID", "RAY_OVERRIDE_NODE_ID_FOR_TESTING"):
        if os.environ.get(name):
            return os.environ[name]
    return ""


def _own_start_time() -> int | None:
    """This process's start time in clock ticks (field 22 of /proc/self/stat), None off Linux."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def claim(path: str) -> bool:
    """Claim the start of this attempt: the first runner to create ``path`` runs the job, any
    later one (a start repeated after its submitter died) exits without running it. The file
    holds the claimer's pid and start time, from which the workspace rebuilds the handle."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, json.dumps({"pid": os.getpid(), "pid_start": _own_start_time()}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m runyard.runtime.runner JOB_JSON``."""
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text())
    if job.get("claim_path") and not claim(job["claim_path"]):
        print(f"attempt {job.get('attempt', 1)} of run {job.get('run_id')} was claimed by "
              "another runner; not started twice", file=sys.stderr)
        return 0
    return Runner(job).run()


if __name__ == "__main__":
    sys.exit(main())
