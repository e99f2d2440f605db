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
from runyard.runtime.bundle import bundle_files

AGENT_SOURCE_PATH = Path(__file__).resolve().parent / "hostagent.py"
#: Oldest python the runtime bundle and this agent run on (``scripts/pyfloor`` enforces it).
MIN_PYTHON = (3, 8)
#: A constant program (never built from input) run by a candidate python at attach: it reads
#: the runtime bundle as JSON ``{path: text}`` on stdin, lays it out in a temporary folder,
#: imports every module in it and answers ``{"ok": true}`` or ``{"ok": false, "error": ...}``.
#: Written for any python 3 so that an old one answers instead of failing to parse it.
_IMPORT_CHECK = """\
import importlib, json, os, shutil, sys, tempfile
sys.dont_write_bytecode = True
files = json.loads(sys.stdin.read())
top = tempfile.mkdtemp(prefix="runyard-check-")
answer = {"ok": True}
try:
    for rel, text in files.items():
        path = os.path.join(top, *rel.split("/"))
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    sys.path.insert(0, top)
    for rel in sorted(files):
        name = rel[:-3].replace("/", ".")
        if name.endswith(".__init__"):
            name = name[:-9]
        try:
            importlib.import_module(name)
        except BaseException as exc:
            answer = {"ok": False, "module": name,
                      "error": "%s: %s" % (type(exc).__name__, exc)}
            break
finally:
    shutil.rmtree(top, ignore_errors=True)
sys.stdout.write(json.dumps(answer) + "\\n")
"""
#: Shell snippet (a constant, never built from input) that lists python candidates.
_FIND_PYTHON = 'for p in python3 python; do command -v "$p"; done; echo "PATH=$PATH"'


@cache
def agent_source() -> bytes:
    return AGENT_SOURCE_PATH.read_bytes()


@cache
def bundle_texts() -> bytes:
    """The runtime bundle as the JSON ``{path: text}`` the attach import check reads."""
    files = {rel: src.read_text(encoding="utf-8") for rel, src in bundle_files()}
    return json.dumps(files).encode()


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
    """Find a usable python and inspect the host; errors name what is wrong.

    Usable: python >= 3.8 that runs the agent's probe and imports every module of the runtime
    bundle (sent over stdin into a temporary folder, removed afterwards).
    """
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
        shown = ".".join(map(str, version))
        if version < MIN_PYTHON:
            problems.append(f"{cand}: python {shown} is too old")
            continue
        broken = _import_check(conn, cand)
        if broken:
            problems.append(f"{cand}: python {shown} cannot run runyard's runtime ({broken})")
            continue
        info["python"] = cand if cand.startswith("/") else info.get("python", cand)
        return info
    detail = "; ".join(problems) if problems else "not found"
    raise ComputeTargetInvalid(
        "python", f"no usable python on {where}: looked for {searched}: {detail}. runyard "
        f"needs python >= {'.'.join(map(str, MIN_PYTHON))} on the host that can import its "
        "runtime (standard library only): install python3 there or set "
        "python='/path/to/python3' in the attach configuration")


def _import_check(conn: Connection, python: str) -> str | None:
    """None when ``python`` on the host imports the whole runtime bundle, else why not."""
    code, out, err = conn.exec([python, "-c", _IMPORT_CHECK], bundle_texts(), timeout=60)
    try:
        answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {code}"]
        return f"the import check failed: {tail[0]}"
    if answer.get("ok") is True:
        return None
    # the host is not trusted: what it answers is shown, cut to a readable length
    return f"importing {str(answer.get('module'))[:100]} fails: {str(answer.get('error'))[:300]}"
