"""The append-only run-event spool.

Each writer process owns one stream file ``<spool_dir>/<stream>.jsonl``; every line is one JSON
object with ``seq`` (1, 2, ... per stream), ``ts`` (unix seconds), ``run_id``, ``type`` and the
event payload. The workspace side pulls complete lines by byte offset and ingests them
idempotently: the offset is committed in the same transaction as what the lines carried.

Event types:

``status``    ``{"status": "Running", "cause": "...", "error": {...}?}``
``metrics``   ``{"name": ..., "kind": ..., "steps": [...], "values": [...], "times": [...]}``
``tags``      ``{"tags": {"k": "v" | None}}``
``properties`` ``{"properties": {"k": "v"}}``
``files``     ``{"files": [[artifact_name, size], ...]}``
``child``     ``{"parent_id": "...", "display_name": "..." | None, "tags": {...}}``
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPOOL_SUFFIX = ".jsonl"


class SpoolWriter:
    """Appends events to one stream file; thread safe, one writer process per stream."""

    def __init__(self, spool_dir: str | os.PathLike[str], stream: str, run_id: str) -> None:
        self.path = Path(spool_dir) / f"{stream}{SPOOL_SUFFIX}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self._lock = threading.Lock()
        self._seq = 0
        # O_APPEND: each write lands at the end even if the file was reopened.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def emit(self, type_: str, run_id: str | None = None, **payload: Any) -> None:
        """Append one event (written and visible to readers when this returns)."""
        with self._lock:
            self._seq += 1
            event = {"seq": self._seq, "ts": time.time(), "run_id": run_id or self.run_id,
                     "type": type_, **payload}
            line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
            os.write(self._fd, line.encode())

    def fsync(self) -> None:
        """Force the stream to disk."""
        os.fsync(self._fd)

    def close(self) -> None:
        """Close the stream file."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def list_streams(spool_dir: str | os.PathLike[str]) -> list[str]:
    """Stream names present in a spool folder, runner streams first (see module docs)."""
    try:
        names = [n[: -len(SPOOL_SUFFIX)] for n in os.listdir(spool_dir) if n.endswith(SPOOL_SUFFIX)]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda n: (not n.startswith("runner"), n))


def read_chunk(path: str | os.PathLike[str], offset: int, limit: int = 16 << 20) -> bytes:
    """Return the complete lines of ``path`` from ``offset`` (about ``limit`` bytes; more when
    one line is longer than that)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
            end = data.rfind(b"\n")
            while end < 0 and len(data) >= limit:  # one line longer than the limit
                more = fh.read(limit)
                if not more:
                    break
                data += more
                end = data.rfind(b"\n")
    except FileNotFoundError:
        return b""
    return data[: end + 1] if end >= 0 else b""


def parse_lines(chunk: bytes) -> Iterator[dict[str, Any]]:
    """Decode the events of a chunk of complete lines; a corrupt line is skipped."""
    for line in chunk.splitlines():
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event
