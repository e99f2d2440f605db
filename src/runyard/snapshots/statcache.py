"""Per-source-directory stat cache: relative path + stat key -> blob hash.

A file whose ``(size, mtime_ns, ino, ctime_ns)`` is unchanged since it was last hashed is not
read again. The cache lives in one JSON file per source directory (named after the sha256 of the
directory's real path), is written atomically, and is rewritten only when it changed. A missing,
unreadable or malformed cache is treated as empty.

Racy entries: a timestamp only has the resolution of the filesystem clock, so a file changed
right after being hashed, within the same clock tick, could keep the same stat key. A hashed
file whose ``max(mtime, ctime)`` falls within :data:`RACY_WINDOW_NS` of the snapshot's start
(:data:`RACY_WINDOW_COARSE_NS` when the timestamp is a whole second, as on filesystems with
1-2 s resolution) is therefore used but not cached, and is hashed again next time. Any later
change to such a file moves its ctime past the snapshot start, so cached entries stay correct.
Timestamps are assumed to come from the local clock (network filesystems with clock skew may
defeat this).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from runyard.snapshots.atomic import atomic_write_bytes

STATCACHE_VERSION = 1

RACY_WINDOW_NS = 50_000_000
"""Files changed less than this before the snapshot started are not cached (fine clocks)."""

RACY_WINDOW_COARSE_NS = 2_000_000_000
"""The same window for timestamps that are whole seconds (coarse filesystem clocks)."""

CacheRow = list[int | str]
"""``[size, mtime_ns, ino, ctime_ns, blob]`` (as stored in the JSON file)."""


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """The part of a stat result the cache compares."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def cache_row(st: os.stat_result, blob: str) -> CacheRow:
    """The cache row recording that a file with stat ``st`` has content ``blob``."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, blob]


def is_racy(st: os.stat_result, start_ns: int) -> bool:
    """True if ``st`` changed too close to ``start_ns`` (wall clock) for its key to be trusted."""
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    coarse = st.st_mtime_ns % 1_000_000_000 == 0 and st.st_ctime_ns % 1_000_000_000 == 0
    window = RACY_WINDOW_COARSE_NS if coarse else RACY_WINDOW_NS
    return changed >= start_ns - window


class StatCache:
    """The stat cache of one source directory, loaded from and saved to ``path``."""

    def __init__(self, path: Path, rows: dict[str, Any] | None = None) -> None:
        self.path = path
        self._rows: dict[str, Any] = rows if rows is not None else {}

    @classmethod
    def load(cls, path: Path) -> StatCache:
        """Load the cache at ``path``; empty if missing or unusable."""
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(doc, dict) or doc.get("version") != STATCACHE_VERSION:
            return cls(path)
        rows = doc.get("entries")
        return cls(path, rows if isinstance(rows, dict) else {})

    def lookup(self, rel: str, st: os.stat_result) -> str | None:
        """The cached blob of ``rel`` if its stat key is unchanged, else None."""
        row = self._rows.get(rel)
        if row is None:
            return None
        try:
            size, mtime_ns, ino, ctime_ns, blob = row
        except (TypeError, ValueError):
            return None
        if (
            size == st.st_size
            and mtime_ns == st.st_mtime_ns
            and ino == st.st_ino
            and ctime_ns == st.st_ctime_ns
            and type(blob) is str
            and len(blob) == 64
            and blob.isalnum()  # cheap guard against a damaged file (no "/" or "..")
        ):
            return blob
        return None

    def save(self, rows: dict[str, CacheRow], tmp_dir: Path) -> bool:
        """Replace the cache with ``rows`` (written only if different); True if written."""
        if rows == self._rows:
            return False
        doc = {"entries": rows, "version": STATCACHE_VERSION}
        data = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, data, tmp_dir)
            self._rows = rows
            return True
        return False
