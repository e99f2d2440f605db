"""MLflow peer: its own virtualenv under ``.bench/mlflow-venv`` and the measurements run in it.

Two halves in one file:

* imported by a benchmark (runyard's interpreter): :func:`ensure_venv` creates the venv and
  installs MLflow 3 into it when absent (``uv venv`` + ``uv pip install``, falling back to
  ``python -m venv`` + pip), :func:`existing_python` finds it without installing, and
  :func:`measure` runs this file inside the venv and returns the JSON it prints;
* run as a script inside the venv: ``python mlflow_peer.py log_batch --values N
  --batch 1000`` logs N scalar values of one metric with ``MlflowClient().log_batch`` into a
  fresh SQLite backend store and prints ``{"seconds": ..., "values": N, "count": ...}``.

Standard library only at import time; MLflow is imported inside the venv alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".bench" / "mlflow-venv"
REQUIREMENT = "mlflow>=3,<4"


def _venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def existing_python(venv: Path = VENV) -> Path | None:
    """The venv's interpreter if MLflow is installed there, else None (never installs)."""
    py = _venv_python(venv)
    if not py.is_file() or not (venv / ".mlflow-installed").is_file():
        return None
    return py


def ensure_venv(venv: Path = VENV, log: Any = sys.stderr) -> Path:
    """Create ``venv`` with MLflow installed (once; minutes) and return its interpreter."""
    py = existing_python(venv)
    if py is not None:
        return py
    print(f"[bench] installing {REQUIREMENT} into {venv} (one time) ...", file=log, flush=True)
    t0 = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", base_python, str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(_venv_python(venv)),
                        REQUIREMENT], check=True)
    else:
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(_venv_python(venv)), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", REQUIREMENT], check=True)
    version = subprocess.run([str(_venv_python(venv)), "-c",
                              "import mlflow; print(mlflow.__version__)"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (venv / ".mlflow-installed").write_text(version + "\n")
    print(f"[bench] installed mlflow {version} in {time.perf_counter() - t0:.0f}s",
          file=log, flush=True)
    return _venv_python(venv)


def installed_version(venv: Path = VENV) -> str | None:
    """The MLflow version recorded at install time."""
    try:
        return (venv / ".mlflow-installed").read_text().strip() or None
    except OSError:
        return None


def measure(python: Path, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run this file with ``python`` (the MLflow venv) and return its JSON output."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")  # the script names its store
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    proc = subprocess.run([str(python), __file__, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"mlflow peer {args[0]} failed ({proc.returncode}): "
                           + " | ".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- inside the MLflow venv -----------------------------------------------------------------
def _log_batch(values: int, batch: int) -> dict[str, Any]:
    import sqlite3  # noqa: PLC0415

    from mlflow.entities import Metric  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="runyard-bench-mlflow-") as tmp:
        db = Path(tmp) / "mlflow.db"
        client = MlflowClient(tracking_uri=f"sqlite:///{db}")
        # Schema creation and run set-up are outside the timed part.
        exp_id = client.create_experiment("bench", artifact_location=Path(tmp).as_uri())
        run_id = client.create_run(exp_id).info.run_id
        base_ts = int(time.time() * 1000)
        t0 = time.perf_counter()
        for start in range(0, values, batch):
            stop = min(start + batch, values)
            client.log_batch(run_id, metrics=[Metric("loss", float(i), base_ts + i, i)
                                              for i in range(start, stop)])
        seconds = time.perf_counter() - t0
        client.set_terminated(run_id)
        with sqlite3.connect(db) as conn:
            count = conn.execute("SELECT count(*) FROM metrics WHERE run_uuid = ? AND "
                                 "key = 'loss'", (run_id,)).fetchone()[0]
    import mlflow  # noqa: PLC0415

    return {"seconds": seconds, "values": values, "batch": batch, "count": count,
            "mlflow": mlflow.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="MLflow peer measurements (run in its venv)")
    parser.add_argument("what", choices=["log_batch"])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    result = _log_batch(args.values, args.batch)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
