"""The ``runyard`` CLI end to end: real subprocesses on real workspaces in tmp folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

TRAIN = """\
import os, sys
from runyard import Run

run = Run.get_context()
for i in range(3):
    run.log("loss", 1.0 / (i + 1))
run.log("accuracy", 0.75)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write("weights-v1")
print("hello from train", sys.argv[1:])
"""
FAIL = """\
print("about to fail")
1 / 0
"""
SLEEP = """\
import os, time
with open("../sleep.pid", "w") as fh:
    fh.write(str(os.getpid()))
print("sleeping", flush=True)
time.sleep(120)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the many subprocesses share .pyc files
    return env


ENV = _env()


def cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m runyard.cli ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout, check=False)


def ok(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = cli(cwd, *args)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def cli_json(cwd: Path, *args: str) -> Any:
    """Run a ``--json`` command: exit 0 and stdout is one JSON document."""
    return json.loads(ok(cwd, *args, "--json").stdout)


def make_workspace(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN)
    (folder / "fail.py").write_text(FAIL)
    (folder / "sleep.py").write_text(SLEEP)
    ok(folder, "init")
    return folder


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace shared by the tests that record runs (each uses its own experiment)."""
    return make_workspace(tmp_path_factory.mktemp("cli") / "proj")


@pytest.fixture(scope="module")
def trained(ws: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """``run submit --wait`` of train.py (options after the script go to the script)."""
    proc = cli(ws, "run", "submit", "-e", "train-exp", "--tag", "team=vision", "--wait",
               "train.py", "--lr", "0.1", "--wait")
    runs = cli_json(ws, "run", "list", "-e", "train-exp")
    assert len(runs) == 1, runs
    return proc, runs[0]["runId"]


def test_init_names_the_workspace_after_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "My Project!"
    folder.mkdir()
    proc = ok(folder, "init")
    assert "Created workspace 'My-Project'" in proc.stdout
    config = json.loads((folder / ".runyard" / "config.json").read_text())
    assert config["workspace_name"] == "My-Project"

    again = cli(folder, "init")
    assert again.returncode == 2
    assert again.stderr.startswith("error: ") and "already exists" in again.stderr
    assert "Traceback" not in again.stderr

    details = cli_json(folder, "init", "--exist-ok")
    assert details["name"] == "My-Project" and details["path"] == str(folder)

    bad = cli(tmp_path, "init", "--name", "x", "--path", str(tmp_path / "other"))
    assert bad.returncode == 2 and "invalid workspace name 'x'" in bad.stderr


def test_submit_wait_streams_the_log_and_shows_metrics(
        ws: Path, trained: tuple[subprocess.CompletedProcess[str], str]) -> None:
    proc, run_id = trained
    assert proc.returncode == 0, proc.stderr
    assert f"RunId: {run_id}" in proc.stdout
    assert "hello from train ['--lr', '0.1', '--wait']" in proc.stdout
    assert "Status: Completed" in proc.stdout
    metrics = proc.stdout.split("Metrics", 1)[1]
    assert "loss" in metrics and "0.333333" in metrics and "accuracy" in metrics

    d = cli_json(ws, "run", "show", run_id)
    assert d["status"] == "Completed" and d["experiment"] == "train-exp"
    assert d["tags"] == {"team": "vision"}
    assert d["metricsSummary"] == {"loss": pytest.approx(1 / 3), "accuracy": 0.75}
    assert d["metrics"]["loss"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert "outputs/model.txt" in d["files"]
    assert [e["status"] for e in d["events"]][-1] == "Completed"


def test_json_outputs_parse(ws: Path, trained: tuple[subprocess.CompletedProcess[str], str]
                            ) -> None:
    _, run_id = trained
    runs = cli_json(ws, "run", "list")
    assert run_id in [r["runId"] for r in runs]
    assert cli_json(ws, "run", "list", "--status", "completed", "-e", "train-exp")[0][
        "runId"] == run_id
    assert cli_json(ws, "run", "list", "--status", "Failed", "-e", "train-exp") == []
    assert cli_json(ws, "run", "show", run_id)["runId"] == run_id
    experiments = {e["name"]: e for e in cli_json(ws, "experiment", "list")}
    assert experiments["train-exp"]["runs"] == 1
    assert experiments["train-exp"]["latestRunId"] == run_id
    targets = cli_json(ws, "compute", "list")
    assert {"name": "local", "kind": "local", "provisioningState": "Succeeded",
            "errors": []} in targets

    table = ok(ws, "run", "list", "-e", "train-exp").stdout
    assert run_id in table and "Completed" in table

    waited = ok(ws, "run", "submit", "-e", "json-exp", "--wait", "--json", "train.py")
    assert json.loads(waited.stdout)["metricsSummary"]["accuracy"] == 0.75
    assert "hello from train" in waited.stderr  # the streamed log stays off stdout


def test_run_logs_prints_the_script_output(
        ws: Path, trained: tuple[subprocess.CompletedProcess[str], str]) -> None:
    _, run_id = trained
    out = ok(ws, "run", "logs", run_id).stdout
    assert out == "hello from train ['--lr', '0.1', '--wait']\n"
    followed = ok(ws, "run", "logs", "-f", run_id).stdout
    assert "hello from train" in followed and "Status: Completed" in followed


def test_download_writes_the_outputs(
        ws: Path, trained: tuple[subprocess.CompletedProcess[str], str], tmp_path: Path
) -> None:
    _, run_id = trained
    dest = tmp_path / "dl"
    proc = ok(ws, "run", "download", run_id, "--prefix", "outputs/", "--output", str(dest))
    assert (dest / "outputs" / "model.txt").read_text() == "weights-v1"
    assert not (dest / "system_logs").exists()
    assert str(dest / "outputs" / "model.txt") in proc.stdout


def test_failing_script_exits_1_and_show_has_the_traceback(ws: Path) -> None:
    proc = cli(ws, "run", "submit", "-e", "fail-exp", "--wait", "fail.py")
    assert proc.returncode == 1, proc.stderr
    assert "ended Failed" in proc.stderr and "ZeroDivisionError" in proc.stderr
    (run,) = cli_json(ws, "run", "list", "-e", "fail-exp")

    shown = ok(ws, "run", "show", run["runId"]).stdout
    assert "Failed" in shown
    assert "Traceback (most recent call last):" in shown
    assert "ZeroDivisionError: division by zero" in shown
    d = cli_json(ws, "run", "show", run["runId"])
    assert d["status"] == "Failed" and d["error"]["exit_code"] == 1
    assert "ZeroDivisionError" in d["error"]["traceback"]

    logs = ok(ws, "run", "logs", run["runId"]).stdout
    assert logs.startswith("about to fail\n") and "ZeroDivisionError" in logs


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_cancel_stops_a_sleeping_run(ws: Path) -> None:
    proc = ok(ws, "run", "submit", "-e", "sleep-exp", "sleep.py")
    run_id = proc.stdout.strip()
    assert run_id.startswith("sleep-exp_") and "\n" not in run_id
    pid_file = ws / ".runyard" / "runs" / run_id / "sleep.pid"
    deadline = time.monotonic() + 20
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the sleeping script never started"
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    assert not _gone(pid)
    try:
        cancel = ok(ws, "run", "cancel", run_id)
        assert "Canceled" in cancel.stdout
        assert cli_json(ws, "run", "show", run_id)["status"] == "Canceled"
        deadline = time.monotonic() + 10
        while not _gone(pid):
            assert time.monotonic() < deadline, f"the script (pid {pid}) survived the cancel"
            time.sleep(0.05)
    finally:
        if not _gone(pid):  # never leave the sleeper behind when the test fails
            os.kill(pid, signal.SIGKILL)
    again = ok(ws, "run", "cancel", run_id)
    assert "already ended Canceled" in again.stdout


@pytest.fixture(scope="module")
def empty_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace in which no test may record a run."""
    root = tmp_path_factory.mktemp("cli-empty")
    (root / "outside.py").write_text("print('outside')\n")
    return make_workspace(root / "proj")


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "nope", "train.py"], "unknown compute target 'nope'"),
    (["missing.py"], "'missing.py' does not exist in the source directory"),
    (["../outside.py"], "'../outside.py' is outside the source directory"),
    (["-e", "bad name!", "train.py"], "invalid experiment name 'bad name!'"),
    (["--runconfig", "nope", "train.py"], "run configuration 'nope' does not exist"),
])
def test_bad_submit_exits_2_and_records_no_run(empty_ws: Path, args: list[str],
                                               message: str) -> None:
    proc = cli(empty_ws, "run", "submit", "--wait", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert cli_json(empty_ws, "run", "list") == []


def test_other_errors_exit_2_without_traceback(empty_ws: Path, tmp_path: Path) -> None:
    missing = cli(empty_ws, "run", "show", "nope_1_abc")
    assert missing.returncode == 2
    assert missing.stderr == "error: run 'nope_1_abc' does not exist in workspace 'proj'\n"

    no_ws = cli(tmp_path, "run", "list")
    assert no_ws.returncode == 2 and "runyard init" in no_ws.stderr

    from_elsewhere = cli_json(tmp_path, "-w", str(empty_ws), "run", "list")
    assert from_elsewhere == []

    bad_tag = cli(empty_ws, "run", "submit", "--tag", "=x", "train.py")
    assert bad_tag.returncode == 2 and "KEY=VALUE" in bad_tag.stderr
    misplaced = cli(empty_ws, "run", "submit", "--lr", "0.1", "train.py")
    assert misplaced.returncode == 2 and "no such option: --lr" in misplaced.stderr
    assert cli_json(empty_ws, "run", "list") == []


def test_help_does_not_import_the_sdk() -> None:
    code = ("import sys; from runyard.cli.main import cli; "
            "print(sorted(m for m in ('sqlalchemy', 'rich', 'runyard.workspace') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "runyard.cli", "--help"], env=ENV,
                               capture_output=True, text=True, check=True).stdout
    for command in ("init", "run", "experiment", "compute"):
        assert command in help_text


def test_reconcile_once_moves_a_run_no_one_reads(tmp_path: Path) -> None:
    folder = make_workspace(tmp_path / "rec")
    # submit without --wait and without the detached reconciler: only `reconcile` moves it
    env = {**ENV, "RUNYARD_NO_RECONCILER": "1"}
    sub = subprocess.run([sys.executable, "-m", "runyard.cli", "run", "submit", "-e", "rec",
                          "--json", "train.py"], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert sub.returncode == 0, sub.stderr
    run_id = json.loads(sub.stdout)["runId"]
    from runyard import Workspace

    ws = Workspace.from_config(folder)
    deadline = time.monotonic() + 60
    while not ws.store.get_run(run_id).status.terminal:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the run never ended"
        proc = ok(folder, "reconcile", "--once")
        assert "live run(s) reconciled" in proc.stdout
        time.sleep(0.2)
    assert ws.store.get_run(run_id).status.value == "Completed"  # type: ignore[union-attr]
    ws.close()
