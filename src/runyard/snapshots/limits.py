"""Snapshot size limits and the error that names the biggest offenders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from runyard.errors import InvalidParameter, SnapshotTooLarge
from runyard.snapshots.ignore import RUNYARDIGNORE

DEFAULT_MAX_BYTES = 300 * 1024 * 1024
"""Default limit on the total size of a snapshot (300 MiB)."""

DEFAULT_MAX_FILES = 2000
"""Default limit on the number of files of a snapshot."""

TOP_N = 5
"""How many of the largest files and top-level directories the error lists."""


def format_bytes(n: int) -> str:
    """Human-readable size in binary units (``"1.5 MiB"``)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _files(n: int) -> str:
    return f"{n:,} file" if n == 1 else f"{n:,} files"


def validate_limits(max_bytes: int, max_files: int) -> None:
    """InvalidParameter if a limit is negative or not an integer."""
    for field, value in (("snapshot_max_bytes", max_bytes), ("snapshot_max_files", max_files)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidParameter(field, f"must be a non-negative integer, got {value!r}")


def check_limits(
    source_dir: str,
    files: Sequence[tuple[str, os.stat_result]],
    *,
    max_bytes: int,
    max_files: int,
) -> tuple[int, int]:
    """Return ``(file_count, total_bytes)``; SnapshotTooLarge if over a limit.

    The error's message states the totals, the limits, the largest files and the largest
    top-level directories (size and file count) and how to fix it; ``details`` carries the
    same data.
    """
    count = len(files)
    total = sum(st.st_size for _, st in files)
    if total <= max_bytes and count <= max_files:
        return count, total
    raise _too_large(source_dir, files, count, total, max_bytes, max_files)


def _too_large(
    source_dir: str,
    files: Sequence[tuple[str, os.stat_result]],
    count: int,
    total: int,
    max_bytes: int,
    max_files: int,
) -> SnapshotTooLarge:
    over_bytes = total > max_bytes
    dirs: dict[str, list[int]] = {}
    for rel, st in files:
        top, sep, _ = rel.partition("/")
        if sep:
            acc = dirs.setdefault(top, [0, 0])
            acc[0] += st.st_size
            acc[1] += 1
    biggest_files = sorted(files, key=lambda f: (-f[1].st_size, f[0]))[:TOP_N]
    # Rank directories by what is over: bytes if the size limit is exceeded, else file count.
    rank = 0 if over_bytes else 1
    biggest_dirs = sorted(dirs.items(), key=lambda d: (-d[1][rank], d[0]))[:TOP_N]

    problems = []
    if over_bytes:
        shown, limit = format_bytes(total), format_bytes(max_bytes)
        if shown == limit:  # too close to tell apart once rounded
            shown, limit = f"{total:,} bytes", f"{max_bytes:,} bytes"
        problems.append(f"{shown} over the limit of {limit}")
    if count > max_files:
        problems.append(f"{count:,} files over the limit of {max_files:,}")
    parts = [
        f"{source_dir} is too large to snapshot: {' and '.join(problems)} "
        f"({_files(count)}, {format_bytes(total)} after ignore rules)."
    ]
    if biggest_files:
        listed = ", ".join(f"{rel} ({format_bytes(st.st_size)})" for rel, st in biggest_files)
        parts.append(f"Largest files: {listed}.")
    if biggest_dirs:
        listed = ", ".join(
            f"{name}/ ({format_bytes(size)}, {_files(n)})" for name, (size, n) in biggest_dirs
        )
        parts.append(f"Largest top-level directories: {listed}.")
    parts.append(
        f"Add them to {RUNYARDIGNORE}, or raise the limit with "
        "snapshot_max_bytes / snapshot_max_files."
    )
    details: dict[str, Any] = {
        "source_directory": source_dir,
        "file_count": count,
        "total_bytes": total,
        "max_files": max_files,
        "max_bytes": max_bytes,
        "largest_files": [{"path": rel, "bytes": st.st_size} for rel, st in biggest_files],
        "largest_directories": [
            {"path": name, "bytes": size, "files": n} for name, (size, n) in biggest_dirs
        ],
    }
    return SnapshotTooLarge("source_directory", " ".join(parts), details=details)
