"""Content-addressed snapshots of source directories.

``SnapshotStore(root).take(source_dir)`` stores every file of ``source_dir`` that survives the
ignore rules (``.runyardignore`` over ``.gitignore``, plus default excludes) as blobs named by
their sha256, and a manifest whose sha256 is the snapshot id. Taking an unchanged directory
again gives the same id without re-reading unchanged files (stat cache). Limits on total bytes
and file count raise ``SnapshotTooLarge`` naming the biggest offenders before anything is
written. ``restore`` copies a snapshot into a directory.
"""

from __future__ import annotations

from runyard.snapshots.ignore import GITIGNORE, RUNYARDIGNORE, IgnoreRules
from runyard.snapshots.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES
from runyard.snapshots.manifest import ManifestEntry, SnapshotInfo
from runyard.snapshots.store import SnapshotStore
from runyard.snapshots.walk import collect_files

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "GITIGNORE",
    "RUNYARDIGNORE",
    "IgnoreRules",
    "ManifestEntry",
    "SnapshotInfo",
    "SnapshotStore",
    "collect_files",
]
