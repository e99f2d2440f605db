"""Import benchmark: what ``import runyard`` and ``Run.get_context()`` cost a fresh process.

Each measurement is the wall clock of a fresh ``python -c CODE`` subprocess (no
``-X importtime``), interleaved with ``python -c "pass"`` runs of the same interpreter; the net
cost is the median of the CODE runs minus the median of the bare-interpreter runs. Rows:

* ``import runyard`` (net; target < 150 ms), against ``import mlflow`` run with the
  interpreter of the MLflow venv that ``bench_metrics`` installs (``.bench/mlflow-venv``;
  the peer is left empty when that venv does not exist yet: this module never installs it);
* the same, raw wall clock;
* ``from runyard import Run; Run.get_context()`` outside a run (an ``OfflineRun``) and inside
  one (the environment of a submitted script: a ``LiveRun`` with its spool writer and flush
  thread).

``run(repeats)`` returns the rows; direct execution prints them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import mlflow_peer  # noqa: E402

TARGET_MS = 150.0
CONTEXT = "from runyard import Run; Run.get_context()"


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RUNYARD_", "AZUREML_")) and k != "PYTHONPROFILEIMPORTTIME"}
    env.update(extra or {})
    return env


def _wall(argv: list[str], env: dict[str, str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000.0


def _measure(python: str, snippets: dict[str, tuple[str, dict[str, str]]], rounds: int,
             cwd: str) -> dict[str, list[float]]:
    """Wall-clock ms of each snippet (and of ``pass``), interleaved round by round."""
    cases = {"pass": ("pass", _clean_env()), **snippets}
    for code, env in cases.values():  # warm-up: page cache, .pyc files
        _wall([python, "-c", code], env, cwd)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (code, env) in cases.items():
            times[name].append(_wall([python, "-c", code], env, cwd))
    return times


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Measure ``10 * repeats`` fresh processes per case; return rows of medians (ms)."""
    rounds = max(5, 10 * repeats)
    with tempfile.TemporaryDirectory(prefix="runyard-bench-import-") as tmp:
        live_env = _clean_env({"RUNYARD_RUN_ID": "bench_1_00000000",
                               "RUNYARD_SPOOL_DIR": str(Path(tmp) / "spool"),
                               "RUNYARD_ARTIFACTS_DIR": str(Path(tmp) / "artifacts")})
        ours = _measure(sys.executable, {
            "import": ("import runyard", _clean_env()),
            "offline": (CONTEXT, _clean_env()),
            "live": (CONTEXT, live_env),
        }, rounds, tmp)

        mlflow_py = mlflow_peer.existing_python()
        peer: dict[str, list[float]] | None = None
        if mlflow_py is not None:
            env = _clean_env({"GIT_PYTHON_REFRESH": "quiet"})
            env.pop("PYTHONPATH", None)
            env.pop("VIRTUAL_ENV", None)
            peer = _measure(str(mlflow_py), {"import": ("import mlflow", env)},
                            max(3, repeats), tmp)

    med = {k: statistics.median(v) for k, v in ours.items()}
    net = {k: v - med["pass"] for k, v in med.items()}
    peer_raw = peer_net = None
    peer_note = ("MLflow venv .bench/mlflow-venv not installed yet (bench_metrics installs it)"
                 if peer is None else f"mlflow {mlflow_peer.installed_version()} from its venv")
    if peer is not None:
        peer_raw = statistics.median(peer["import"])
        peer_net = peer_raw - statistics.median(peer["pass"])
    peer_name = "import mlflow" if peer is not None else None
    ok = "meets" if net["import"] < TARGET_MS else "MISSES"
    return [
        {
            "benchmark": "import runyard (net of interpreter start)",
            "unit": "ms",
            "runyard": round(net["import"], 1),
            "peer_name": peer_name,
            "peer": None if peer_net is None else round(peer_net, 1),
            "note": f"{ok} target < {TARGET_MS:.0f} ms; median of {rounds} fresh processes "
            f"minus `python -c pass` ({med['pass']:.1f} ms); {peer_note}",
        },
        {
            "benchmark": "import runyard (raw wall clock)",
            "unit": "ms",
            "runyard": round(med["import"], 1),
            "peer_name": peer_name,
            "peer": None if peer_raw is None else round(peer_raw, 1),
            "note": "fresh `python -c 'import runyard'` incl. interpreter start",
        },
        {
            "benchmark": "Run.get_context() offline (net, incl. import)",
            "unit": "ms",
            "runyard": round(net["offline"], 1),
            "peer_name": None,
            "peer": None,
            "note": f"`{CONTEXT}` outside a run (OfflineRun); raw {med['offline']:.1f} ms",
        },
        {
            "benchmark": "Run.get_context() live (net, incl. import)",
            "unit": "ms",
            "runyard": round(net["live"], 1),
            "peer_name": None,
            "peer": None,
            "note": "with a submitted script's RUNYARD_* environment (LiveRun, spool writer, "
            f"flush thread, atexit flush); raw {med['live']:.1f} ms",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
