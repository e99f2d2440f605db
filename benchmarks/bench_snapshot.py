"""Snapshot benchmark: first snapshot throughput and unchanged re-snapshot latency.

Generates a 5,000-file, 200 MiB tree of random bytes (mixed sizes: 4,900 files of 0.5-24 KiB,
90 of 0.3-2 MiB, 10 of several MiB) in a temp directory, then measures, in the same run:

* first snapshot into an empty store (MiB/s), against ``cp -r`` of the same tree on the same
  filesystem (both read 200 MiB from the page cache and create 5,000 files);
* re-snapshot of the unchanged tree (seconds), against the same ``cp -r`` (what copying the
  tree again would cost);
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
from collections.abc import Callable
from functools import partial
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


def _timed(fn: Callable[[], object]) -> float:
    os.sync()  # start every measurement with no dirty data of earlier steps being written back
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _cp(tree: Path, out: Path) -> None:
    subprocess.run(["cp", "-r", str(tree), str(out)], check=True)


def run(repeats: int = 3) -> list[dict[str, Any]]:
    """Run the benchmarks ``repeats`` times each and return rows of medians.

    The tree lives in ``$RUNYARD_BENCH_TMPDIR`` if set, else the default temp directory.
    """
    tmp_parent = os.environ.get("RUNYARD_BENCH_TMPDIR") or None
    with tempfile.TemporaryDirectory(prefix="runyard-bench-snap-", dir=tmp_parent) as tmp:
        base = Path(tmp)
        tree = make_tree(base / "tree")
        mib = TOTAL_BYTES / MIB
        limits: dict[str, Any] = {"max_bytes": 2 * TOTAL_BYTES, "max_files": FILE_COUNT}

        first: list[float] = []
        peer_times: list[float] = []
        store = SnapshotStore(base / "store")
        for i in range(repeats):
            copy = base / "peer-copy"
            peer_times.append(_timed(partial(_cp, tree, copy)))
            shutil.rmtree(copy)
            store_root = base / f"store{i}"
            store = SnapshotStore(store_root)
            first.append(_timed(partial(store.take, tree, **limits)))
            if i < repeats - 1:
                shutil.rmtree(store_root)
        info = store.take(tree, **limits)
        assert info.file_count == FILE_COUNT and info.total_bytes == TOTAL_BYTES

        # Unchanged re-snapshot. The untimed take above also settled the files written too
        # recently to be cached by the first one (see runyard.snapshots.statcache).
        unchanged = [_timed(lambda: store.take(tree, **limits)) for _ in range(repeats)]
        assert store.take(tree, **limits).id == info.id

        edited: list[float] = []
        target = next(tree.glob("pkg00/mod0/*.bin"))
        for i in range(repeats):
            target.write_bytes(os.urandom(4096) + bytes([i]))
            edited.append(_timed(lambda: store.take(tree, **limits)))

    peer_s = statistics.median(peer_times)
    where = tmp_parent or tempfile.gettempdir()
    return [
        {
            "benchmark": "snapshot first (5000 files, 200 MB)",
            "unit": "MB/s",
            "runyard": round(mib / statistics.median(first), 1),
            "peer_name": "cp -r",
            "peer": round(mib / peer_s, 1),
            "higher_is_better": True,
            "note": f"MiB/s in {where}; tree in page cache, empty store; both read the tree "
            "and create 5000 files (runyard also hashes)",
        },
        {
            "benchmark": "snapshot unchanged re-snapshot (5000 files, 200 MB)",
            "unit": "s",
            "runyard": round(statistics.median(unchanged), 4),
            "peer_name": "cp -r",
            "peer": round(peer_s, 4),
            "note": "stat cache: no file is read; peer copies the whole tree again",
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
