"""``runyard sweep submit|show|list|cancel`` and ``runyard run show <sweep>`` end to end: real
CLI subprocesses on real workspaces in tmp folders, real trials on the local target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

TRAIN = """\
import argparse
from runyard import Run

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--scale", type=float, default=1.0)
a = p.parse_args()
Run.get_context().log("score", a.scale * (10 - (a.x - 3) ** 2))
"""
SLEEP = """\
import argparse, os, time

p = argparse.ArgumentParser()
p.add_argument("--x", type=int, required=True)
p.add_argument("--pid-dir", required=True)
a = p.parse_args()
with open(os.path.join(a.pid_dir, f"{a.x}.pid"), "w") as fh:
    fh.write(str(os.getpid()))
time.sleep(120)
"""
CURVE = """\
import argparse, time
from runyard import Run

p = argparse.ArgumentParser()
p.add_argument("--quality", type=float, required=True)
a = p.parse_args()
run = Run.get_context()
for i in range(1, 9):
    time.sleep(0.3)
    run.log("accuracy", a.quality * (1 - 0.5 ** i))
"""
GRID = """\
experiment: grid-exp
script: train.py
arguments: ["--scale", 2]
sampling:
  type: grid
  parameter_space:
    --x: {choice: [1, 2, 3, 5]}
primary_metric: {name: score, goal: maximize}
max_total_runs: 4
max_concurrent_runs: 2
"""
#: --x -> the score train.py logs with --scale 2
SCORES = {1: 12.0, 2: 18.0, 3: 20.0, 5: 12.0}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


ENV = _env()


def cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m runyard.cli ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout, check=False)


def ok(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = cli(cwd, *args)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def cli_json(cwd: Path, *args: str) -> Any:
    return json.loads(ok(cwd, *args, "--json").stdout)


def make_workspace(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN)
    (folder / "sleep.py").write_text(SLEEP)
    (folder / "curve.py").write_text(CURVE)
    ok(folder, "init")
    return folder


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("sweepcli") / "proj")


@pytest.fixture(scope="module")
def grid(ws: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """``sweep submit --wait`` of a 4-trial grid sweep file kept in a subfolder (its
    source_directory is relative to the file)."""
    (ws / "sweeps").mkdir()
    (ws / "sweeps" / "grid.yml").write_text(GRID + "source_directory: ..\n")
    proc = cli(ws / "sweeps", "sweep", "submit", "--wait", "grid.yml", timeout=300)
    listed = cli_json(ws, "sweep", "list", "-e", "grid-exp")
    assert len(listed) == 1, listed
    return proc, listed[0]["runId"]


def _x(trial: dict[str, Any]) -> int:
    return int(trial["hyperparameters"]["--x"])


def test_submit_wait_shows_each_trial_and_the_final_table(
        grid: tuple[subprocess.CompletedProcess[str], str]) -> None:
    proc, sweep_id = grid
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith(f"RunId: {sweep_id}\n")
    for x in (1, 2, 3, 5):
        assert f'Completed {{"--x": {x}}}' in out
    table = out[out.index("hyperparameters\n"):].splitlines()[1:5]
    assert [json.loads(line.split(None, 3)[3])["--x"] for line in table] in (
        [3, 2, 1, 5], [3, 2, 5, 1])
    assert "Status: Completed" in out
    assert out.rstrip().endswith(f"best trial: {sweep_id}_2 (score = 20)")


def test_show_json_sorts_the_trials_by_the_primary_metric(
        ws: Path, grid: tuple[subprocess.CompletedProcess[str], str]) -> None:
    _, sweep_id = grid
    d = cli_json(ws, "sweep", "show", sweep_id)
    assert d["status"] == "Completed" and d["experiment"] == "grid-exp"
    assert d["primaryMetric"] == {"name": "score", "goal": "maximize"}
    assert (d["maxTotalRuns"], d["maxConcurrentRuns"]) == (4, 2)
    assert d["sampling"]["name"] == "GRID" and d["policy"]["name"] == "Default"
    assert (d["trialsSubmitted"], d["trialsDone"], d["trialsRunning"]) == (4, 4, 0)
    trials = d["trials"]
    assert sorted(_x(t) for t in trials) == [1, 2, 3, 5]
    assert [t["bestPrimaryMetric"] for t in trials] == [20.0, 18.0, 12.0, 12.0]
    assert all(t["bestPrimaryMetric"] == SCORES[_x(t)] for t in trials)
    assert all(t["status"] == "Completed" and t["terminationReason"] is None for t in trials)
    assert all(t["runId"] == f"{sweep_id}_{t['trial']}" for t in trials)
    assert d["bestRunId"] == trials[0]["runId"] and d["bestPrimaryMetric"] == 20.0
    top = cli_json(ws, "sweep", "show", sweep_id, "--top", "2")
    assert top["trials"] == trials[:2]


def _rows(text: str, title: str) -> list[list[str]]:
    """The rows of the table under ``title`` (header first), split on whitespace."""
    lines = text[text.index(title):].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_show_and_run_show_print_the_same_trials_table(
        ws: Path, grid: tuple[subprocess.CompletedProcess[str], str]) -> None:
    _, sweep_id = grid
    shown = ok(ws, "sweep", "show", sweep_id).stdout
    assert f"best trial      {sweep_id}_2 (score = 20)" in shown
    assert "4 trials, 2 at a time" in shown
    rows = _rows(shown, "Trials (best score first)")
    assert rows[0] == ["TRIAL", "RUN", "ID", "STATUS", "SCORE", "--x"]
    assert [(r[2], r[3], r[4]) for r in rows[1:3]] == [("Completed", "20", "3"),
                                                       ("Completed", "18", "2")]
    assert sorted(r[4] for r in rows[1:]) == ["1", "2", "3", "5"]
    run_show = ok(ws, "run", "show", sweep_id).stdout
    assert _rows(run_show, "Trials (best score first)") == rows
    assert "Child runs" not in run_show
    as_json = cli_json(ws, "run", "show", sweep_id)
    assert as_json["trials"] == cli_json(ws, "sweep", "show", sweep_id)["trials"]
    top = ok(ws, "sweep", "show", sweep_id, "--top", "1")
    assert len(_rows(top.stdout, "Trials (best score first)")) == 2
    assert "3 more trials" in top.stderr


def test_list_shows_trials_done_and_the_best_value(
        ws: Path, grid: tuple[subprocess.CompletedProcess[str], str]) -> None:
    _, sweep_id = grid
    [row] = cli_json(ws, "sweep", "list", "-e", "grid-exp")
    assert row["runId"] == sweep_id and row["status"] == "Completed"
    assert (row["trialsDone"], row["maxTotalRuns"], row["bestPrimaryMetric"]) == (4, 4, 20.0)
    assert "trials" not in row
    text = ok(ws, "sweep", "list", "-e", "grid-exp").stdout.splitlines()
    assert text[0].split()[:5] == ["SWEEP", "ID", "EXPERIMENT", "STATUS", "TRIALS"]
    assert text[1].split()[:4] == [sweep_id, "grid-exp", "Completed", "4/4"]
    assert cli_json(ws, "sweep", "list", "-e", "nope-exp") == []


def test_show_refuses_a_run_that_is_not_a_sweep(
        ws: Path, grid: tuple[subprocess.CompletedProcess[str], str]) -> None:
    _, sweep_id = grid
    proc = cli(ws, "sweep", "show", f"{sweep_id}_0")
    assert proc.returncode == 2 and "is not a sweep" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_trial_the_policy_ends_shows_why(ws: Path) -> None:
    (ws / "bandit.yml").write_text(textwrap.dedent("""\
        experiment: bandit-exp
        script: curve.py
        sampling: {type: grid, parameter_space: {--quality: {choice: [0.9, 0.3]}}}
        primary_metric: {name: accuracy, goal: maximize}
        max_total_runs: 2
        policy: {type: bandit, slack_factor: 0.2, evaluation_interval: 1, delay_evaluation: 2}
        """))
    proc = cli(ws, "sweep", "submit", "--wait", "--json", "bandit.yml", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = json.loads(proc.stdout)
    assert "RunId: " in proc.stderr  # --json: the trial lines go to stderr
    good, bad = d["trials"]
    assert (good["hyperparameters"], good["status"]) == ({"--quality": 0.9}, "Completed")
    assert (bad["hyperparameters"], bad["status"]) == ({"--quality": 0.3}, "Canceled")
    assert "Bandit" in bad["terminationReason"] and good["terminationReason"] is None
    assert d["policy"]["name"] == "Bandit" and d["bestRunId"] == good["runId"]
    rows = _rows(ok(ws, "sweep", "show", d["runId"]).stdout, "Trials (best accuracy first)")
    assert rows[0][-1] == "TERMINATION" and "Bandit" in " ".join(rows[2])


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_cancel_ends_a_running_sweep_and_its_trials(
        ws: Path, tmp_path: Path, grid: tuple[subprocess.CompletedProcess[str], str]) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    (ws / "sleep.yml").write_text(textwrap.dedent(f"""\
        experiment: sleep-exp
        script: sleep.py
        arguments: [--pid-dir, {json.dumps(str(pids))}]
        sampling: {{type: grid, parameter_space: {{--x: {{choice: [1, 2, 3, 4]}}}}}}
        primary_metric: {{name: score, goal: maximize}}
        max_total_runs: 4
        max_concurrent_runs: 2
        policy: {{type: bandit, slack_factor: 0.1, evaluation_interval: 1}}
        """))
    sweep_id = ok(ws, "sweep", "submit", "sleep.yml").stdout.strip()
    assert sweep_id.startswith("HD_") and "\n" not in sweep_id
    started: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.glob("*.pid"))) < 2 or not all(
                p.read_text() for p in pids.glob("*.pid")):
            assert time.monotonic() < deadline, "the sleeping trials never started"
            time.sleep(0.1)
        started = [int(p.read_text()) for p in pids.glob("*.pid")]
        # two trials run (max_concurrent_runs); the controller may queue the next ones ahead
        running = cli_json(ws, "sweep", "show", sweep_id)
        while running["trialsRunning"] != 2:
            assert time.monotonic() < deadline, running["trials"]
            time.sleep(0.2)
            running = cli_json(ws, "sweep", "show", sweep_id)
        assert running["status"] == "Running" and running["trialsDone"] == 0
        assert {t["status"] for t in running["trials"]} <= {"Running", "Queued"}
        listed = cli_json(ws, "sweep", "list")
        assert listed[0]["runId"] == sweep_id and grid[1] in [r["runId"] for r in listed]
        created = [r["createdTimeUtc"] for r in listed]
        assert created == sorted(created, reverse=True)  # newest first
        assert (listed[0]["status"], listed[0]["trialsDone"]) == ("Running", 0)

        cancel = ok(ws, "sweep", "cancel", sweep_id)
        assert f"sweep {sweep_id}: Canceled" in cancel.stdout
        deadline = time.monotonic() + 20
        while not all(_gone(pid) for pid in started):
            assert time.monotonic() < deadline, "a trial's script survived the cancel"
            time.sleep(0.1)
        time.sleep(1.0)  # a controller step after the cancel must not start another trial
        d = cli_json(ws, "sweep", "show", sweep_id)
        assert d["status"] == "Canceled"
        assert {t["status"] for t in d["trials"]} == {"Canceled"}
        assert len(d["trials"]) == len(running["trials"])
        assert len(list(pids.glob("*.pid"))) == 2
    finally:  # never leave the sweep or a sleeper behind when the test fails
        cli(ws, "sweep", "cancel", sweep_id)
        for pid in started + [int(p.read_text() or 0) for p in pids.glob("*.pid")]:
            if pid and not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    again = ok(ws, "sweep", "cancel", sweep_id)
    assert "already ended Canceled" in again.stdout


@pytest.fixture(scope="module")
def empty_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace in which no test may record a run."""
    return make_workspace(tmp_path_factory.mktemp("sweepcli-empty") / "proj")


BASE = """\
script: train.py
primary_metric: {name: score, goal: maximize}
max_total_runs: 4
"""
RANDOM_X = "sampling: {type: random, parameter_space: {--x: {choice: [1, 2]}}}\n"


@pytest.mark.parametrize(("body", "field", "message"), [
    (BASE + RANDOM_X + "max_totl_runs: 3\n", "max_totl_runs", "unknown key"),
    (BASE + RANDOM_X + "policy: {type: bandit, slack: 0.1}\n", "policy.slack", "unknown key"),
    (BASE + "sampling: {type: random, parameter_space: {--x: {uniform: [1, 0]}}}\n",
     "sampling.parameter_space['--x']", "min_value must be < max_value"),
    (BASE + "sampling: {type: grid, parameter_space: {--x: {uniform: [0, 1]}}}\n",
     "sampling.parameter_space['--x']", "grid sampling supports only choice"),
    (BASE.replace("primary_metric: {name: score, goal: maximize}\n", "") + RANDOM_X,
     "primary_metric", "missing; it is required"),
    (BASE + RANDOM_X + "policy: {type: bandit, slack_factor: -1}\n", "policy.slack_factor",
     "must be a number >= 0"),
    (BASE.replace("4", "0") + RANDOM_X, "max_total_runs", "between 1 and 1000"),
    (BASE + RANDOM_X + "environment: nope\n", "environment", "no registered environment"),
    (BASE.replace("train.py", "missing.py") + RANDOM_X, "script", "does not exist"),
])
def test_a_bad_file_exits_2_naming_the_field_and_records_nothing(
        empty_ws: Path, body: str, field: str, message: str) -> None:
    (empty_ws / "bad.yml").write_text(body)
    proc = cli(empty_ws, "sweep", "submit", "--wait", "bad.yml")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"error: bad.yml: {field}: "), proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert cli_json(empty_ws, "sweep", "list") == []
    assert cli_json(empty_ws, "run", "list") == []
    runs = empty_ws / ".runyard" / "runs"
    assert not runs.exists() or not any(runs.iterdir())
