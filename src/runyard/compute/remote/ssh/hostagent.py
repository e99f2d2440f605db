"""runyard's helper on an SSH host: standard library only, run by the host's python (>= 3.8).

The ``remote`` compute target runs it over SSH as ``PYTHON hostagent.py COMMAND [ARG...]``, one
short process per request. The request is one JSON line on stdin (``start`` follows it with the
bytes of the blobs the line lists); the answer is one JSON line on stdout. A request that cannot
be served answers ``{"error": "..."}``.

Commands:

``probe WORKDIR``  what attach checks: OS, python, free disk, whether WORKDIR is writable
                   (also run before the agent is installed: ``python - probe WORKDIR`` with
                   this file on stdin).
``missing``        which of the listed blobs the host lacks.
``start``          store the sent blobs, lay out the runtime bundle and the run's code, start
                   the runner detached (own session and process group, output to files) and
                   answer its handle. Idempotent per (run, attempt): a repeated start answers
                   the first one's handle and never starts a second runner.
``poll``           liveness of the runner, new spool lines from the given offsets, and the list
                   of artifact files (size, mtime) so the workspace pulls what changed.
``cancel``         SIGTERM to the runner (it stops the script's process group and every process
                   carrying the run's marker), then SIGKILL to both process groups after a
                   grace period; then every process still carrying the marker the request
                   names (``RUNYARD_RUN_MARKER=<run id>.a<attempt>``, ``setsid`` descendants
                   included) is ended too, whether the runner was alive or not. With
                   ``kill_runner`` the runner gets SIGKILL at once (the workspace gave up on
                   it). Markers are read from ``/proc/<pid>/environ`` (Linux hosts only; a
                   process that cleared its environment escapes; only this user's processes).

Layout under the root folder (``~/.runyard`` by default)::

    blobs/ab/<62 hex>     content-addressed files (snapshots and the runtime bundle)
    bundle/<digest>/      the runtime bundle (on the runner's and the script's PYTHONPATH)
    envs/                 system-managed environments (runyard.runtime.envbuild's cache)
    runs/<run id>/        wd/ (the code), artifacts/, spool/, job-aN.json, runner.log,
                          handle-aN.json
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from typing import IO, Any

CHUNK = 1 << 20
SPOOL_SUFFIX = ".jsonl"
DEFAULT_READ_LIMIT = 16 << 20
#: What every process of a run carries in its environment (``runyard.runtime.procmarks``).
RUN_MARKER_ENV = "RUNYARD_RUN_MARKER"


class AgentError(Exception):
    """A request this agent refuses (answered as ``{"error": message}``)."""


# -- small helpers ----------------------------------------------------------------------------
def boot_id() -> str:
    """This boot's id (a rebooted host has a new one: no earlier pid is valid there)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks, None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid: int, pid_start: int | None, boot: str) -> bool:
    """Whether the process of a handle still runs (same boot, same pid and start time)."""
    if boot and boot != boot_id():
        return False
    got = start_time(pid)
    return got is not None and got == pid_start


def blob_file(root: str, blob: str) -> str:
    """Where blob ``blob`` lives under ``root``."""
    if len(blob) != 64 or any(c not in "0123456789abcdef" for c in blob):
        raise AgentError(f"not a blob id: {blob!r}")
    return os.path.join(root, "blobs", blob[:2], blob[2:])


def safe_rel(path: str) -> str:
    """A relative ``/``-separated path without ``..`` (refused otherwise)."""
    if (not isinstance(path, str) or not path or "\0" in path or path.startswith("/")
            or any(p in ("", ".", "..") for p in path.split("/"))):
        raise AgentError(f"bad relative path {path!r}")
    return path


def has_blob(root: str, blob: str, size: int | None) -> bool:
    try:
        st = os.stat(blob_file(root, blob))
    except OSError:
        return False
    return size is None or st.st_size == size


def write_json(path: str, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
    os.replace(tmp, path)


def read_exact(stream: IO[bytes], n: int) -> bytes:
    parts = []
    while n > 0:
        data = stream.read(min(n, CHUNK))
        if not data:
            raise AgentError("the request ended early (connection dropped?)")
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def free_bytes(path: str) -> tuple[str, int]:
    """Free bytes for unprivileged users on the filesystem of ``path`` (or its parent)."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    st = os.statvfs(probe)
    return probe, st.f_bavail * st.f_frsize


# -- commands ---------------------------------------------------------------------------------
def cmd_probe(workdir: str) -> dict[str, Any]:
    root = os.path.abspath(os.path.expanduser(workdir))
    info: dict[str, Any] = {
        "os": platform.system(), "machine": platform.machine(), "python": sys.executable,
        "python_version": list(sys.version_info[:3]), "home": os.path.expanduser("~"),
        "workdir": root, "boot_id": boot_id(), "uv": shutil.which("uv"),
        "container_engines": [n for n in ("docker", "podman") if shutil.which(n)],
        "venv": _has_module("ensurepip"),
    }
    try:
        os.makedirs(root, exist_ok=True)
        test = os.path.join(root, f".write-test-{os.getpid()}")
        with open(test, "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        os.unlink(test)
        info["writable"] = True
    except OSError as exc:
        info["writable"] = False
        info["workdir_error"] = f"{exc.strerror or exc}"
    info["free_path"], info["free_bytes"] = free_bytes(root)
    return info


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def cmd_missing(req: dict[str, Any]) -> dict[str, Any]:
    root = req["root"]
    return {"missing": [b for b, size in req["blobs"] if not has_blob(root, b, size)]}


def _store_blobs(root: str, blobs: list[list[Any]], stream: IO[bytes]) -> None:
    """Read each listed blob from ``stream``, check its hash, move it into place."""
    tmp_dir = os.path.join(root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    for blob, size in blobs:
        dest = blob_file(root, blob)
        tmp = os.path.join(tmp_dir, f"{blob}.{os.getpid()}")
        h = hashlib.sha256()
        left = int(size)
        with open(tmp, "wb") as fh:
            while left > 0:
                data = stream.read(min(left, CHUNK))
                if not data:
                    os.unlink(tmp)
                    raise AgentError("the request ended early (connection dropped?)")
                h.update(data)
                fh.write(data)
                left -= len(data)
        if h.hexdigest() != blob:
            os.unlink(tmp)
            raise AgentError(f"blob {blob} arrived damaged (hash mismatch)")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(tmp, dest)


def _materialize(root: str, rows: list[list[Any]], dest: str) -> None:
    """Copy the files of a manifest (``[path, blob, size, mode]`` rows) into ``dest``."""
    os.makedirs(dest, exist_ok=True)
    for path, blob, _size, mode in rows:
        target = os.path.join(dest, safe_rel(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(target):
            os.unlink(target)
        shutil.copyfile(blob_file(root, blob), target)
        os.chmod(target, 0o755 if int(mode) & 0o111 else 0o644)


def _ensure_bundle(root: str, bundle: dict[str, Any]) -> str:
    digest = str(bundle["digest"])
    if not digest.isalnum():
        raise AgentError(f"bad bundle digest {digest!r}")
    final = os.path.join(root, "bundle", digest)
    if os.path.isfile(os.path.join(final, ".complete")):
        return final
    tmp = os.path.join(root, "bundle", f".tmp-{digest}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _materialize(root, bundle["files"], tmp)
    with open(os.path.join(tmp, ".complete"), "w") as fh:
        fh.write(digest)
    try:
        os.rename(tmp, final)
    except OSError:  # another start published it first (or a stale half copy is there)
        if not os.path.isfile(os.path.join(final, ".complete")):
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _wait_for_handle(path: str, seconds: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError), open(path) as fh:
            data: dict[str, Any] = json.load(fh)
            return data
        time.sleep(0.05)
    return None


def cmd_start(req: dict[str, Any], stream: IO[bytes]) -> dict[str, Any]:
    root = req["root"]
    _store_blobs(root, req.get("blobs", []), stream)
    needed = [(r[1], r[2]) for r in req["files"]] + [(r[1], r[2]) for r in
                                                     req["bundle"]["files"]]
    needed += [(r[0], r[1]) for r in req.get("data_blobs", [])]  # the run's input files
    lacking = sorted({b for b, size in needed if not has_blob(root, b, size)})
    if lacking:
        return {"missing": lacking}
    run_dir = req["run_dir"]
    attempt = int(req["attempt"])
    handle_path = os.path.join(run_dir, f"handle-a{attempt}.json")
    os.makedirs(run_dir, exist_ok=True)
    existing = _wait_for_handle(handle_path, 0)
    if existing is not None:
        return {"handle": existing, "existing": True}
    try:  # exactly one start per (run, attempt), even when the workspace retries
        fd = os.open(os.path.join(run_dir, f"start-a{attempt}.lock"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        existing = _wait_for_handle(handle_path, 15)
        if existing is None:
            raise AgentError(f"attempt {attempt} of this run was already started once and did "
                             "not record a handle; it is not started again") from None
        return {"handle": existing, "existing": True}
    os.close(fd)
    bundle_dir = _ensure_bundle(root, req["bundle"])
    job = req["job"]
    _materialize(root, req["files"], job["workdir"])
    for d in (job["artifacts_dir"], job["spool_dir"]):
        os.makedirs(d, exist_ok=True)
    job_path = os.path.join(run_dir, f"job-a{attempt}.json")
    write_json(job_path, job)
    env = dict(os.environ)
    env["PYTHONPATH"] = bundle_dir
    env["PYTHONUNBUFFERED"] = "1"
    with open(os.path.join(run_dir, "runner.log"), "ab") as log:
        proc = subprocess.Popen(  # noqa: S603  (an argument list, no shell)
            [sys.executable, "-m", "runyard.runtime.runner", job_path], cwd=run_dir, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    handle = {"pid": proc.pid, "pid_start": start_time(proc.pid), "boot_id": boot_id(),
              "run_dir": run_dir, "attempt": attempt, "started_at": time.time()}
    write_json(handle_path, handle)
    return {"handle": handle}


def _streams(spool: str) -> list[str]:
    try:
        names = [n[: -len(SPOOL_SUFFIX)] for n in os.listdir(spool) if n.endswith(SPOOL_SUFFIX)]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda n: (not n.startswith("runner"), n))


def _read_lines(path: str, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except FileNotFoundError:
        return b""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def cmd_poll(req: dict[str, Any]) -> dict[str, Any]:
    run_dir = req["run_dir"]
    # liveness first: a runner seen dead has written everything read below
    is_alive = alive(int(req["pid"]), req.get("pid_start"), str(req.get("boot_id") or ""))
    limit = int(req.get("limit") or DEFAULT_READ_LIMIT)
    offsets = req.get("offsets") or {}
    spool = os.path.join(run_dir, "spool")
    chunks: dict[str, list[Any]] = {}
    for stream in _streams(spool):
        frm = int(offsets.get(stream, 0))
        data = _read_lines(os.path.join(spool, stream + SPOOL_SUFFIX), frm, limit)
        if data:
            chunks[stream] = [frm, data.decode("latin-1")]
    files = []
    artifacts = os.path.join(run_dir, "artifacts")
    for dirpath, _dirs, names in os.walk(artifacts):
        for name in names:
            full = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(full)
                if os.path.isfile(full) and not os.path.islink(full):
                    files.append([os.path.relpath(full, artifacts).replace(os.sep, "/"),
                                  st.st_size, st.st_mtime_ns])
    return {"alive": is_alive, "chunks": chunks, "files": files, "boot_id": boot_id()}


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def marked_pids(marker: str) -> set[int]:
    """Live processes of this user started with ``RUNYARD_RUN_MARKER=<marker>`` (not this one).

    The same rule as ``runyard.runtime.procmarks`` (this file ships alone, so it has its own
    copy): an exact entry of ``/proc/<pid>/environ``; unreadable and zombie processes skipped.
    """
    entry = f"{RUN_MARKER_ENV}={marker}".encode()
    found: set[int] = set()
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    me = os.getpid()
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if entry in fh.read().split(b"\0"):
                    found.add(int(name))
        except OSError:
            continue
    return found


def stop_marked(marker: str, grace: float, give_up: float = 10.0) -> int:
    """SIGTERM every process carrying the marker, SIGKILL what is left after ``grace``;
    returns how many were signalled."""
    seen: set[int] = set()
    deadline = time.monotonic() + max(0.0, grace)
    while True:
        pids = marked_pids(marker)
        if not pids:
            return len(seen)
        now = time.monotonic()
        killing = now >= deadline
        for p in (pids if killing else pids - seen):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL if killing else signal.SIGTERM)
        seen |= pids
        if now > deadline + give_up:
            return len(seen)
        time.sleep(0.05)


def cmd_cancel(req: dict[str, Any]) -> dict[str, Any]:
    pid, pid_start = int(req["pid"]), req.get("pid_start")
    boot = str(req.get("boot_id") or "")
    grace = float(req.get("grace", 10.0))
    marker = req.get("marker")
    if marker is not None and (not isinstance(marker, str) or not marker or "\0" in marker):
        raise AgentError(f"bad run marker {marker!r}")
    was_alive = alive(pid, pid_start, boot)
    if was_alive and not req.get("kill_runner"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # the runner stops the script's group and reports
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(pid, pid_start, boot):
            time.sleep(0.02)
    if was_alive and alive(pid, pid_start, boot):  # the runner did not answer: end both groups
        script = os.path.join(req["run_dir"], "script.pid")
        with contextlib.suppress(OSError, ValueError), open(script) as fh:
            _killpg(int(fh.read().strip()), signal.SIGKILL)
        _killpg(pid, signal.SIGKILL)
    killed = stop_marked(marker, min(grace, 2.0)) if marker else 0
    return {"was_alive": was_alive, "leftovers": killed}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write("usage: hostagent.py probe|missing|start|poll|cancel\n")
        return 2
    command = args[0]
    try:
        if command == "probe":
            answer = cmd_probe(args[1] if len(args) > 1 else "~/.runyard")
        else:
            stdin = sys.stdin.buffer
            line = stdin.readline()
            req = json.loads(line) if line.strip() else {}
            if command == "missing":
                answer = cmd_missing(req)
            elif command == "start":
                answer = cmd_start(req, stdin)
            elif command == "poll":
                answer = cmd_poll(req)
            elif command == "cancel":
                answer = cmd_cancel(req)
            else:
                raise AgentError(f"unknown command {command!r}")
    except AgentError as exc:
        answer = {"error": str(exc)}
    except OSError as exc:
        answer = {"error": f"{exc.strerror or exc}"
                           + (f": {exc.filename}" if getattr(exc, "filename", None) else ""),
                  "errno": exc.errno}
    sys.stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
