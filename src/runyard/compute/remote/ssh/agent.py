"""Workspace side of the host agent (``hostagent.py``): install it, call it, probe a host."""

from __future__ import annotations

import hashlib
import json
import posixpath
import stat
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import paramiko

from runyard.compute.remote.ssh.connection import Connection
from runyard.errors import ComputeTargetError, ComputeTargetInvalid

AGENT_SOURCE_PATH = Path(__file__).resolve().parent / "hostagent.py"
#: Oldest python the runtime bundle runs on (it uses ``zip(strict=...)``).
MIN_PYTHON = (3, 10)
#: Shell snippet (a constant, never built from input) that lists python candidates.
_FIND_PYTHON = 'for p in python3 python; do command -v "$p"; done; echo "PATH=$PATH"'


@cache
def agent_source() -> bytes:
    return AGENT_SOURCE_PATH.read_bytes()


def agent_path(root: str) -> str:
    digest = hashlib.sha256(agent_source()).hexdigest()[:16]
    return posixpath.join(root, "agent", f"hostagent-{digest}.py")


def _mkdirs(sftp: paramiko.SFTPClient, path: str) -> None:
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        sub = "/".join(parts[:i])
        if not sub:
            continue
        try:
            sftp.stat(sub)
        except FileNotFoundError:
            sftp.mkdir(sub)


def ensure_agent(conn: Connection, root: str) -> str:
    """Install the agent under ``root`` on the host when it is not there; returns its path."""
    path = agent_path(root)

    def install(sftp: paramiko.SFTPClient) -> None:
        try:
            if stat.S_ISREG(sftp.stat(path).st_mode or 0):
                return
        except FileNotFoundError:
            pass
        _mkdirs(sftp, posixpath.dirname(path))
        tmp = f"{path}.tmp-{id(conn):x}"
        with sftp.open(tmp, "wb") as fh:
            fh.write(agent_source())
        sftp.posix_rename(tmp, path)

    try:
        conn.with_sftp(install, "installing the runyard agent")
    except OSError as exc:
        raise ComputeTargetError(f"{conn.settings.address}: cannot install runyard's helper in "
                                 f"{posixpath.dirname(path)}: {exc.strerror or exc}") from None
    return path


def call(conn: Connection, python: str, root: str, command: str, request: dict[str, Any],
         payload: Iterable[bytes] = (), timeout: float = 120.0) -> dict[str, Any]:
    """Run one agent command; returns its JSON answer (``{"error"}`` answers raise)."""
    path = ensure_agent(conn, root)

    def stdin() -> Iterator[bytes]:
        yield json.dumps(request, separators=(",", ":")).encode() + b"\n"
        yield from payload

    code, out, err = conn.exec([python, path, command], stdin(), timeout=timeout)
    return _answer(conn, command, code, out, err)


def _answer(conn: Connection, command: str, code: int, out: bytes,
            err: bytes) -> dict[str, Any]:
    lines = out.strip().splitlines()
    try:
        answer: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {}
    if code != 0 or not answer:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise ComputeTargetError(f"{conn.settings.address}: runyard's helper failed on "
                                 f"`{command}` (exit {code}): {' | '.join(tail) or 'no output'}")
    if "error" in answer:
        raise ComputeTargetError(f"{conn.settings.address}: {command}: {answer['error']}",
                                 details={"host_error": answer["error"]})
    return answer


def probe(conn: Connection, python: str | None, workdir: str) -> dict[str, Any]:
    """Find a usable python (>= 3.10) and inspect the host; errors name what is wrong."""
    where = conn.settings.address
    if python:
        candidates = [python]
        searched = f"the configured python {python!r}"
    else:
        code, out, _ = conn.exec(["sh", "-c", _FIND_PYTHON], timeout=30)
        lines = out.decode(errors="replace").splitlines()
        path_line = next((ln for ln in lines if ln.startswith("PATH=")), "PATH=?")
        candidates = list(dict.fromkeys(ln for ln in lines if ln.startswith("/")))
        searched = f"python3 and python on the host's PATH ({path_line[5:]})"
    problems: list[str] = []
    for cand in candidates:
        code, out, err = conn.exec([cand, "-", "probe", workdir], agent_source(), timeout=60)
        try:
            info: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            msg = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {code}"]
            problems.append(f"{cand}: does not run ({msg[0]})")
            continue
        version = tuple(info.get("python_version") or ())
        if version < MIN_PYTHON:
            problems.append(f"{cand}: python {'.'.join(map(str, version))} is too old")
            continue
        info["python"] = cand if cand.startswith("/") else info.get("python", cand)
        return info
    detail = "; ".join(problems) if problems else "not found"
    raise ComputeTargetInvalid(
        "python", f"no usable python on {where}: looked for {searched}: {detail}. runyard "
        f"needs python >= {'.'.join(map(str, MIN_PYTHON))} on the host: install python3 "
        "there or set python='/path/to/python3' in the attach configuration")
