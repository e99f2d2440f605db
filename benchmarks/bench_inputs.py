"""Dataset-as-input benchmark on the SSH host of tests/integration/sshhost.py.

A workspace attaches the namespace SSH host; 10,000 small files (1 KiB each) are uploaded to the
workspace's default datastore and registered as a file dataset, passed to runs on the host as
``as_named_input("data").as_mount()``. Measured in the same run:

* preparation of the second run: from ``exp.submit(...)`` to the script's first line (the script
  prints ``time.time()``; host and workspace share the clock) with the input, minus the same for
  the same script without the input, interleaved; median of the paired differences (target:
  under 1 s, nothing transferred). The first run (every file travels) is shown for scale.
* the bytes of data and code sent by the second submit (the blobs the host lacked) and the
  runner's layout time it reports in the driver log.

``run(repeats)`` returns the rows; direct execution prints them.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runyard import Experiment, Run, ScriptRunConfig, Workspace
from runyard.compute.remote.ssh.connection import POOL
from runyard.computetarget import ComputeTarget, RemoteCompute
from runyard.dataset import Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from sshhost import start_host, stop_host  # noqa: E402

FILES = int(os.environ.get("RUNYARD_BENCH_INPUT_FILES", "10000"))
TARGET_SECONDS = 1.0
STARTER = "import time\nprint('START', repr(time.time()), flush=True)\n"
_READY = re.compile(r"inputs ready: .* in ([0-9.]+) s")


def _driver_log(ws: Workspace, run: Run) -> str:
    return (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()


def _start(ws: Workspace, exp: Experiment, src: Path, args: list[Any]) -> tuple[float, Run]:
    t0 = time.time()
    run = exp.submit(ScriptRunConfig(str(src), "starter.py", compute_target="box",
                                     arguments=args))
    details = run.wait_for_completion()
    if details["status"] != "Completed":
        raise RuntimeError(f"bench run failed: {details.get('error')}")
    for line in _driver_log(ws, run).splitlines():
        if line.startswith("START "):
            return float(line.split()[1]) - t0, run
    raise RuntimeError("no START line")


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Measure and return the rows (medians of ``repeats`` pairs)."""
    rows: list[dict[str, Any]] = []
    host = start_host()
    tmp = Path(tempfile.mkdtemp(prefix="runyard-bench-inputs-"))
    old_config = os.environ.get("RUNYARD_CONFIG_HOME")
    os.environ["RUNYARD_CONFIG_HOME"] = str(tmp / "config")
    try:
        ws = Workspace.create("bench-inputs", tmp / "ws")
        ComputeTarget.attach(ws, "box", RemoteCompute.attach_configuration(
            address=host.address, ssh_port=host.port, username=host.username,
            private_key_file=str(host.key_file), known_hosts_file=str(host.known_hosts)))
        data = tmp / "data"
        for i in range(FILES):
            sub = data / f"d{i // 500:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{i:05d}.txt").write_bytes(f"{i}\n".encode().ljust(1024, b"."))
        store = ws.get_default_datastore()
        store.upload(str(data), "many", show_progress=False)
        ds = Dataset.File.from_files((store, "many")).register(ws, "many-files")
        src = tmp / "src"
        src.mkdir()
        (src / "starter.py").write_text(STARTER)
        exp = Experiment(ws, "bench-inputs")
        arg = [ds.as_named_input("data").as_mount()]
        first, first_run = _start(ws, exp, src, arg)
        _start(ws, exp, src, [])  # warm the connection and the no-input path
        withs: list[float] = []
        withouts: list[float] = []
        layouts: list[float] = []
        sent: list[int] = []
        for _ in range(max(1, repeats)):
            t, r = _start(ws, exp, src, arg)
            withs.append(t)
            m = _READY.search(_driver_log(ws, r))
            layouts.append(float(m.group(1)) if m else float("nan"))
            handle = ws.store.get_run(r.id).handle  # type: ignore[union-attr]
            sent.append(int(handle["uploaded_bytes"]) if handle else -1)
            withouts.append(_start(ws, exp, src, [])[0])
        diffs = [a - b for a, b in zip(withs, withouts, strict=True)]
        first_handle = ws.store.get_run(first_run.id).handle  # type: ignore[union-attr]
        rows.append({
            "benchmark": f"SSH: {FILES:,}-file dataset as a mounted input, second run: "
                         "preparation (submit-to-start over the same run without it)",
            "unit": "s", "runyard": statistics.median(diffs),
            "peer_name": "first run (all files sent)", "peer": first - statistics.median(
                withouts),
            "note": f"target < {TARGET_SECONDS:.0f} s; runner layout "
                    f"{statistics.median(layouts):.3f} s; bytes sent by the second submit: "
                    f"{statistics.median(sent):.0f} (first: "
                    f"{int(first_handle['uploaded_bytes']) if first_handle else -1:,}); "
                    f"{host.note}"})
        ws.close()
    finally:
        POOL.close_all()
        stop_host(host)
        if old_config is None:
            os.environ.pop("RUNYARD_CONFIG_HOME", None)
        else:
            os.environ["RUNYARD_CONFIG_HOME"] = old_config
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(3):
        print(row)
