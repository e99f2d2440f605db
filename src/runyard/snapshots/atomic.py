"""Atomic file writes for the snapshot store: write a unique temp file, then ``os.replace``.

Readers never see a partial file and two processes writing the same path leave one complete
copy. Files are not fsynced (a snapshot store is a cache of the user's tree, and the store
checks blob sizes before trusting a blob); ``os.replace`` gives atomicity, not durability.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_O_BINARY = getattr(os, "O_BINARY", 0)


def temp_path(tmp_dir: str | Path, hint: str = "") -> str:
    """A fresh, unique file name in ``tmp_dir`` (not created)."""
    return os.path.join(tmp_dir, f"{hint}{os.getpid()}-{secrets.token_hex(8)}.tmp")


def create_temp(tmp_dir: str | Path, hint: str = "") -> tuple[int, str]:
    """Create a new temp file (mode 0o644 before umask) and return ``(fd, path)``."""
    path = temp_path(tmp_dir, hint)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
    return fd, path


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
