"""Environment benchmark: cache-hit overhead, first build vs uv and pip, one build for ten runs.

Measured in the same run, on the local target of a temporary workspace:

* **cache hit**: a run whose system-managed environment (``six``) is already built, against
  the same script run with no environment at all. The added cost is the gap between the
  runner's ``Preparing`` and ``Starting`` events (both stamped by the runner), and the whole
  submit-to-Completed time. Target: under 50 ms added.
* **first build** of a spec with scikit-learn and pandas (the run's Preparing -> Starting
  gap, i.e. what the run waits for), against ``uv venv`` + ``uv pip install`` of the same
  packages into a fresh venv, and against ``python -m venv`` + ``pip install`` (the everyday
  peer). Every installer runs with its download cache warm (each is primed once before the
  measurements), so the numbers compare installers, not the network. Target: at most 1.2x
  uv. The pip peer runs ``min(repeats, 2)`` times (it takes tens of seconds).
* **ten runs submitted at once** with the same new spec: how many builds happened (each run
  records ``environment_build`` = built / waited / cached). Target: exactly one.

``PYTHONDONTWRITEBYTECODE`` is removed for the runs (as on a user's machine, the runner then
imports runyard from cached bytecode).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from runyard import Environment, Experiment, Run, ScriptRunConfig, Workspace
from runyard.environments import CondaDependencies, local_cache_dir
from runyard.runtime.envbuild import prune_cache

HEAVY = ["scikit-learn", "pandas"]


def _env(name: str, *packages: str) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(packages))
    return env


def _events(run: Run) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in run.get_events():
        out.setdefault(e["status"], e["time"])
    return out


def _run_once(ws: Workspace, src: Path, env: Environment | None) -> tuple[float, float, Run]:
    """(Preparing -> Starting seconds, Queued -> Completed seconds, run)."""
    cfg = ScriptRunConfig(src, "train.py", environment=env)
    run = Experiment(ws, "bench-env").submit(cfg)
    run.wait_for_completion(timeout=900)
    ev = _events(run)
    return ev["Starting"] - ev["Preparing"], ev["Completed"] - ev["Queued"], run


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def _uv_fresh_venv(uv: str, folder: Path) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([uv, "venv", "--python", sys.executable, str(folder)], check=True,
                   capture_output=True)
    subprocess.run([uv, "pip", "install", "--python", str(folder / "bin" / "python"), *HEAVY],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def _pip_fresh_venv(folder: Path) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", *HEAVY], check=True, capture_output=True)
    return time.perf_counter() - t0


def _ten_at_once(root: Path, src: Path) -> tuple[list[str], float]:
    ws = Workspace.create("bench-ten", root / "ten", max_concurrent_runs=10)
    env = _env("ten", "tabulate", "tomli")
    runs: list[Run] = []
    lock = threading.Lock()

    def go() -> None:
        r = Experiment(ws, "bench-ten").submit(ScriptRunConfig(src, "train.py",
                                                               environment=env))
        with lock:
            runs.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in runs:
        r.wait_for_completion(timeout=900)
    wall = time.perf_counter() - t0
    outcomes = [r.get_properties().get("environment_build", "?") for r in runs]
    ws.close()
    return outcomes, wall


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Benchmark rows (see module docs)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    uv = shutil.which("uv")
    root = Path(tempfile.mkdtemp(prefix="runyard-bench-env-"))
    rows: list[dict[str, Any]] = []
    try:
        src = root / "project"
        src.mkdir()
        (src / "train.py").write_text("from runyard import Run\nRun.get_context().log('x', 1)\n")
        ws = Workspace.create("bench-env", root / "ws", max_concurrent_runs=2)

        # -- cache hit ----------------------------------------------------------------------
        small = _env("small", "six")
        _run_once(ws, src, small)  # build it
        _run_once(ws, src, None)  # warm the plain path too
        hit_gap, hit_total, plain_gap, plain_total = [], [], [], []
        for _ in range(max(repeats, 3)):
            g, tot, r = _run_once(ws, src, small)
            assert r.get_properties()["environment_build"] == "cached"
            hit_gap.append(g)
            hit_total.append(tot)
            g, tot, _r = _run_once(ws, src, None)
            plain_gap.append(g)
            plain_total.append(tot)
        added = (statistics.median(hit_gap) - statistics.median(plain_gap)) * 1000
        rows.append({"benchmark": "env cache hit: Preparing->Starting", "unit": "ms",
                     "runyard": statistics.median(hit_gap) * 1000,
                     "peer_name": "same run, no environment",
                     "peer": statistics.median(plain_gap) * 1000,
                     "note": f"adds {added:.1f} ms (target < 50 ms)"})
        rows.append({"benchmark": "env cache hit: submit->Completed", "unit": "s",
                     "runyard": statistics.median(hit_total),
                     "peer_name": "same run, no environment",
                     "peer": statistics.median(plain_total),
                     "note": f"adds {(statistics.median(hit_total) - statistics.median(plain_total)) * 1000:.0f} ms"})  # noqa: E501

        # -- first build: scikit-learn + pandas ---------------------------------------------
        if uv is None:
            rows.append({"benchmark": "env first build (scikit-learn, pandas)", "unit": "s",
                         "runyard": None, "note": "uv not on PATH: peer not measured"})
        else:
            heavy = _env("heavy", *HEAVY)
            _uv_fresh_venv(uv, root / "uv-prime")  # prime uv's cache
            builds, uv_times = [], []
            for i in range(repeats):
                prune_cache(local_cache_dir(ws), 0)
                g, _tot, r = _run_once(ws, src, heavy)
                assert r.get_properties()["environment_build"] == "built"
                builds.append(g)
                uv_times.append(_uv_fresh_venv(uv, root / f"uv-{i}"))
            b, u = statistics.median(builds), statistics.median(uv_times)
            rows.append({"benchmark": "env first build (scikit-learn, pandas)", "unit": "s",
                         "runyard": b, "peer_name": "uv venv + uv pip install", "peer": u,
                         "note": f"{b / u:.2f}x uv (target <= 1.2x); warm uv cache"})
            _pip_fresh_venv(root / "pip-prime")  # prime pip's cache
            pip_times = [_pip_fresh_venv(root / f"pip-{i}") for i in range(min(repeats, 2))]
            p = statistics.median(pip_times)
            rows.append({"benchmark": "env first build (scikit-learn, pandas)", "unit": "s",
                         "runyard": b, "peer_name": "python -m venv + pip install", "peer": p,
                         "note": f"warm pip cache; {len(pip_times)} runs"})
        ws.close()

        # -- ten runs at once -----------------------------------------------------------------
        outcomes, wall = _ten_at_once(root, src)
        rows.append({"benchmark": "10 runs at once, same new spec: builds", "unit": "builds",
                     "runyard": outcomes.count("built"),
                     "peer_name": "one build per run", "peer": 10,
                     "note": f"outcomes: {outcomes.count('waited')} waited, "
                             f"{outcomes.count('cached')} cached (target: exactly 1 build)"})
        rows.append({"benchmark": "10 runs at once, same new spec: wall", "unit": "s",
                     "runyard": wall, "peer_name": None, "peer": None,
                     "note": "submit of all 10 -> all Completed (max_concurrent_runs=10)"})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        print(row)
