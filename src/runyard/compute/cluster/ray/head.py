"""The processes of one local Ray cluster: start the head, tell readiness, own and stop them.

``ray stop`` stops every Ray process on the machine, so runyard never uses it. Instead each
cluster is started so that every process it ever runs can be found again:

* the head is started by ``ray start`` in a new session (``setsid``): the GCS, the dashboard,
  the autoscaler (which starts the fake nodes' raylets), the raylets' agents and workers all
  stay in that session;
* every process inherits ``RUNYARD_RAY_CLUSTER=<uid>``, which also marks what left the session
  (job drivers, runners and user scripts start their own sessions); processes that overwrite
  their environment (``ray::`` workers use setproctitle) stay in the session.

:func:`owned_pids` is the union of both, plus descendants; :func:`stop_processes` ends exactly
that set (SIGTERM, then SIGKILL) and nothing else. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runyard.compute.procs import keep, process_start_time, reap, stat_fields
from runyard.runtime import procmarks

#: The cluster marker (``RUNYARD_RAY_CLUSTER=<uid>``); runners pass it on to the scripts they
#: start even when the script's environment is otherwise scrubbed.
MARKER_ENV = procmarks.ENV_CLUSTER_MARKER
STATE_FILE = "state.json"
START_LOG = "start.log"
START_RC = "start.rc"
AUTOSCALER_FILE = "autoscaler.yaml"
NODES_FILE = "nodes.json"

#: Settings of a local cluster's Ray processes (autoscaler loop, dead-node detection, binding).
LOCAL_RAY_ENV = {
    "RAY_FAKE_CLUSTER": "1",
    "AUTOSCALER_UPDATE_INTERVAL_S": "1",
    "AUTOSCALER_HEARTBEAT_TIMEOUT_S": "10",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_JOB_STOP_WAIT_TIME_S": "10",
    "RAY_AUTH_MODE": "token",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
}


@dataclass
class HeadState:
    """Where a local cluster lives and how to reach it (``<cluster dir>/state.json``)."""

    uid: str
    cluster_dir: str
    temp_dir: str
    gcs_port: int
    dashboard_port: int
    client_port: int
    agent_port: int
    python: str
    node_root: str
    sid: int | None = None
    starter_pid: int | None = None
    starter_start: int | None = None
    started_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dashboard_url(self) -> str:
        """The head's HTTP address (Jobs API, dashboard)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def gcs_address(self) -> str:
        """The GCS address nodes and drivers connect to."""
        return f"127.0.0.1:{self.gcs_port}"

    def path(self, name: str) -> Path:
        """A file in the cluster folder."""
        return Path(self.cluster_dir) / name

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        target = self.path(STATE_FILE)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{STATE_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, target)

    @classmethod
    def load(cls, cluster_dir: str | os.PathLike[str]) -> HeadState | None:
        """The saved state, or None when the cluster folder has none."""
        try:
            data = json.loads((Path(cluster_dir) / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(int(s.getsockname()[1]))
    finally:
        for s in socks:
            s.close()
    return ports


def new_state(cluster_dir: Path, node_root: Path) -> HeadState:
    """A fresh identity and port set for a cluster (nothing started yet)."""
    uid = secrets.token_hex(4)
    gcs, dash, client, agent = free_ports(4)
    # Ray puts unix sockets under the temp dir: keep its path short.
    return HeadState(uid=uid, cluster_dir=str(cluster_dir), temp_dir=f"/tmp/ry-{uid}",
                     gcs_port=gcs, dashboard_port=dash, client_port=client, agent_port=agent,
                     python=sys.executable, node_root=str(node_root))


def ray_executable(python: str) -> str:
    """The ``ray`` command next to ``python`` (the one with Ray installed)."""
    candidate = Path(python).parent / "ray"
    return str(candidate) if candidate.exists() else "ray"


def head_command(state: HeadState) -> list[str]:
    """``ray start --head`` for this cluster: loopback only, its own ports and temp dir."""
    return [ray_executable(state.python), "start", "--head", "--num-cpus=0", "--num-gpus=0",
            f"--port={state.gcs_port}", "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={state.dashboard_port}",
            f"--ray-client-server-port={state.client_port}",
            f"--dashboard-agent-listen-port={state.agent_port}",
            f"--temp-dir={state.temp_dir}", "--object-store-memory=100000000",
            f"--autoscaling-config={state.path(AUTOSCALER_FILE)}", "--disable-usage-stats"]


def head_env(state: HeadState, token: str) -> dict[str, str]:
    """The environment every process of the cluster inherits."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_ADDRESS", "RUNYARD_", "AZUREML_"))}
    env.update(LOCAL_RAY_ENV)
    env[MARKER_ENV] = state.uid
    env["RAY_AUTH_TOKEN"] = token
    src = str(Path(__file__).resolve().parents[4])  # the folder holding the runyard package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def start_head(state: HeadState, token: str) -> None:
    """Start ``ray start --head`` detached in its own session; returns at once.

    A small shell wrapper records ``ray start``'s exit status in ``start.rc`` so any process
    (a restarted workspace included) can tell Creating from Succeeded or Failed.
    """
    rc_file = state.path(START_RC)
    with contextlib.suppress(FileNotFoundError):
        rc_file.unlink()
    cmd = " ".join(shlex.quote(c) for c in head_command(state))
    script = f"{cmd}; echo $? > {shlex.quote(str(rc_file))}.tmp && " \
             f"mv {shlex.quote(str(rc_file))}.tmp {shlex.quote(str(rc_file))}"
    with open(state.path(START_LOG), "ab") as log:
        proc = subprocess.Popen(["/bin/sh", "-c", script], env=head_env(state, token),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=state.cluster_dir)
    keep(proc)
    state.sid = proc.pid
    state.starter_pid = proc.pid
    state.starter_start = process_start_time(proc.pid)
    state.started_at = time.time()
    state.save()


def start_outcome(state: HeadState) -> tuple[str, str]:
    """``("starting"|"started"|"failed", message)`` of the head's start."""
    rc_file = state.path(START_RC)
    if state.starter_pid:
        reap(state.starter_pid)
    if not rc_file.exists():
        alive = state.starter_pid and process_start_time(state.starter_pid) == \
            state.starter_start
        if alive:
            return "starting", ""
        if not rc_file.exists():
            return "failed", "the 'ray start' process ended without reporting its result"
    rc = rc_file.read_text().strip()
    if rc == "0":
        return "started", ""
    return "failed", ray_error_text(state.path(START_LOG)) or f"'ray start' exited with {rc}"


def ray_error_text(log: Path, limit: int = 3000) -> str:
    """Ray's own message from the end of a start log (its error lines, else the tail)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    raised = [i for i, ln in enumerate(lines) if re.match(r"^[\w.]*(Error|Exception): ", ln)]
    if raised:  # the exception Ray ended with, and what it said after it
        return "\n".join(lines[raised[-1]:])[-limit:]
    keep: list[str] = []
    for i, ln in enumerate(lines):
        if any(w in ln for w in ("Error", "error", "Exception", "failed", "Failed")):
            keep.extend(lines[i:i + 3])
    out = "\n".join(dict.fromkeys(keep)) if keep else "\n".join(lines[-15:])
    return out[-limit:]


# -- ownership ------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, sid) of a live process, None when gone or a zombie (nothing left to stop)."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[1]), int(fields[3])


def owned_pids(uid: str, sid: int | None) -> set[int]:
    """Every live process of the cluster ``uid`` (see the module docs)."""
    me = os.getpid()
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                table[int(name)] = st
    owned = {pid for pid, (_ppid, psid) in table.items()
             if pid != me and ((sid is not None and psid == sid)
                               or procmarks.has_marker(pid, MARKER_ENV, uid))}
    grew = True
    while grew:  # descendants of owned processes are owned too
        grew = False
        for pid, (ppid, _sid) in table.items():
            if ppid in owned and pid not in owned and pid != me:
                owned.add(pid)
                grew = True
    return owned


def stop_processes(uid: str, sid: int | None, grace: float = 3.0) -> int:
    """SIGTERM every process of the cluster, SIGKILL what is left after ``grace``; returns
    how many processes were signalled. Processes of other clusters are never touched.

    This is the graceful stop too: ``ray stop`` would stop every Ray process of the machine,
    other clusters' included, so runyard signals exactly :func:`owned_pids` instead, scanning
    again until none is left (what a dying process starts meanwhile is caught)."""
    seen: set[int] = set()
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        pids = owned_pids(uid, sid)
        if not pids:
            return len(seen)
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        for pid in pids:
            if sig == signal.SIGKILL or pid not in seen:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            seen.add(pid)
            reap(pid)
        if sig == signal.SIGKILL and time.monotonic() > deadline + 10:
            return len(seen)  # unkillable (D state): give up rather than hang
        time.sleep(0.2)


# -- a guard for throw-away clusters (tests, benchmarks) ----------------------------------------
def guard(owner_pid: int, root: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
    """Start a detached watcher that stops every cluster whose ``state.json`` lies under
    ``root`` once process ``owner_pid`` is gone (a test run killed before its clean-up)."""
    return subprocess.Popen(
        [sys.executable, "-m", "runyard.compute.cluster.ray.head", "guard", str(owner_pid),
         str(process_start_time(owner_pid)), str(root)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)


def _guard_main(owner_pid: int, owner_start: str, root: str) -> int:
    while process_start_time(owner_pid) is not None and \
            str(process_start_time(owner_pid)) == owner_start:
        time.sleep(1.0)
    for state_file in Path(root).rglob(STATE_FILE):
        hs = HeadState.load(state_file.parent)
        if hs is not None:
            stop_processes(hs.uid, hs.sid)
            import shutil  # noqa: PLC0415

            shutil.rmtree(hs.temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "guard":
        sys.exit(_guard_main(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    sys.exit(2)
