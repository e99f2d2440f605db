"""Processes on this machine: identity by (pid, start time), reaping. Shared by the kinds."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess

#: Detached children this process started and has not seen end: kept so that they are reaped
#: by ``poll`` (a ``Popen`` dropped while its child runs would warn and leak a zombie).
_DETACHED: dict[int, subprocess.Popen[bytes]] = {}


def _forget_detached() -> None:
    """At exit: detached children outlive this process on purpose; drop them without the
    "subprocess is still running" ResourceWarning meant for forgotten children."""
    for proc in _DETACHED.values():
        if proc.poll() is None:
            proc.returncode = 0  # not ours to wait for any more (it is in its own session)
    _DETACHED.clear()


def keep(proc: subprocess.Popen[bytes]) -> None:
    """Remember a detached child so that :func:`reap` collects it once it ends."""
    if not _DETACHED:
        atexit.unregister(_forget_detached)  # registered once however often it empties
        atexit.register(_forget_detached)
    _DETACHED[proc.pid] = proc
    for pid, other in list(_DETACHED.items()):
        if other.poll() is not None:
            _DETACHED.pop(pid, None)  # another thread's keep() may have dropped it already


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), None when the
    process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks (from /proc), None when gone or a zombie."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child (so it does not linger as a zombie)."""
    proc = _DETACHED.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _DETACHED[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``start``."""
    reap(pid)
    now = process_start_time(pid)
    return now is not None and now == start
