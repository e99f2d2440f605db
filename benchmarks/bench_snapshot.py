"""Snapshot benchmark: first snapshot throughput and unchanged re-snapshot latency.

Generates a 5,000-file, 200 MiB tree of random bytes (mixed sizes: 4,900 files of 0.5-24 KiB,
90 of 0.3-2 MiB, 10 of several MiB) in a temp directory, then measures, in the same run:

* first snapshot into an empty store (MiB/s), against ``tar cf`` of the same tree into a file
  on the same filesystem (both read the tree from the page cache and write 200 MiB);
* re-snapshot of the unchanged tree (seconds), against the same ``tar cf`` (what re-archiving
  would cost);
* re-snapshot after editing one file (seconds).

``run(repeats)`` returns one row per benchmark with the medians; ``python -m`` / direct
execution prints them.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from runyard.snapshots import SnapshotStore

FILE_COUNT = 5000
TOTAL_BYTES = 200 * 1024 * 1024
MIB = 1024 * 1024


def _sizes(rng: random.Random) -> list[int]:
    small = [rng.randint(512, 24 * 1024) for _ in range(4900)]
    medium = [rng.randint(300 * 1024, 2 * MIB) for _ in range(90)]
    rest = TOTAL_BYTES - sum(small) - sum(medium)
    large = [rest // 10] * 10
    large[-1] += rest - sum(large)
    sizes = small + medium + large
    rng.shuffle(sizes)
    assert len(sizes) == FILE_COUNT and sum(sizes) == TOTAL_BYTES
    return sizes


def make_tree(root: Path, seed: int = 42) -> Path:
    """Write the 5,000-file, 200 MiB benchmark tree under ``root`` and return it."""
    rng = random.Random(seed)
    for i, size in enumerate(_sizes(rng)):
        d = root / f"pkg{i % 50:02d}" / f"mod{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.bin").write_bytes(os.urandom(size))
    return root


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _tar(tree: Path, out: Path) -> None:
    subprocess.run(["tar", "cf", str(out), "-C", str(tree), "."], check=True)


def run(repeats: int = 3) -> list[dict[str, Any]]:
    """Run the benchmarks ``repeats`` times each and return rows of medians."""
    with tempfile.TemporaryDirectory(prefix="runyard-bench-snap-") as tmp:
        base = Path(tmp)
        tree = make_tree(base / "tree")
        tar_out = base / "peer.tar"
        mib = TOTAL_BYTES / MIB

        first: list[float] = []
        tar_times: list[float] = []
        store = SnapshotStore(base / "store")
        for i in range(repeats):
            tar_times.append(_timed(lambda: _tar(tree, tar_out)))
            tar_out.unlink()
            store_root = base / f"store{i}"
            store = SnapshotStore(store_root)
            info = None

            def take(s: SnapshotStore = store) -> None:
                nonlocal info
                info = s.take(tree, max_bytes=TOTAL_BYTES, max_files=FILE_COUNT)

            first.append(_timed(take))
            assert info is not None and info.file_count == FILE_COUNT
            if i < repeats - 1:
                shutil.rmtree(store_root)

        # Unchanged re-snapshot: one untimed take settles files that were written too recently
        # to be cached (see runyard.snapshots.statcache), then time the steady state.
        limits: dict[str, Any] = {"max_bytes": TOTAL_BYTES, "max_files": FILE_COUNT}
        store.take(tree, **limits)
        unchanged = [_timed(lambda: store.take(tree, **limits)) for _ in range(repeats)]

        edited: list[float] = []
        target = next(tree.glob("pkg00/mod0/*.bin"))
        for i in range(repeats):
            target.write_bytes(os.urandom(4096) + bytes([i]))
            edited.append(_timed(lambda: store.take(tree, **limits)))

    tar_s = statistics.median(tar_times)
    return [
        {
            "benchmark": "snapshot first (5000 files, 200 MB)",
            "unit": "MB/s",
            "runyard": round(mib / statistics.median(first), 1),
            "peer_name": "tar cf",
            "peer": round(mib / tar_s, 1),
            "note": "MiB/s, tree in page cache, empty store; tar writes a 200 MiB archive "
            "file on the same filesystem, runyard hashes and writes 5000 blobs",
        },
        {
            "benchmark": "snapshot unchanged re-snapshot (5000 files, 200 MB)",
            "unit": "s",
            "runyard": round(statistics.median(unchanged), 4),
            "peer_name": "tar cf",
            "peer": round(tar_s, 4),
            "note": "stat cache: no file is read; peer is re-archiving the whole tree",
        },
        {
            "benchmark": "snapshot after editing 1 file (5000 files, 200 MB)",
            "unit": "s",
            "runyard": round(statistics.median(edited), 4),
            "peer_name": None,
            "peer": None,
            "note": "one 4 KiB file rewritten between snapshots; only it is re-read",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
