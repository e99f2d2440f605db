"""Hyperparameter sweeps on the local target with real runs: the bundled scikit-learn example
with BanditPolicy, early termination of running trials, a controller killed mid-sweep that
resumes with no trial repeated, the best run's model registered, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard import Experiment, ScriptRunConfig, Workspace
from runyard.errors import RunFailed
from runyard.model import Model
from runyard.run import HyperDriveRun, Run
from runyard.sweeps import (
    BanditPolicy,
    GridParameterSampling,
    HyperDriveConfig,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sklearn"
CURVE = """
    import argparse, time
    from runyard import Run
    p = argparse.ArgumentParser()
    p.add_argument("--quality", type=float, required=True)
    p.add_argument("--pause", type=float, default=0.3)
    a = p.parse_args()
    run = Run.get_context()
    for i in range(1, 9):
        time.sleep(a.pause)
        run.log("accuracy", a.quality * (1 - 0.5 ** i))
"""
QUIET = """
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float)
    p.parse_args()
    print("no metric logged")
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    w = Workspace.create("sweeps", tmp_path / "ws", max_concurrent_runs=2)
    yield w
    w.close()


def project(tmp_path: Path) -> Path:
    src = tmp_path / "project"
    src.mkdir(exist_ok=True)
    for name, body in (("curve.py", CURVE), ("quiet.py", QUIET)):
        (src / name).write_text(textwrap.dedent(body))
    return src


def trial_indexes(hd: Run) -> list[int]:
    return sorted(int(c.id.rsplit("_", 1)[1]) for c in hd.get_children())


def test_sklearn_sweep_with_bandit_picks_the_best_run_and_registers_its_model(
        ws: Workspace, tmp_path: Path) -> None:
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(EXAMPLE), "train.py"),
        hyperparameter_sampling=RandomParameterSampling(
            {"--C": choice(0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)}, properties={"seed": 3}),
        policy=BanditPolicy(slack_factor=0.05, evaluation_interval=1, delay_evaluation=1),
        primary_metric_name="mean_accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=12, max_concurrent_runs=2)
    hd = Experiment(ws, "sweep-sklearn").submit(cfg)
    assert isinstance(hd, HyperDriveRun)
    details = hd.wait_for_completion(show_output=False, timeout=600)
    assert details["status"] == "Completed"
    assert trial_indexes(hd) == list(range(12))
    params = hd.get_hyperparameters()
    assert len(params) == 12 and all(set(p) == {"--C"} for p in params.values())
    for child in hd.get_children():
        args = child.get_details()["runDefinition"]["arguments"]
        assert args[-2:] == ["--C", str(params[child.id]["--C"])], args
    ranked = hd.get_children_sorted_by_primary_metric()
    values = [r["best_primary_metric"] for r in ranked if r["best_primary_metric"] is not None]
    assert values == sorted(values, reverse=True) and values[0] > 0.95
    best = hd.get_best_run_by_primary_metric()
    assert best is not None and best.id == ranked[0]["run_id"]
    assert hd.get_properties()["best_child_run_id"] == best.id
    model = best.register_model("sweep-best", "outputs/model.pkl")
    assert model.run_id == best.id and Model(ws, "sweep-best").version == 1


def test_bandit_cancels_the_trials_falling_behind_while_they_run(ws: Workspace,
                                                                 tmp_path: Path) -> None:
    src = project(tmp_path)
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(src), "curve.py"),
        hyperparameter_sampling=GridParameterSampling({"--quality": choice(0.9, 0.3)}),
        policy=BanditPolicy(slack_factor=0.2, evaluation_interval=1, delay_evaluation=2),
        primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=4, max_concurrent_runs=2)
    hd = Experiment(ws, "sweep-bandit").submit(cfg)
    hd.wait_for_completion(timeout=300)
    by_quality = {json.loads(c.get_properties()["hyperparameters"])["--quality"]: c
                  for c in hd.get_children()}
    assert set(by_quality) == {0.9, 0.3}  # the grid has two points: the sweep stops there
    bad, good = by_quality[0.3], by_quality[0.9]
    assert good.get_status() == "Completed"
    assert bad.get_status() == "Canceled"
    assert "Bandit" in (bad.get_tags().get("runyard.termination_reason") or "")
    assert len(bad.get_metrics()["accuracy"]) < 8  # stopped before its last interval


def test_a_killed_controller_resumes_without_repeating_a_trial(ws: Workspace,
                                                               tmp_path: Path) -> None:
    src = project(tmp_path)
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import sys
        from runyard import Experiment, ScriptRunConfig, Workspace
        from runyard.sweeps import (HyperDriveConfig, PrimaryMetricGoal,
                                    RandomParameterSampling, uniform)
        ws = Workspace.from_config({str(ws.path)!r})
        cfg = HyperDriveConfig(
            run_config=ScriptRunConfig({str(src)!r}, "curve.py", arguments=["--pause", "0.1"]),
            hyperparameter_sampling=RandomParameterSampling({{"--quality": uniform(0.5, 1)}},
                                                            properties={{"seed": 11}}),
            primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
            max_total_runs=8, max_concurrent_runs=2)
        hd = Experiment(ws, "sweep-kill").submit(cfg)
        print(hd.id, flush=True)
        hd.wait_for_completion()
    """))
    env = {**os.environ, "RUNYARD_NO_RECONCILER": "1"}  # the driver is the only controller
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    sweep_id = proc.stdout.readline().strip()
    hd = Run.get(ws, sweep_id)
    deadline = time.monotonic() + 120
    while len(list(hd.get_children())) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the controller dies mid-sweep
    proc.wait()
    proc.stdout.close()
    before = {c.id: c.get_properties()["hyperparameters"] for c in hd.get_children()}
    assert 3 <= len(before) < 8
    assert isinstance(hd, HyperDriveRun)
    hd.wait_for_completion(timeout=300)  # this process takes over as the controller
    after = {c.id: c.get_properties()["hyperparameters"] for c in hd.get_children()}
    assert trial_indexes(hd) == list(range(8))
    assert {k: after[k] for k in before} == before  # nothing started twice or changed
    assert len(set(after.values())) == 8
    for child in hd.get_children():
        assert child.get_status() == "Completed"
        assert [a["attempt"] for a in child.get_attempts()] == [1]


def test_a_metric_no_trial_logs_stops_the_sweep_early(ws: Workspace, tmp_path: Path) -> None:
    src = project(tmp_path)
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(src), "quiet.py"),
        hyperparameter_sampling=RandomParameterSampling({"--x": choice(1, 2, 3)}),
        primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=20, max_concurrent_runs=2)
    hd = Experiment(ws, "sweep-quiet").submit(cfg)
    with pytest.raises(RunFailed, match="'accuracy' was not logged"):
        hd.wait_for_completion(timeout=120)
    assert len(list(hd.get_children())) < 20
    assert all(c.get_status() in ("Completed", "Canceled") for c in hd.get_children())


def test_a_key_argparse_rejects_surfaces_the_trial_error(ws: Workspace,
                                                         tmp_path: Path) -> None:
    src = project(tmp_path)
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(src), "curve.py"),
        hyperparameter_sampling=RandomParameterSampling({"--learning-rate": choice(1, 2)}),
        primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=10, max_concurrent_runs=2)
    hd = Experiment(ws, "sweep-argparse").submit(cfg)
    with pytest.raises(RunFailed) as info:
        hd.wait_for_completion(timeout=120)
    assert "unrecognized arguments: --learning-rate" in str(info.value) or \
        "the following arguments are required: --quality" in str(info.value)
    assert not [c for c in hd.get_children() if c.get_status() in ("Running", "Queued")]


def test_concurrency_above_the_target_is_clamped_with_a_warning(ws: Workspace,
                                                                tmp_path: Path) -> None:
    src = project(tmp_path)
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(src), "curve.py", arguments=["--pause", "0.01"]),
        hyperparameter_sampling=GridParameterSampling({"--quality": choice(0.5, 0.6, 0.7)}),
        primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=3, max_concurrent_runs=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hd = Experiment(ws, "sweep-clamp").submit(cfg)
    assert any("max_concurrent_runs=3" in str(w.message) for w in caught)
    assert hd.get_tags()["max_concurrent_jobs"] == "2"
    hd.wait_for_completion(timeout=120)
    assert len(list(hd.get_children())) == 3


def test_resume_from_starts_the_search_knowing_the_earlier_trials(ws: Workspace,
                                                                  tmp_path: Path) -> None:
    src = project(tmp_path)

    def grid(**more: object) -> HyperDriveConfig:
        return HyperDriveConfig(
            run_config=ScriptRunConfig(str(src), "curve.py", arguments=["--pause", "0.01"]),
            hyperparameter_sampling=GridParameterSampling(
                {"--quality": choice(0.5, 0.6, 0.7, 0.8)}),
            primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
            max_total_runs=2, max_concurrent_runs=2, **more)  # type: ignore[arg-type]

    first = Experiment(ws, "sweep-resume").submit(grid())
    first.wait_for_completion(timeout=120)
    second = Experiment(ws, "sweep-resume").submit(grid(resume_from=first))
    second.wait_for_completion(timeout=120)

    def tried(hd: Run) -> set[float]:
        assert isinstance(hd, HyperDriveRun)
        return {p["--quality"] for p in hd.get_hyperparameters().values()}

    assert tried(first) == {0.5, 0.6}
    assert tried(second) == {0.7, 0.8}  # the earlier trials were known, not run again
    with pytest.raises(Exception, match="resume_from"):
        Experiment(ws, "sweep-resume").submit(HyperDriveConfig(
            run_config=ScriptRunConfig(str(src), "curve.py"),
            hyperparameter_sampling=GridParameterSampling({"--other": choice(1, 2)}),
            primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
            max_total_runs=2, resume_from=first))


def test_canceling_a_sweep_cancels_its_trials_with_the_reason(ws: Workspace,
                                                              tmp_path: Path) -> None:
    src = project(tmp_path)
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(src), "curve.py", arguments=["--pause", "2"]),
        hyperparameter_sampling=RandomParameterSampling({"--quality": choice(0.5, 0.9)}),
        primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=6, max_concurrent_runs=2)
    hd = Experiment(ws, "sweep-cancel").submit(cfg)
    deadline = time.monotonic() + 60
    while not any(c.get_status() == "Running" for c in hd.get_children()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    hd.cancel()
    assert hd.get_status() == "Canceled"
    time.sleep(0.5)
    hd._refresh()  # a controller step after the cancel starts nothing
    kids = list(hd.get_children())
    assert kids and all(c.get_status() == "Canceled" for c in kids)
    assert all(c.get_tags().get("runyard.termination_reason") for c in kids)
