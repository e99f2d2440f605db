"""Atomic file writes for the snapshot store: write a unique temp file, then ``os.replace``.

Readers never see a partial file and two processes writing the same path leave one complete
copy. Files are not fsynced (a snapshot store is a cache of the user's tree, and the store
checks blob sizes before trusting a blob); ``os.replace`` gives atomicity, not durability.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from pathlib import Path

_O_BINARY = getattr(os, "O_BINARY", 0)


_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
_counter = itertools.count()


def create_temp(tmp_dir: str | Path, hint: str = "") -> tuple[int, str]:
    """Create a new, uniquely named temp file in ``tmp_dir`` and return ``(fd, path)``.

    The mode is 0o644 before umask. Names combine the process id and a counter; a name left
    by a dead process with the same id falls back to a random one.
    """
    path = f"{tmp_dir}{os.sep}{hint}{os.getpid()}-{next(_counter)}.tmp"
    try:
        return os.open(path, _FLAGS, 0o644), path
    except FileExistsError:
        path = f"{tmp_dir}{os.sep}{hint}{os.getpid()}-{secrets.token_hex(8)}.tmp"
        return os.open(path, _FLAGS, 0o644), path


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (looping on short writes)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write_bytes(path: str | Path, data: bytes, tmp_dir: str | Path) -> None:
    """Write ``data`` to ``path`` atomically, via a temp file in ``tmp_dir`` (same filesystem)."""
    fd, tmp = create_temp(tmp_dir)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
