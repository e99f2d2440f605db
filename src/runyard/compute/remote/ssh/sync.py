"""Moving bytes between the workspace and a host: code up (by content), artifacts down.

Up: a run's snapshot and the runtime bundle are manifests of content-addressed blobs. The host
keeps a blob store; only the blobs it lacks travel, streamed inside the ``start`` request (one
round trip when the host is known to hold everything, two otherwise).

Down: the runner writes the artifacts (driver log, ./logs, ./outputs, uploaded files) on the
host. Each poll lists them with size and mtime; a file that grew is fetched from the last pulled
offset (logs are append-only), a file that shrank or was rewritten is fetched again whole. What
was pulled is recorded in ``<run dir>/remote-pull.json`` so a restarted workspace goes on from
there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from runyard.runtime.bundle import bundle_digest, bundle_files
from runyard.snapshots.manifest import is_sha256_hex

STATE_FILE = "remote-pull.json"
READ_CHUNK = 1 << 20


@dataclass
class Upload:
    """The files a start needs on the host and where the workspace reads each blob from."""

    files: list[list[Any]]
    bundle: dict[str, Any]
    sources: dict[str, tuple[Path, int]] = field(default_factory=dict)  # blob -> (path, size)

    def blobs(self) -> list[tuple[str, int]]:
        return [(b, s) for b, (_, s) in self.sources.items()]

    def payload(self, blobs: list[str]) -> Iterator[bytes]:
        for blob in blobs:
            path, _size = self.sources[blob]
            with open(path, "rb") as fh:
                while chunk := fh.read(READ_CHUNK):
                    yield chunk


def bundle_rows() -> tuple[dict[str, Any], dict[str, tuple[Path, int]]]:
    """The runtime bundle as manifest rows, and where each of its blobs is read from."""
    import hashlib  # noqa: PLC0415

    rows: list[list[Any]] = []
    sources: dict[str, tuple[Path, int]] = {}
    for rel, src in bundle_files():
        data = src.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        rows.append([rel, blob, len(data), 0o644])
        sources[blob] = (src, len(data))
    return {"digest": bundle_digest(), "files": rows}, sources


def upload_for(snapshots: Any, snapshot_id: str | None) -> Upload:
    """What a run with ``snapshot_id`` (a workspace ``SnapshotStore`` id) needs on the host."""
    bundle, sources = bundle_rows()
    files: list[list[Any]] = []
    if snapshot_id:
        for e in snapshots.manifest(snapshot_id):
            files.append([e.path, e.blob, e.size, e.mode])
            sources[e.blob] = (snapshots.blob_path(e.blob), e.size)
    return Upload(files=files, bundle=bundle, sources=sources)


# -- artifacts down ---------------------------------------------------------------------------
def _safe_rel(rel: object) -> str | None:
    if (not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/")
            or any(p in ("", ".", "..") for p in rel.split("/"))):
        return None
    return rel


class PullState:
    """What was pulled for one run (persisted), plus the unreachable-since time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STATE_FILE
        self.files: dict[str, list[int]] = {}
        self.unreachable_since: float | None = None
        self.bytes_pulled = 0
        #: The runner was seen gone and a poll after that brought nothing new: all is pulled.
        self.finished = False
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text())
            self.files = {str(k): [int(v[0]), int(v[1])] for k, v in data["files"].items()}
            since = data.get("unreachable_since")
            self.unreachable_since = float(since) if since is not None else None
            self.bytes_pulled = int(data.get("bytes_pulled", 0))
            self.finished = bool(data.get("finished", False))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{STATE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"files": self.files,
                                   "unreachable_since": self.unreachable_since,
                                   "bytes_pulled": self.bytes_pulled,
                                   "finished": self.finished}))
        os.replace(tmp, self.path)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One puller per run at a time (several processes may wait on the same run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / ".remote.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def pull_artifacts(sftp: paramiko.SFTPClient, remote_dir: str, local_dir: Path,
                   listing: list[list[Any]], state: PullState) -> int:
    """Fetch new and changed artifact bytes; returns how many bytes were read."""
    total = 0
    for item in listing:
        rel = _safe_rel(item[0] if item else None)
        if rel is None:
            continue
        size, mtime = int(item[1]), int(item[2])
        seen = state.files.get(rel)
        if seen == [size, mtime]:
            continue
        dest = local_dir / rel
        have = dest.stat().st_size if (seen is not None and dest.is_file()) else 0
        start = min(have, seen[0]) if seen is not None and size > seen[0] else 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            src = sftp.open(f"{remote_dir}/{rel}", "rb")
        except FileNotFoundError:  # moved away since it was listed (outputs at Finalizing)
            continue
        with src:
            if size - start > 4 * READ_CHUNK:
                src.prefetch(size)
            src.seek(start)
            mode = "r+b" if start and dest.exists() else "wb"
            with open(dest, mode) as out:
                out.seek(start)
                left = size - start
                while left > 0:
                    data = src.read(min(left, READ_CHUNK))
                    if not data:
                        break
                    out.write(data)
                    left -= len(data)
                    total += len(data)
                out.truncate()
                got = out.tell()
        state.files[rel] = [got, mtime if got == size else -1]
    state.bytes_pulled += total
    return total


__all__ = ["PullState", "Upload", "is_sha256_hex", "pull_artifacts", "run_lock", "upload_for"]
