"""Metrics benchmark: 1,000,000 scalar values from a submitted script into the workspace DB.

A script on the local target runs ``for i in range(1_000_000): run.log("loss", float(i))``,
then ``run.flush()``, and logs its own elapsed time as the metric ``_log_seconds``. Measured,
each repeat in a fresh embedded (SQLite) workspace:

* end to end: from before ``exp.submit`` until ``run.wait_for_completion()`` returns with all
  values in SQLite (the row count is checked afterwards, untimed), in values/s (target
  >= 200,000/s), against MLflow 3 ``MlflowClient().log_batch`` into a SQLite backend store in
  batches of 1000 (its per-call limit), run in its own venv ``.bench/mlflow-venv`` (installed
  by ``benchmarks/peers/mlflow_peer.py`` when absent). MLflow logs 100,000 values (100 batches)
  instead of 1,000,000 to keep the run short; the rates are comparable;
* the breakdown of the end-to-end time: the script's own logging time (``_log_seconds``), the
  script phase (Running -> Finalizing events, recorded by the runner) and the ingest tail
  (from the script's exit until ``wait_for_completion`` returns);
* ingest alone: the same script, but ``wait_for_completion`` is first called after the runner
  has exited, so it times only reading the spool and writing 1,000,000 rows;
* one ``run.get_metrics()`` read of the 1,000,000 values.

``run(repeats)`` returns the rows; direct execution prints them.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import mlflow_peer  # noqa: E402

from runyard import Experiment, ScriptRunConfig, Workspace, settings  # noqa: E402

N_VALUES = 1_000_000
MLFLOW_VALUES = 100_000
MLFLOW_BATCH = 1000
TARGET_RATE = 200_000

SCRIPT = f"""\
import time

from runyard import Run

run = Run.get_context()
t0 = time.perf_counter()
for i in range({N_VALUES}):
    run.log("loss", float(i))
run.flush()
run.log("_log_seconds", time.perf_counter() - t0)
"""


def _count_rows(ws: Workspace, run_id: str) -> int:
    with sqlite3.connect(ws.data_dir / settings.DB_FILE_NAME) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM metrics JOIN metric_series s ON s.id = metrics.series_id "
            "WHERE s.run_id = ? AND s.name = ?", (run_id, "loss")).fetchone()[0])


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return True
    return data[data.rfind(b")") + 2:].split()[0] in (b"Z", b"X")


def _one(base: Path, src: Path, i: int, ingest_only: bool) -> dict[str, float]:
    """One run in a fresh workspace; returns its timings (seconds)."""
    root = base / f"ws{i}{'-ingest' if ingest_only else ''}"
    ws = Workspace.create("bench", path=root)
    exp = Experiment(ws, "bench")
    try:
        t0 = time.perf_counter()
        run = exp.submit(ScriptRunConfig(source_directory=str(src), script="train.py"))
        out: dict[str, float] = {}
        if ingest_only:
            pid = int(run._record.handle["pid"])
            while not _gone(pid):
                time.sleep(0.01)
            out["script_done"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            run.wait_for_completion()
            out["ingest"] = time.perf_counter() - t1
        else:
            run.wait_for_completion()
            out["e2e"] = time.perf_counter() - t0
            ended = time.time()
            events = {e["status"]: e["time"] for e in run.get_events()}
            out["script_phase"] = events["Finalizing"] - events["Running"]
            out["tail"] = ended - events["Finalizing"]
        status = run.get_status()
        if status != "Completed":
            raise RuntimeError(f"benchmark run {run.id} ended {status}")
        count = _count_rows(ws, run.id)
        if count != N_VALUES:
            raise RuntimeError(f"run {run.id}: {count} 'loss' rows in SQLite, not {N_VALUES}")
        out["log_seconds"] = float(run.get_metrics("_log_seconds")["_log_seconds"])
        if i == 0 and not ingest_only:
            t2 = time.perf_counter()
            values = run.get_metrics()["loss"]
            out["get_metrics"] = time.perf_counter() - t2
            if len(values) != N_VALUES:
                raise RuntimeError(f"get_metrics returned {len(values)} values")
        return out
    finally:
        ws.close()
        shutil.rmtree(root, ignore_errors=True)


def _mlflow(repeats: int) -> tuple[list[float], str]:
    py = mlflow_peer.ensure_venv()
    rates = []
    for _ in range(repeats):
        res = mlflow_peer.measure(py, "log_batch", "--values", str(MLFLOW_VALUES),
                                  "--batch", str(MLFLOW_BATCH))
        if res["count"] != MLFLOW_VALUES:
            raise RuntimeError(f"mlflow stored {res['count']} values, not {MLFLOW_VALUES}")
        rates.append(MLFLOW_VALUES / res["seconds"])
    return rates, str(res.get("mlflow"))


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """``repeats`` end-to-end runs, ``repeats`` ingest-only runs, ``repeats`` MLflow runs."""
    mlflow_rates, mlflow_version = _mlflow(repeats)  # installs the venv first if needed
    with tempfile.TemporaryDirectory(prefix="runyard-bench-metrics-") as tmp:
        base = Path(tmp)
        src = base / "src"
        src.mkdir()
        (src / "train.py").write_text(SCRIPT)
        e2e, ingest = [], []
        for i in range(repeats):  # interleaved so that drift hits both alike
            e2e.append(_one(base, src, i, ingest_only=False))
            ingest.append(_one(base, src, i, ingest_only=True))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    e2e_s = med(e2e, "e2e")
    rate = N_VALUES / e2e_s
    ok = "meets" if rate >= TARGET_RATE else "MISSES"
    log_s = med(e2e, "log_seconds")
    mlflow = statistics.median(mlflow_rates)
    return [
        {
            "benchmark": "log 1M scalars end to end (submit -> all in SQLite)",
            "unit": "values/s",
            "runyard": round(rate),
            "peer_name": f"MLflow {mlflow_version} log_batch",
            "peer": round(mlflow),
            "higher_is_better": True,
            "note": f"{ok} target >= {TARGET_RATE:,}/s; runyard median {e2e_s:.2f} s for "
            f"{N_VALUES:,} values; MLflow: {MLFLOW_VALUES:,} values in batches of "
            f"{MLFLOW_BATCH} into SQLite (rates comparable), run set-up untimed",
        },
        {
            "benchmark": "metrics 1M: in-script run.log() rate",
            "unit": "values/s",
            "runyard": round(N_VALUES / log_s),
            "peer_name": None,
            "peer": None,
            "higher_is_better": True,
            "note": f"_log_seconds logged by the script (loop + flush): {log_s:.2f} s, while "
            "the driver ingests concurrently",
        },
        {
            "benchmark": "metrics 1M: script phase (Running -> Finalizing)",
            "unit": "s",
            "runyard": round(med(e2e, "script_phase"), 2),
            "peer_name": None,
            "peer": None,
            "note": "runner's event times: script start to exit (interpreter start, import, "
            "logging, atexit flush)",
        },
        {
            "benchmark": "metrics 1M: ingest tail after script exit",
            "unit": "s",
            "runyard": round(med(e2e, "tail"), 2),
            "peer_name": None,
            "peer": None,
            "note": f"Finalizing event -> wait_for_completion() returns; of the {e2e_s:.2f} s "
            "end to end",
        },
        {
            "benchmark": "metrics 1M: ingest alone (runner already exited)",
            "unit": "values/s",
            "runyard": round(N_VALUES / med(ingest, "ingest")),
            "peer_name": None,
            "peer": None,
            "higher_is_better": True,
            "note": f"wait_for_completion() first called after the runner exited: "
            f"{med(ingest, 'ingest'):.2f} s to parse the spool and insert {N_VALUES:,} rows",
        },
        {
            "benchmark": "metrics 1M: get_metrics() read",
            "unit": "s",
            "runyard": round(e2e[0]["get_metrics"], 2),
            "peer_name": None,
            "peer": None,
            "note": "one run.get_metrics() returning the 1,000,000-value list (once)",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
