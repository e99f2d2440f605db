"""Disk benchmark: what ten local runs of an unchanged 250 MiB source folder leave on disk.

Makes a 250 MiB source folder of random (incompressible) bytes in 300 files, creates a
workspace next to it, submits 10 local runs of a script that reads the folder, one after the
other, and measures the workspace folder (``.runyard``: snapshot store, run folders, database,
runtime bundle) like ``du`` does (allocated blocks) and like ``du --apparent-size`` (file
sizes), a hard-linked inode counted once. The peer is one copy of the source folder; the
ratio must stay under 1.2 (before issue 11 each run kept its own copy: about 11x).

Also reports the largest run-folder total seen while the runs went (each running run has
a private working copy, removed when it ends). Not a timing benchmark: repeats do not apply.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from runyard import Experiment, ScriptRunConfig, Workspace

TOTAL_BYTES = 250 * 1024 * 1024
FILE_COUNT = 300
RUNS = 10
MIB = 1024 * 1024

SCRIPT = """\
from pathlib import Path
total = sum(len(p.read_bytes()) for p in Path("data").rglob("*.bin"))
print("read", total, "bytes")
"""


def disk_usage(path: Path) -> tuple[int, int]:
    """``(apparent, allocated)`` bytes under ``path`` as GNU ``du`` reports them (a hard-linked
    inode counted once); the tool itself, so that runyard's before and after measure alike."""
    if not path.exists():
        return 0, 0
    sizes = []
    for extra in (["--apparent-size"], []):
        out = subprocess.run(["du", "-s", "--block-size=1", *extra, str(path)],
                             capture_output=True, text=True, check=True).stdout
        sizes.append(int(out.split()[0]))
    return sizes[0], sizes[1]


def make_source(root: Path) -> Path:
    """The 250 MiB, 300-file folder of random bytes, plus the script."""
    each = TOTAL_BYTES // FILE_COUNT
    for i in range(FILE_COUNT):
        path = root / "data" / f"part{i % 10}" / f"blob{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(each if i else each + TOTAL_BYTES - each * FILE_COUNT))
    (root / "train.py").write_text(textwrap.dedent(SCRIPT))
    return root


def measure(base: Path, runs: int = RUNS) -> dict[str, Any]:
    """Run the scenario under ``base``; returns the sizes in bytes."""
    src = make_source(base / "project")
    one_apparent, one_allocated = disk_usage(src)
    ws = Workspace.create("bench-disk", base / "ws")
    peak_runs = 0
    try:
        exp = Experiment(ws, "disk")
        for _ in range(runs):
            run = exp.submit(ScriptRunConfig(src, "train.py"))
            details = run.wait_for_completion(raise_on_error=False)
            if details["status"] != "Completed":
                raise RuntimeError(f"run {run.id} ended {details['status']}: "
                                   f"{details.get('error')}")
            peak_runs = max(peak_runs, disk_usage(ws.data_dir / "runs")[1])
        apparent, allocated = disk_usage(ws.data_dir)
        probe = getattr(ws.snapshots, "reflinks", None)  # absent before issue 11
        reflinks = probe(ws.data_dir) if probe is not None else False
    finally:
        ws.close()
    return {"one_apparent": one_apparent, "one_allocated": one_allocated,
            "apparent": apparent, "allocated": allocated, "peak_runs": peak_runs,
            "reflinks": reflinks}


def run(repeats: int = 1) -> list[dict[str, Any]]:
    """One measurement (sizes do not vary between repeats); the temp tree lives in
    ``$RUNYARD_BENCH_TMPDIR`` if set."""
    tmp_parent = os.environ.get("RUNYARD_BENCH_TMPDIR") or None
    with tempfile.TemporaryDirectory(prefix="runyard-bench-disk-", dir=tmp_parent) as tmp:
        m = measure(Path(tmp))
    how = {True: "reflinks", False: "private copies, removed at the end",
           None: "no restore"}[m["reflinks"]]
    return [
        {
            "benchmark": f"disk: .runyard after {RUNS} runs of 250 MiB (du)",
            "unit": "MiB",
            "runyard": round(m["allocated"] / MIB, 1),
            "peer_name": "one copy (du)",
            "peer": round(m["one_allocated"] / MIB, 1),
            "note": f"ratio must be < 1.2; working copies: {how}",
        },
        {
            "benchmark": f"disk: .runyard after {RUNS} runs of 250 MiB (apparent)",
            "unit": "MiB",
            "runyard": round(m["apparent"] / MIB, 1),
            "peer_name": "one copy (apparent)",
            "peer": round(m["one_apparent"] / MIB, 1),
            "note": "du --apparent-size; hard-linked inodes counted once",
        },
        {
            "benchmark": "disk: run folders, largest total seen between runs (du)",
            "unit": "MiB",
            "runyard": round(m["peak_runs"] / MIB, 1),
            "peer_name": "one copy (du)",
            "peer": round(m["one_allocated"] / MIB, 1),
            "note": "outputs and logs only once a run ended",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
