"""Snapshot manifests: the entries, their canonical encoding, and the snapshot id.

The canonical manifest is compact JSON with sorted keys and ASCII escapes::

    {"files":[["src/train.py","<sha256>",1234,420],...],"version":1}

with ``files`` sorted by path; the snapshot id is the hex sha256 of those bytes. The same tree
(paths, contents, executable bits) always gives the same id, on any machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MANIFEST_VERSION = 1
"""Version of the canonical manifest format (part of the hashed bytes)."""

MODE_EXECUTABLE = 0o755
"""Mode recorded for files with any executable bit."""

MODE_REGULAR = 0o644
"""Mode recorded for other files."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: object) -> bool:
    """True if ``value`` is a lowercase 64-character hex string (a blob or snapshot id)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def mode_of(st_mode: int) -> int:
    """Map a ``st_mode`` to the recorded mode: 0o755 if any executable bit is set, else 0o644."""
    return MODE_EXECUTABLE if st_mode & 0o111 else MODE_REGULAR


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a snapshot."""

    path: str
    """Relative ``/``-separated path."""
    blob: str
    """Hex sha256 of the content."""
    size: int
    """Size in bytes."""
    mode: int
    """0o755 or 0o644."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What :meth:`SnapshotStore.take` produced."""

    id: str
    """Hex sha256 of the canonical manifest."""
    file_count: int
    total_bytes: int
    new_blobs: int
    """Blobs this call had to write into the store."""
    new_bytes: int
    """Bytes of those blobs."""


ManifestRow = tuple[str, str, int, int]
"""``(path, blob, size, mode)``: a manifest entry as a plain tuple."""


def encode_manifest(entries: Sequence[ManifestEntry]) -> bytes:
    """Return the canonical manifest bytes of ``entries`` (sorted by path here)."""
    return encode_manifest_rows([(e.path, e.blob, e.size, e.mode) for e in entries])


def encode_manifest_rows(rows: Sequence[ManifestRow]) -> bytes:
    """:func:`encode_manifest` for ``(path, blob, size, mode)`` tuples (sorted by path here)."""
    doc = {"files": sorted(rows), "version": MANIFEST_VERSION}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode("ascii")


def manifest_id(data: bytes) -> str:
    """The snapshot id of canonical manifest bytes."""
    return hashlib.sha256(data).hexdigest()


def _valid_path(path: object) -> bool:
    if not isinstance(path, str) or not path or "\0" in path or path.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def decode_manifest(data: bytes) -> list[ManifestEntry]:
    """Parse manifest bytes; ValueError if they are not a valid manifest.

    Paths are checked to be relative and free of ``..`` so that a restore cannot write outside
    its destination.
    """
    doc: Any = json.loads(data)
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
        raise ValueError("not a runyard snapshot manifest (version 1)")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ValueError("manifest has no file list")
    out: list[ManifestEntry] = []
    for item in files:
        if not (isinstance(item, list) and len(item) == 4):
            raise ValueError(f"bad manifest entry {item!r}")
        path, blob, size, mode = item
        if not _valid_path(path):
            raise ValueError(f"bad path in manifest: {path!r}")
        if not is_sha256_hex(blob):
            raise ValueError(f"bad blob id in manifest: {blob!r}")
        if type(size) is not int or size < 0 or mode not in (MODE_EXECUTABLE, MODE_REGULAR):
            raise ValueError(f"bad size or mode in manifest entry for {path!r}")
        out.append(ManifestEntry(path=path, blob=blob, size=size, mode=mode))
    return out
