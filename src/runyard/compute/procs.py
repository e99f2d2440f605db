"""Processes on this machine: identity by (pid, start time), reaping. Shared by the kinds."""

from __future__ import annotations

import contextlib
import os


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


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``start``."""
    reap(pid)
    now = process_start_time(pid)
    return now is not None and now == start
