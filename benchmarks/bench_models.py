"""Model-registry benchmark: ``Model.register`` of one large file, first and second time.

Writes one file of random bytes (``RUNYARD_BENCH_MODEL_MB``, default 1024 MiB) in a temp
directory (``$RUNYARD_BENCH_TMPDIR`` if set) and measures, in the same run:

* first registration into a fresh workspace (hash and copy in one pass) against ``cp`` of the
  same file on the same filesystem;
* a second registration of the unchanged file (the stat cache: the file is not read).

``run(repeats)`` returns one row per benchmark with the medians; direct execution prints them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _timed(fn: Callable[[], object]) -> float:
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(repeats: int = 3) -> list[dict[str, Any]]:
    """Run each measurement ``repeats`` times and return rows of medians."""
    from runyard import Workspace  # noqa: PLC0415
    from runyard.model import Model  # noqa: PLC0415

    size_mb = int(os.environ.get("RUNYARD_BENCH_MODEL_MB", "1024"))
    tmp_parent = os.environ.get("RUNYARD_BENCH_TMPDIR") or None
    with tempfile.TemporaryDirectory(prefix="runyard-bench-model-", dir=tmp_parent) as tmp:
        base = Path(tmp)
        model = base / "model.bin"
        with open(model, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(MIB))
        first: list[float] = []
        peer: list[float] = []
        second: list[float] = []
        for i in range(repeats):
            copy = base / "peer.bin"
            peer.append(_timed(lambda c=copy: subprocess.run(["cp", str(model), str(c)],
                                                      check=True)))
            copy.unlink()
            ws = Workspace.create(f"w{i}", base / f"ws{i}")
            with contextlib.redirect_stdout(io.StringIO()):
                first.append(_timed(lambda: Model.register(ws, model, "big")))  # noqa: B023
                second.append(_timed(lambda: Model.register(ws, model, "big")))  # noqa: B023
            assert Model(ws, "big").version == 2
            ws.close()
            shutil.rmtree(base / f"ws{i}")
    where = tmp_parent or tempfile.gettempdir()
    peer_s = statistics.median(peer)
    return [
        {
            "benchmark": f"Model.register first ({size_mb} MiB file)",
            "unit": "s",
            "runyard": round(statistics.median(first), 3),
            "peer_name": "cp",
            "peer": round(peer_s, 3),
            "note": f"in {where}; file in page cache; runyard hashes while copying",
        },
        {
            "benchmark": f"Model.register same bytes again ({size_mb} MiB file)",
            "unit": "s",
            "runyard": round(statistics.median(second), 4),
            "peer_name": "cp",
            "peer": round(peer_s, 3),
            "note": "stat cache: the file is not read, nothing is copied",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
