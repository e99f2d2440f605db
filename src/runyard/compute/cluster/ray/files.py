"""Pulling a run's spool and artifacts from the node folders into the workspace.

The runner on a node writes the run's event spool and artifacts (driver log included) into its
node folder; the workspace pulls new bytes by offset, like every other kind. How the bytes are
read is a :class:`NodeFiles`: :class:`SharedFiles` reads them where the node wrote them, which is
right for the ``local`` provider (the nodes are raylets on this machine) and for clusters whose
node root is a shared filesystem (NFS, Azure Files, EFS, Filestore) mounted at the same path.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from runyard.runtime.spool import list_streams, read_chunk


class NodeFiles(Protocol):
    """Read access to node folders."""

    def streams(self, spool_dir: str) -> list[str]:
        """Spool stream names in a folder."""

    def chunk(self, path: str, offset: int) -> bytes:
        """Complete lines of a stream file from ``offset``."""

    def tree(self, folder: str) -> list[tuple[str, int]]:
        """(relative path, size) of every file under ``folder``."""

    def read(self, path: str, offset: int) -> bytes:
        """Bytes of a file from ``offset`` to its end."""


class SharedFiles:
    """Node folders on a filesystem this process sees (local provider, shared mounts)."""

    def streams(self, spool_dir: str) -> list[str]:
        return list_streams(spool_dir)

    def chunk(self, path: str, offset: int) -> bytes:
        return read_chunk(path, offset)

    def tree(self, folder: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        root = Path(folder)
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                full = Path(dirpath) / name
                if full.is_symlink():  # links are never followed (as the runner and SSH pull)
                    continue
                with contextlib.suppress(OSError):
                    out.append((full.relative_to(root).as_posix(), full.stat().st_size))
        return out

    def read(self, path: str, offset: int) -> bytes:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except OSError:
            return b""


def pull_chunks(files: NodeFiles, spools: list[tuple[str, str]],
                offsets: dict[str, int]) -> dict[str, tuple[int, bytes]]:
    """New complete lines of every stream; ``spools`` is [(stream prefix, spool dir)]."""
    chunks: dict[str, tuple[int, bytes]] = {}
    for prefix, spool in spools:
        for stream in files.streams(spool):
            key = f"{prefix}{stream}"
            frm = offsets.get(key, 0)
            data = files.chunk(os.path.join(spool, f"{stream}.jsonl"), frm)
            if data:
                chunks[key] = (frm, data)
    return chunks


#: Folders whose files only grow while a run writes them (pulled by appended bytes).
APPEND_ONLY = ("system_logs/",)


def mirror(files: NodeFiles, src: str, dest: Path) -> int:
    """Bring ``dest`` up to date with ``src``: appended bytes for grown logs, whole copies for
    everything else that changed size. Returns the number of bytes written."""
    written = 0
    for rel, size in files.tree(src):
        target = dest / rel
        try:
            have = target.stat().st_size
        except OSError:
            have = -1
        if have == size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if 0 <= have < size and rel.startswith(APPEND_ONLY):
            data = files.read(os.path.join(src, rel), have)
            with open(target, "ab") as fh:
                fh.write(data)
            written += len(data)
            continue
        tmp = target.with_name(f".{target.name}.pull")
        data = files.read(os.path.join(src, rel), 0)
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written += len(data)
    return written


@contextlib.contextmanager
def pull_lock(dest: Path) -> Iterator[None]:
    """Exclusive lock of a run's artifact folder while it is being pulled into."""
    dest.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest.parent / ".pull.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a node folder (ignoring what is already gone)."""
    shutil.rmtree(path, ignore_errors=True)
