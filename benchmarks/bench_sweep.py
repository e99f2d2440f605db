"""Sweep benchmarks: controller overhead against Ray Tune and Optuna, early termination, TPE.

Measured in the same run:

* **overhead**: a random sweep of ``RUNYARD_BENCH_SWEEP_TRIALS`` (default 100) trials of a
  script that sleeps 0.5 s and logs one metric, 2 at a time, on the local target (submit to
  sweep end), against the ideal (trials x 0.5 s / 2), Ray Tune (a function trainable running
  the same script as a subprocess, ``max_concurrent_trials=2``, Ray started with 2 CPUs
  beforehand and not timed) and an Optuna study (``n_jobs=2``, the objective runs the same
  script as a subprocess). Target: within 1.15x of the ideal; goal: faster than Ray Tune.
* **early termination**: a deterministic synthetic learning-curve script (12 trials, 10
  intervals of 0.2 s each), BanditPolicy(slack_factor=0.1, evaluation_interval=1,
  delay_evaluation=5) against no policy: child-seconds used (sum of the trials' run times).
* **TPE vs random**: best value of the Branin function (minimized; global minimum 0.397887)
  after 30 trials, Bayesian (TPE) against random sampling, averaged over 5 seeds (the trials
  are short scripts; 4 at a time).

``run(repeats)`` returns the rows; direct execution prints them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

TRIALS = int(os.environ.get("RUNYARD_BENCH_SWEEP_TRIALS", "100"))
SLEEP = 0.5
SLEEPER = """
    import argparse, time
    from runyard import Run
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    a = p.parse_args()
    time.sleep(0.5)
    Run.get_context().log("score", a.x)
"""
CURVE = """
    import argparse, time
    from runyard import Run
    p = argparse.ArgumentParser()
    p.add_argument("--quality", type=float)
    a = p.parse_args()
    run = Run.get_context()
    for i in range(1, 11):
        time.sleep(0.2)
        run.log("accuracy", a.quality * (1 - 0.5 ** i))
"""
BRANIN = """
    import argparse, math
    from runyard import Run
    p = argparse.ArgumentParser()
    p.add_argument("--x1", type=float)
    p.add_argument("--x2", type=float)
    a = p.parse_args()
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    v = (a.x2 - b * a.x1 ** 2 + c * a.x1 - 6) ** 2 + 10 * (1 - t) * math.cos(a.x1) + 10
    Run.get_context().log("branin", v)
"""


def _workspace(tmp: Path, name: str, concurrency: int) -> Any:
    from runyard import Workspace  # noqa: PLC0415

    return Workspace.create(name, tmp / name, max_concurrent_runs=concurrency)


def _sweep(ws: Any, src: Path, script: str, sampling: Any, metric: str, goal: Any,
           total: int, concurrent: int, policy: Any = None) -> tuple[float, Any]:
    from runyard import Experiment, ScriptRunConfig  # noqa: PLC0415
    from runyard.sweeps import HyperDriveConfig  # noqa: PLC0415

    cfg = HyperDriveConfig(run_config=ScriptRunConfig(str(src), script),
                           hyperparameter_sampling=sampling, primary_metric_name=metric,
                           primary_metric_goal=goal, max_total_runs=total,
                           max_concurrent_runs=concurrent, policy=policy)
    t0 = time.perf_counter()
    hd = Experiment(ws, "bench-sweep").submit(cfg)
    hd.wait_for_completion(show_output=False)
    return time.perf_counter() - t0, hd


def _child_seconds(hd: Any) -> float:
    total = 0.0
    for child in hd.get_children():
        rec = child._record
        if rec.start_time and rec.end_time:
            total += rec.end_time - rec.start_time
    return total


def _ray_tune(script: Path) -> float:
    import ray  # noqa: PLC0415
    from ray import tune  # noqa: PLC0415

    def trainable(config: dict[str, Any]) -> dict[str, float]:
        subprocess.run([sys.executable, str(script), "--x", str(config["x"])], check=True,
                       env={**os.environ, "RUNYARD_RUN_ID": ""}, capture_output=True)
        return {"score": config["x"]}

    tuner = tune.Tuner(trainable, param_space={"x": tune.uniform(0, 1)},
                       tune_config=tune.TuneConfig(num_samples=TRIALS,
                                                   max_concurrent_trials=2),
                       run_config=tune.RunConfig(storage_path=str(script.parent / "ray"),
                                                 verbose=0))
    t0 = time.perf_counter()
    tuner.fit()
    took = time.perf_counter() - t0
    del ray
    return took


def _optuna(script: Path) -> float:
    import optuna  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        subprocess.run([sys.executable, str(script), "--x", str(x)], check=True,
                       capture_output=True)
        return x

    study = optuna.create_study(direction="maximize")
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=TRIALS, n_jobs=2)
    return time.perf_counter() - t0


def _say(row: dict[str, Any]) -> None:
    print(f"[bench_sweep] {row}", file=sys.stderr, flush=True)


def run(repeats: int = 1) -> list[dict[str, Any]]:
    """Measure and return the rows (medians of ``repeats``)."""
    from runyard.sweeps import (  # noqa: PLC0415
        BanditPolicy,
        BayesianParameterSampling,
        PrimaryMetricGoal,
        RandomParameterSampling,
        choice,
        uniform,
    )

    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="runyard-bench-sweep-"))
    old = os.environ.get("RUNYARD_CONFIG_HOME")
    os.environ["RUNYARD_CONFIG_HOME"] = str(tmp / "config")
    try:
        src = tmp / "src"
        src.mkdir()
        for name, body in (("sleeper.py", SLEEPER), ("curve.py", CURVE),
                           ("branin.py", BRANIN)):
            (src / name).write_text(textwrap.dedent(body))
        # the peers run the script without runyard around it: Run.get_context() is offline
        plain = tmp / "plain_sleeper.py"
        plain.write_text(textwrap.dedent(SLEEPER))
        ideal = TRIALS * SLEEP / 2
        ours: list[float] = []
        for i in range(max(1, repeats)):
            ws = _workspace(tmp, f"overhead{i}", 2)
            took, _hd = _sweep(ws, src, "sleeper.py",
                               RandomParameterSampling({"--x": uniform(0, 1)}), "score",
                               PrimaryMetricGoal.MAXIMIZE, TRIALS, 2)
            ours.append(took)
            _say({"runyard sweep": took})
            ws.close()
        peers: dict[str, float] = {}
        try:
            import ray  # noqa: PLC0415

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                peers["Ray Tune"] = statistics.median(_ray_tune(plain)
                                                      for _ in range(max(1, repeats)))
            finally:
                ray.shutdown()
        except ImportError as exc:
            rows.append({"benchmark": "sweep overhead: Ray Tune", "unit": "s", "runyard": None,
                         "peer_name": None, "peer": None, "note": f"not measured: {exc}"})
        peers["Optuna n_jobs=2"] = statistics.median(_optuna(plain)
                                                     for _ in range(max(1, repeats)))
        mine = statistics.median(ours)
        rows.append({"benchmark": f"sweep of {TRIALS} trials x {SLEEP} s, 2 at a time "
                                  "(local): total vs ideal", "unit": "s", "runyard": mine,
                     "peer_name": "ideal", "peer": ideal,
                     "note": f"target <= 1.15x ideal ({1.15 * ideal:.1f} s)"})
        for name, value in peers.items():
            rows.append({"benchmark": f"sweep of {TRIALS} trials x {SLEEP} s, 2 at a time: "
                                      f"vs {name}", "unit": "s", "runyard": mine,
                         "peer_name": name, "peer": value,
                         "note": "the peer runs the same script as a subprocess"})
        # -- early termination -------------------------------------------------------------------
        ws = _workspace(tmp, "bandit", 2)
        space = {"--quality": choice(*[round(0.5 + 0.04 * k, 2) for k in range(12)])}
        _t, base = _sweep(ws, src, "curve.py", RandomParameterSampling(
            space, properties={"seed": 7}), "accuracy", PrimaryMetricGoal.MAXIMIZE, 12, 2)
        _t, cut = _sweep(ws, src, "curve.py", RandomParameterSampling(
            space, properties={"seed": 7}), "accuracy", PrimaryMetricGoal.MAXIMIZE, 12, 2,
            policy=BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=5))
        canceled = sum(1 for c in cut.get_children() if c.get_status() == "Canceled")
        rows.append({"benchmark": "early termination: child-seconds, BanditPolicy(0.1, 1, 5) "
                                  "vs no policy (12 trials)", "unit": "s",
                     "runyard": _child_seconds(cut), "peer_name": "no policy",
                     "peer": _child_seconds(base), "note": f"{canceled} trials canceled"})
        ws.close()
        # -- TPE vs random on Branin ---------------------------------------------------------------
        ws = _workspace(tmp, "branin", 4)
        bounds = {"--x1": uniform(-5, 10), "--x2": uniform(0, 15)}
        tpe: list[float] = []
        rnd: list[float] = []
        for seed in range(5):
            for kind, out in ((BayesianParameterSampling, tpe), (RandomParameterSampling, rnd)):
                sampling = kind(bounds, properties={"seed": seed})
                _t, hd = _sweep(ws, src, "branin.py", sampling, "branin",
                                PrimaryMetricGoal.MINIMIZE, 30, 4)
                row = hd.get_children_sorted_by_primary_metric(top=1)
                out.append(float(row[0]["best_primary_metric"]))
        rows.append({"benchmark": "Branin, best after 30 trials (mean of 5 seeds; min "
                                  "0.397887): TPE vs random", "unit": "value",
                     "runyard": statistics.mean(tpe), "peer_name": "random sampling",
                     "peer": statistics.mean(rnd),
                     "note": "TPE " + ", ".join(f"{v:.3f}" for v in tpe) + "; random "
                             + ", ".join(f"{v:.3f}" for v in rnd)})
        ws.close()
    finally:
        if old is None:
            os.environ.pop("RUNYARD_CONFIG_HOME", None)
        else:
            os.environ["RUNYARD_CONFIG_HOME"] = old
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for row in run(1):
        print(row)
