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
_COLUMNS = ("steps", "values", "times")
#: The largest event line a reader takes; a longer line is *elided*: the reader returns the
#: marker line ``ELIDED_PREFIX + b"<length>"`` in its place (its bytes are skipped, never held
#: in memory) and the ingest rejects it. JSON never holds a raw NUL, so no event looks like one.
#: The writer splits a metrics event that would be longer.
MAX_EVENT_BYTES = 8 << 20
ELIDED_PREFIX = b"\x00ELIDED "


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
            data = line.encode()
            if len(data) > MAX_EVENT_BYTES and type_ == "metrics" \
                    and len(payload.get("values") or ()) > 1:
                self._seq -= 1  # too big for a reader: write it as two halves
                half = len(payload["values"]) // 2
                parts = [{k: (v[:half] if k in _COLUMNS else v) for k, v in payload.items()},
                         {k: (v[half:] if k in _COLUMNS else v) for k, v in payload.items()}]
            else:
                os.write(self._fd, data)
                return
        for part in parts:
            self.emit(type_, run_id, **part)

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


def read_chunk(path: str | os.PathLike[str], offset: int, limit: int = 16 << 20,
               max_line: int = MAX_EVENT_BYTES) -> bytes:
    """Return the complete lines of ``path`` from ``offset`` (about ``limit`` bytes; a line
    longer than ``max_line`` comes back elided, see :data:`MAX_EVENT_BYTES`). The bytes the
    chunk stands for are :func:`chunk_span` of it."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
            end = data.rfind(b"\n")
            if end >= 0:
                return _elide_long(data[: end + 1], max_line)
            # one line longer than ``limit``: read on to its end, keeping it only while it
            # stays within the cap
            length, kept = len(data), [data] if len(data) <= max_line else []
            while True:
                more = fh.read(1 << 20)
                if not more:
                    return b""  # still being written
                nl = more.find(b"\n")
                if nl >= 0:
                    length += nl + 1
                    if length <= max_line:
                        return b"".join(kept) + more[: nl + 1]
                    return ELIDED_PREFIX + str(length).encode() + b"\n"
                length += len(more)
                if length <= max_line:
                    kept.append(more)
                else:
                    kept = []
    except FileNotFoundError:
        return b""


def _elide_long(data: bytes, max_line: int) -> bytes:
    if len(data) <= max_line:
        return data
    out: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if len(line) > max_line:
            out.append(ELIDED_PREFIX + str(len(line)).encode() + b"\n")
        else:
            out.append(line)
    return b"".join(out)


def chunk_span(chunk: bytes) -> int:
    """How many bytes of the stream file ``chunk`` stands for (elided lines count whole)."""
    if ELIDED_PREFIX not in chunk:
        return len(chunk)
    span = 0
    for line in chunk.splitlines(keepends=True):
        if line.startswith(ELIDED_PREFIX):
            try:
                span += int(line[len(ELIDED_PREFIX):].strip())
            except ValueError:
                span += len(line)
        else:
            span += len(line)
    return span


def iter_lines(chunk: bytes) -> Iterator[tuple[dict[str, Any] | None, bytes]]:
    """Each non-empty line of a chunk with its decoded event (None when the line is not a JSON
    object; an elided line decodes as ``{"type": "_oversize", "bytes": N}``)."""
    for line in chunk.splitlines():
        if not line:
            continue
        if line.startswith(ELIDED_PREFIX):
            size = line[len(ELIDED_PREFIX):].strip().decode(errors="replace")
            yield {"type": "_oversize", "bytes": size}, line
            continue
        try:
            event = json.loads(line)
        except ValueError:
            yield None, line
            continue
        yield (event if isinstance(event, dict) else None), line


def parse_lines(chunk: bytes) -> Iterator[dict[str, Any]]:
    """Decode the events of a chunk of complete lines; a corrupt or elided line is skipped."""
    for event, _line in iter_lines(chunk):
        if event is not None and event.get("type") != "_oversize":
            yield event
