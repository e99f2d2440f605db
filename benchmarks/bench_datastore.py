"""Datastore benchmark: upload to an Azure Blob datastore on Azurite (the local emulator).

In one run, against one Azurite started on a loopback port (tests/datastores_support.py):

* upload of a folder of 1,000 files / 500 MB with ``Datastore.upload`` (hashing, one listing,
  16 parallel uploads) against the ``az storage blob upload-batch`` equivalent done with
  ``azure-storage-blob`` directly: ``upload_blob`` of every file from a ``ThreadPoolExecutor``
  with the same worker count; each repeat uploads to a fresh folder, the two interleaved;
  target: runyard's throughput at least 0.8x the direct one;
* re-upload of the unchanged folder (everything skipped by size + sha256); target: < 1 s.

``RUNYARD_BENCH_DS_MB`` and ``RUNYARD_BENCH_DS_FILES`` shrink the folder for a quick run.
``run(repeats)`` returns the rows (medians); direct execution prints them.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from datastores_support import ACCOUNT, KEY, start_azurite  # noqa: E402
from runyard import Workspace  # noqa: E402
from runyard.datastore import Datastore  # noqa: E402
from runyard.datastores.blob import BlobBackend  # noqa: E402


def make_folder(root: Path, files: int, total_mb: int) -> int:
    """``files`` random files totalling about ``total_mb`` MB in 10 sub-folders; the bytes."""
    size = total_mb * 1_000_000 // files
    for i in range(files):
        sub = root / f"part{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    return size * files


def run(repeats: int = 3) -> list[dict[str, Any]]:
    """Measure ``repeats`` times and return rows of medians."""
    files = int(os.environ.get("RUNYARD_BENCH_DS_FILES", "1000"))
    total_mb = int(os.environ.get("RUNYARD_BENCH_DS_MB", "500"))
    workers = BlobBackend.workers
    with tempfile.TemporaryDirectory(prefix="bench-ds-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("RUNYARD_CONFIG_HOME", str(root / "config"))
        az = start_azurite(root / "azurite")
        try:
            nbytes = make_folder(root / "data", files, total_mb)
            ws = Workspace.create("bench", root / "ws")
            ds = Datastore.register_azure_blob_container(
                ws, "bench", "bench", ACCOUNT, account_key=KEY, endpoint=az.url,
                create_if_not_exists=True)
            container = az.service().get_container_client("bench")  # type: ignore[attr-defined]
            pairs = [(p, p.relative_to(root / "data").as_posix())
                     for p in sorted((root / "data").rglob("*.bin"))]

            def direct(prefix: str) -> None:
                def one(item: tuple[Path, str]) -> None:
                    with open(item[0], "rb") as fh:
                        container.upload_blob(f"{prefix}/{item[1]}", fh, overwrite=True)
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(one, pairs))

            ours: list[float] = []
            peer: list[float] = []
            again: list[float] = []
            for r in range(repeats):
                t0 = time.perf_counter()
                direct(f"direct{r}")
                peer.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ds.upload(root / "data", f"ours{r}", show_progress=False)
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                rep = ds.upload(root / "data", f"ours{r}", show_progress=False).report
                again.append(time.perf_counter() - t0)
                assert rep is not None and not rep.transferred
                for prefix in (f"direct{r}", f"ours{r}"):  # keep Azurite's disk use bounded
                    names = [b.name for b in container.list_blobs(name_starts_with=prefix)]
                    for i in range(0, len(names), 256):
                        container.delete_blobs(*names[i:i + 256])
            mb = nbytes / 1e6
            t_ours, t_peer = statistics.median(ours), statistics.median(peer)
            label = f"{files} files / {mb:.0f} MB"
            return [
                {"benchmark": f"datastore upload, {label} (Azurite)", "unit": "MB/s",
                 "runyard": mb / t_ours, "peer_name": f"azure-storage-blob, {workers} threads",
                 "peer": mb / t_peer, "higher_is_better": True,
                 "note": f"median of {repeats}; {t_ours:.2f} s vs {t_peer:.2f} s; "
                         "target >= 0.8x"},
                {"benchmark": f"datastore re-upload unchanged, {label}", "unit": "s",
                 "runyard": statistics.median(again), "peer_name": "target", "peer": 1.0,
                 "note": f"median of {repeats}; all files skipped (size + sha256)"},
            ]
        finally:
            az.stop()


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(row)
