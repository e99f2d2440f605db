"""The ``remote`` kind: any SSH-reachable Linux host (Azure ML ``RemoteCompute``).

Attach checks the host before anything is stored: it connects (the host key is verified before a
credential is sent, see :mod:`runyard.compute.remote.ssh.hostkeys`), then checks the OS, a
usable python (>= 3.8 and able to import the runtime bundle) and the free disk under the
target's folder on the host (``workdir``, ``~/.runyard`` by default). The host key, the python
and the absolute folder are recorded in the configuration; password, private key (read from
``private_key_file`` at attach) and passphrase go to the encrypted secrets table.

A run: the code travels by content (only blobs the host lacks), the runner starts detached on the
host (own session, output to files, see :mod:`runyard.compute.remote.ssh.hostagent`) and builds a
system-managed environment there with :mod:`runyard.runtime.envbuild` (cache
``<workdir>/envs``; uv is installed under it when the host has none). The workspace pulls the
spool and the artifacts by offset (:meth:`RemoteCompute.poll`), reconnecting with backoff. A
host that stays unreachable for ``unreachable_timeout_seconds`` (default 300 s) turns the run
NotResponding; the run is never started a second time.

Hostnames, user names and every path that reaches the host are checked here, so that no value
can smuggle shell syntax or an ssh option into a command line (commands are argument lists
quoted with :func:`shlex.join` on top of that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from runyard.compute.base import (
    ComputeKind,
    JobEvents,
    JobHandle,
    JobSpec,
    TargetStatus,
    slot_key,
)
from runyard.compute.capabilities import REMOTE
from runyard.compute.config import ComputeConfiguration
from runyard.compute.remote.config import (
    _RUN_ID,
    CANCEL_GRACE_SECONDS,
    POLL_TIMEOUT_SECONDS,
    RemoteAttachConfiguration,
)
from runyard.errors import (
    ComputeTargetError,
    ComputeTargetInvalid,
    ComputeTargetNotSupported,
    RunyardError,
    TargetUnavailable,
)
from runyard.runtime import jobwire, procmarks
from runyard.secrets import Secret

_T = TypeVar("_T")


@dataclass
class RemoteHandle(JobHandle):
    """A runner on an SSH host: its folder there and its identity (pid, start, boot id)."""

    kind: ClassVar[str] = "remote"
    target: str = ""
    address: str = ""
    run_dir: str = ""
    pid: int = 0
    pid_start: int | None = None
    boot_id: str = ""
    uploaded_bytes: int = 0


class RemoteKind(ComputeKind):
    """An SSH-reachable Linux machine (Azure ML ``RemoteCompute``)."""

    kind: ClassVar[str] = "remote"
    capabilities = REMOTE
    managed: ClassVar[bool] = False
    config_class: ClassVar[type[ComputeConfiguration]] = RemoteAttachConfiguration
    updatable: ClassVar[tuple[str, ...]] = ("unreachable_timeout_seconds", "max_concurrent_runs",
                                            "min_free_disk_mb", "tags")
    #: User-managed interpreter paths name files on the host (checked there, not here).
    interpreter_on_target: ClassVar[bool] = True
    handle_class: ClassVar[type[JobHandle]] = RemoteHandle
    group_slots: ClassVar[bool] = True

    # -- attach ------------------------------------------------------------------------------
    def check_attach(self, config: ComputeConfiguration) -> None:
        """Connect, then check OS, python and free disk; record what was found."""
        require_ssh()
        from runyard.compute.remote.ssh import agent  # noqa: PLC0415
        from runyard.compute.remote.ssh.connection import Connection  # noqa: PLC0415

        assert isinstance(config, RemoteAttachConfiguration)
        if config.private_key_file and config.private_key is None:
            path = Path(config.private_key_file).expanduser()
            try:
                config.private_key = Secret(path.read_text())
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not a text key file"
                raise ComputeTargetInvalid("private_key_file",
                                           f"cannot read {config.private_key_file}: {why}"
                                           ) from None
        conn = Connection(_settings(config))
        try:
            code, out, err = conn.exec(["uname", "-s"], timeout=30)
            system = out.decode(errors="replace").strip()
            if code != 0 or not system:
                why = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                raise ComputeTargetNotSupported(
                    f"cannot tell which OS {config.address} runs: `uname -s` failed (exit "
                    f"{code}: {why}); the remote kind needs a Linux host")
            if system != "Linux":
                raise ComputeTargetNotSupported(
                    f"{config.address} runs {system}; the remote kind needs a Linux host")
            info = agent.probe(conn, config.python, config.workdir)
            if not info.get("writable"):
                raise ComputeTargetInvalid(
                    "workdir", f"cannot write to {info['workdir']} on {config.address}: "
                    f"{info.get('workdir_error', 'not writable')}; choose another workdir")
            free_mb = int(info["free_bytes"]) / 2**20
            if free_mb < config.min_free_disk_mb:
                raise ComputeTargetInvalid(
                    "workdir", f"not enough free disk on {config.address}: "
                    f"{info['free_path']} has {free_mb:.1f} MB free, and runyard needs at least "
                    f"{config.min_free_disk_mb} MB (min_free_disk_mb) there for code, "
                    "environments and outputs; free some space or choose another workdir")
            config.host_key = conn.host_key_line
            config.python = str(info["python"])
            config.workdir = str(info["workdir"])
            from runyard.compute.remote.ssh.hostkeys import fingerprint  # noqa: PLC0415

            config.host_info = {
                "os": info.get("os"), "machine": info.get("machine"),
                "python_version": ".".join(map(str, info.get("python_version") or [])),
                "uv": info.get("uv"), "venv": info.get("venv"),
                "container_engines": info.get("container_engines", []),
                "free_disk_mb": round(free_mb),
                "host_key_fingerprint": fingerprint(conn.transport.get_remote_server_key()),
            }
        finally:
            conn.close()

    def teardown(self) -> None:
        from runyard.compute.remote.ssh.connection import POOL  # noqa: PLC0415

        POOL.drop(self._pool_key())

    def capacity(self) -> int | None:
        """``max_concurrent_runs`` of the attach configuration (None: unlimited)."""
        value = self.config.get("max_concurrent_runs")
        return int(value) if value else None

    def status(self) -> TargetStatus:
        rec = self.record
        return TargetStatus(rec.state if rec else "Unknown", list(rec.errors) if rec else [])


    # -- connections -------------------------------------------------------------------------
    def _pool_key(self) -> str:
        return f"{self.ctx.data_dir}::{self.name}"

    def _configuration(self) -> RemoteAttachConfiguration:
        rec = self.record
        if rec is None:
            raise ComputeTargetError(f"compute target {self.name!r} is gone (detached?)")
        cfg = RemoteAttachConfiguration.from_config(
            {**rec.config, "password": self.secret("password"),
             "private_key_passphrase": self.secret("private_key_passphrase"),
             "private_key": self.secret("private_key")})
        if not cfg.python or not cfg.host_key:
            raise ComputeTargetError(f"target {self.name!r} was not attached completely; "
                                     "detach it and attach it again")
        return cfg

    def _with_connection(self, cfg: RemoteAttachConfiguration,
                         fn: Callable[[Any, Any], _T]) -> _T:
        """Run ``fn(connection, pool entry)``; a connection that broke is rebuilt once."""
        from runyard.compute.remote.ssh.connection import POOL, ConnectionLost  # noqa: PLC0415

        settings = _settings(cfg)
        conn, entry = POOL.get(self._pool_key(), settings)
        try:
            return fn(conn, entry)
        except ConnectionLost:
            conn, entry = POOL.get(self._pool_key(), settings, fresh=True)
            return fn(conn, entry)

    # -- contract ----------------------------------------------------------------------------
    def submit(self, job: JobSpec) -> RemoteHandle:
        from runyard.compute.remote.ssh import agent  # noqa: PLC0415
        from runyard.compute.remote.ssh.sync import upload_for  # noqa: PLC0415

        if not _RUN_ID.fullmatch(job.run_id) or job.run_id.startswith((".", "-")):
            raise ComputeTargetInvalid("run_id", f"{job.run_id!r} cannot name a folder on a "
                                       "remote host")
        cfg = self._configuration()
        root, python = cfg.workdir, str(cfg.python)
        run_dir = f"{root}/runs/{job.run_id}"
        upload = upload_for(self.ctx.snapshots, job.snapshot_id)
        data_blobs = job.input_blobs()  # the inputs' files travel like code: only missing ones
        cache = self.ctx.dataset_cache_dir
        for sha, size in data_blobs.items():
            upload.sources[sha] = (cache / sha[:2] / sha, size)
        bundle_dir = f"{root}/bundle/{upload.bundle['digest']}"
        command = list(job.command)
        if command and command[0] == "python":
            command[0] = python
        wire = job.to_dict()
        env = jobwire.script_env(wire, run_id=job.run_id, spool_dir=f"{run_dir}/spool",
                                 artifacts_dir=f"{run_dir}/artifacts", bundle_dir=bundle_dir,
                                 pythonpath=job.env.get("PYTHONPATH", ""))
        spec = jobwire.runner_job(
            wire, run_id=job.run_id, workdir=f"{run_dir}/wd",
            artifacts_dir=f"{run_dir}/artifacts", spool_dir=f"{run_dir}/spool", env=env,
            command=command, env_cache_dir=f"{root}/envs",
            slots=({"dir": f"{root}/slots", "count": cfg.max_concurrent_runs}
                   if cfg.max_concurrent_runs else None),
            group_slots=(job.slot_group and {
                "dir": f"{root}/slots/groups/{slot_key(str(job.slot_group['key']))}",
                "count": int(job.slot_group["count"])}),
            input_blobs=f"{root}/blobs/{{sha2}}/{{rest}}", input_views=f"{root}/views")
        # the host's working copy goes when the run ends, as on the local kind (outputs and
        # logs are collected into the run's artifacts first); keep_run_folders keeps it
        spec["remove_workdir"] = not self.ctx.keep_run_folders
        request: dict[str, Any] = {"root": root, "run_dir": run_dir, "attempt": job.attempt,
                                   "job": spec, "files": upload.files, "bundle": upload.bundle,
                                   "data_blobs": [[b, s] for b, s in data_blobs.items()]}
        needed = upload.blobs()
        sent = {"bytes": 0}

        def start(conn: Any, entry: Any) -> dict[str, Any]:
            unknown = [[b, s] for b, s in needed if b not in entry.known_blobs]
            send: list[str] = []
            if unknown:
                send = list(agent.call(conn, python, root, "missing",
                                       {"root": root, "blobs": unknown})["missing"])
                lacking = set(send)
                entry.known_blobs.update(b for b, _ in unknown if b not in lacking)
            for _ in range(3):
                request["blobs"] = [[b, upload.sources[b][1]] for b in send]
                sent["bytes"] += sum(upload.sources[b][1] for b in send)
                answer = agent.call(conn, python, root, "start", request,
                                    upload.payload(send), timeout=600)
                if "missing" in answer:  # the host lost blobs we thought it had
                    send = [b for b in answer["missing"] if b in upload.sources]
                    entry.known_blobs.difference_update(send)
                    continue
                entry.known_blobs.update(b for b, _ in needed)
                handle: dict[str, Any] = answer["handle"]
                return handle
            raise ComputeTargetError(f"{cfg.address}: the code could not be placed on the host")

        remote = self._with_connection(cfg, start)
        return RemoteHandle(run_id=job.run_id, attempt=int(remote.get("attempt", job.attempt)),
                            target=self.name, address=cfg.address, run_dir=run_dir,
                            pid=int(remote["pid"]), pid_start=remote.get("pid_start"),
                            boot_id=str(remote.get("boot_id", "")),
                            uploaded_bytes=sent["bytes"])

    def poll(self, handle: RemoteHandle, offsets: dict[str, int]) -> JobEvents:
        """Pull new spool lines and artifacts; an unreachable host is retried with backoff."""
        from runyard.compute.remote.ssh import agent  # noqa: PLC0415
        from runyard.compute.remote.ssh.connection import ReconnectBackoff  # noqa: PLC0415
        from runyard.compute.remote.ssh.sync import PullState, pull_artifacts, run_lock  # noqa: PLC0415

        run_id = handle.run_id
        local = self.ctx.run_dir(run_id)
        with run_lock(local):
            state = PullState(local)
            if state.finished:  # everything was pulled after the runner ended: no SSH needed
                return JobEvents(chunks={}, alive=False)
            try:
                cfg = self._configuration()
            except RunyardError as exc:
                return JobEvents(chunks={}, alive=False, reason=str(exc))
            request = {"run_dir": handle.run_dir, "pid": handle.pid,
                       "pid_start": handle.pid_start, "boot_id": handle.boot_id,
                       "offsets": offsets}

            def go(conn: Any, entry: Any) -> dict[str, Any]:
                answer = agent.call(conn, str(cfg.python), cfg.workdir, "poll", request,
                                    timeout=POLL_TIMEOUT_SECONDS)
                conn.with_sftp(lambda sftp: pull_artifacts(
                    sftp, f"{handle.run_dir}/artifacts", self.artifacts_dir(run_id),
                    answer.get("files", []), state), "pulling artifacts")
                return answer

            try:
                answer = self._with_connection(cfg, go)
            except ReconnectBackoff:
                return JobEvents(chunks={}, alive=True)  # no attempt made: nothing learned
            except RunyardError as exc:
                return self._unreachable(cfg, state, exc)
            chunks = {str(s): (int(frm), str(data).encode("latin-1"))
                      for s, (frm, data) in answer.get("chunks", {}).items()}
            state.unreachable_since = None
            state.finished = not answer.get("alive") and not chunks
            state.save()
        return JobEvents(chunks=chunks, alive=bool(answer.get("alive")))

    def _unreachable(self, cfg: RemoteAttachConfiguration, state: Any,
                     exc: RunyardError) -> JobEvents:
        now = time.time()
        if state.unreachable_since is None:
            state.unreachable_since = now
            state.save()
        waited = now - state.unreachable_since
        if waited < cfg.unreachable_timeout_seconds:
            return JobEvents(chunks={}, alive=True)  # keep waiting; retried with backoff
        return JobEvents(chunks={}, alive=False, unreachable=True, reason=(
            f"the host {cfg.address} could not be reached for {waited:.0f} s "
            f"(unreachable_timeout_seconds={cfg.unreachable_timeout_seconds:g}): {exc}. The run "
            "may still be running there; it is not started again"))

    def cancel(self, handle: RemoteHandle) -> None:
        """The host agent's ``cancel``: SIGTERM to the runner (SIGKILL to both process groups
        after the grace period), then every process on the host still carrying the run's
        marker, whether the runner was alive or not."""
        self._agent_cancel(handle, kill_runner=False)

    def kill_leftovers(self, handle: RemoteHandle) -> int:
        """On the host: SIGKILL to the runner if it is alive, then every process carrying the
        attempt's run marker (see the host agent's ``cancel``; Linux hosts only)."""
        return self._agent_cancel(handle, kill_runner=True)

    def _agent_cancel(self, handle: RemoteHandle, *, kill_runner: bool) -> int:
        from runyard.compute.remote.ssh import agent  # noqa: PLC0415

        cfg = self._configuration()
        request = {"run_dir": handle.run_dir, "pid": handle.pid,
                   "pid_start": handle.pid_start, "boot_id": handle.boot_id,
                   "grace": CANCEL_GRACE_SECONDS, "kill_runner": kill_runner,
                   "marker": procmarks.run_marker(handle.run_id, handle.attempt)}
        try:
            answer = self._with_connection(cfg, lambda conn, _e: agent.call(
                conn, str(cfg.python), cfg.workdir, "cancel", request,
                timeout=CANCEL_GRACE_SECONDS + 30))
        except TargetUnavailable as exc:
            raise TargetUnavailable(
                f"cannot cancel run {handle.run_id}: {exc}. Try again; if the host stays "
                f"unreachable the run turns NotResponding after "
                f"{cfg.unreachable_timeout_seconds:g} s") from None
        return int(answer.get("leftovers") or 0)


def require_ssh() -> None:
    """Refuse clearly when the SSH client library (the ``ssh`` extra) is not installed."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("paramiko") is None:
        raise ComputeTargetNotSupported("the remote kind needs the SSH client library: "
                                        "pip install 'runyard[ssh]' (paramiko)")


def _settings(cfg: RemoteAttachConfiguration) -> Any:
    require_ssh()
    from runyard.compute.remote.ssh.connection import Settings  # noqa: PLC0415

    return Settings(address=cfg.address, port=cfg.ssh_port, username=cfg.username,
                    password=cfg.password, private_key=cfg.private_key,
                    private_key_passphrase=cfg.private_key_passphrase,
                    private_key_file=cfg.private_key_file, host_key=cfg.host_key,
                    known_hosts_file=cfg.known_hosts_file,
                    trust_unknown_host_key=cfg.trust_unknown_host_key)
