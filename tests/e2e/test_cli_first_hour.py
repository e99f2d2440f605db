"""Issue 11, item 7: a new user's first hour with the CLI, end to end (real subprocesses, real
workspaces, real runs; the Quickstart's environment is really built with uv)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

ENV = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
ENV["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), ENV.get("PYTHONPATH")) if p)

TRAIN = """\
import argparse
from runyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
run = Run.get_context()
for i in range(4):
    run.log("loss", args.lr * (4 - i))
run.log("tries", 3)
run.tag("data", args.data)
for k in range(2):
    child = run.child_run(name=f"fold-{k}")
    child.log("fold_acc", 0.5 + k / 10)
    child.complete()
print("trained on", args.data)
"""
SIX = """\
import six
from runyard import Run
Run.get_context().log("six", six.__version__)
"""


def cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m runyard.cli ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout, check=False)


def ok(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = cli(cwd, *args, timeout=timeout)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def as_json(cwd: Path, *args: str) -> Any:
    return json.loads(ok(cwd, *args, "--json").stdout)


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("first-hour") / "proj"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    (folder / "six_user.py").write_text(SIX)
    ok(folder, "init")
    return folder


@pytest.fixture(scope="module")
def two_runs(proj: Path) -> list[str]:
    ok(proj, "run", "submit", "-e", "cmp", "--wait", "train.py", "--data", "a", "--lr", "0.1")
    ok(proj, "run", "submit", "-e", "cmp", "--tag", "note=x", "--wait", "train.py", "--data",
       "b", "--lr=0.5")
    return [r["runId"] for r in reversed(as_json(proj, "run", "list", "-e", "cmp"))]


def test_the_readme_quickstart_runs_verbatim(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    lines = [ln.split("  #", 1)[0].strip() for ln in block.group(1).splitlines()]
    assert lines[0] == "pip install -e ."  # done: this test runs in that install
    script = ["set -euo pipefail",
              f'runyard() {{ "{sys.executable}" -m runyard.cli "$@"; }}',
              "last() { runyard run list --json | python3 -c "
              "'import json,sys; print(json.load(sys.stdin)[int(sys.argv[1])][\"runId\"])' $1; }"]
    for line in lines[1:]:
        if line:
            line = line.replace("<run-id> <run-id>", "$(last 1) $(last 0)")
            script.append(line.replace("<run-id>", "$(last 0)"))
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    assert "mean accuracy over 5 folds" in out and "mean accuracy over 3 folds" in out
    assert out.count("Completed: script exited with code 0") == 3  # two submits, logs -f
    assert re.search(r"arg C\s+0\.5\s+2\b", out), out
    project = tmp_path / "my-project"
    assert (project / ".gitignore").read_text().splitlines()[-1] == ".runyard/"
    downloads = list((project / ".runyard" / "downloads").glob("*/outputs/model.pkl"))
    assert len(downloads) == 1
    assert sorted(p.name for p in project.iterdir()) == [
        ".gitignore", ".runyard", "requirements.txt", "train.py"]  # nothing written into it
    # the Quickstart's Python example, verbatim, in the same project (its environment is the
    # one the CLI built: the same requirements, so it is reused)
    py_block = re.search(r"```python\n(.*?)```", section, re.S)
    assert py_block is not None and "Workspace.from_config()" in py_block.group(1)
    py = subprocess.run([sys.executable, "-c", py_block.group(1)], cwd=project, env=ENV,
                        capture_output=True, text=True, timeout=300, check=False)
    assert py.returncode == 0, py.stdout + py.stderr
    assert "Completed: script exited with code 0" in py.stdout
    assert "'mean_accuracy': 0.9" in py.stdout and "'outputs/model.pkl'" in py.stdout


def test_a_failed_runs_error_carries_the_argparse_message(proj: Path) -> None:
    proc = cli(proj, "run", "submit", "-e", "argfail", "--wait", "train.py")
    assert proc.returncode == 1
    needed = "train.py: error: the following arguments are required: --data"
    assert f"Failed: The script exited with code 2. {needed}" in proc.stdout
    assert f"ended Failed: The script exited with code 2. {needed}" in proc.stderr
    (run,) = as_json(proj, "run", "list", "-e", "argfail")
    d = as_json(proj, "run", "show", run["runId"])
    assert d["error"]["output_tail"].endswith(needed)
    assert needed in ok(proj, "run", "show", run["runId"]).stdout


def test_run_show_lists_children_and_metric_statistics(proj: Path,
                                                       two_runs: list[str]) -> None:
    d = as_json(proj, "run", "show", two_runs[0])
    assert d["metricStats"]["loss"] == {"kind": "scalar", "count": 4, "min": 0.1,
                                        "max": pytest.approx(0.4), "last": 0.1}
    assert d["metricStats"]["tries"]["last"] == 3
    assert sorted(c["status"] for c in d["children"]) == ["Completed", "Completed"]
    shown = ok(proj, "run", "show", two_runs[0]).stdout
    assert re.search(r"loss\s+4\s+0\.1\s+0\.4\s+0\.1", shown), shown
    assert "Child runs" in shown
    for child in d["children"]:
        assert child["runId"] in shown


def test_run_compare_puts_runs_side_by_side(proj: Path, two_runs: list[str]) -> None:
    data = as_json(proj, "run", "compare", *two_runs)
    rows = {r["field"]: r["values"] for r in data["rows"]}
    assert data["runIds"] == two_runs
    assert rows["status"] == ["Completed", "Completed"]
    assert rows["arg data"] == ["a", "b"] and rows["arg lr"] == ["0.1", "0.5"]
    assert rows["tag note"] == [None, "x"]
    assert rows["metric loss"] == [pytest.approx(0.1), pytest.approx(0.5)]
    table = ok(proj, "run", "compare", *two_runs).stdout
    assert re.search(r"metric loss\s+0\.1\s+0\.5", table), table
    one = cli(proj, "run", "compare", two_runs[0])
    assert one.returncode == 2 and "at least two run ids" in one.stderr


def test_submit_environment_options(proj: Path, tmp_path: Path) -> None:
    req = proj / "requirements.txt"
    req.write_text("six==1.16.0\n")
    ok(proj, "run", "submit", "-e", "envs", "--wait", "--pip-requirements", "requirements.txt",
       "six_user.py", timeout=300)
    (run,) = as_json(proj, "run", "list", "-e", "envs")
    d = as_json(proj, "run", "show", run["runId"])
    assert d["metrics"]["six"] == "1.16.0"
    assert d["properties"]["environment_builder"] == "uv"

    both = cli(proj, "run", "submit", "--pip-requirements", "requirements.txt",
               "--environment", "x", "six_user.py")
    assert both.returncode == 2
    assert "--pip-requirements and --environment exclude each other" in both.stderr
    missing = cli(proj, "run", "submit", "--conda-file", "nope.yml", "six_user.py")
    assert missing.returncode == 2 and "--conda-file" in missing.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\ndependencies:\n  - foo: [\n")
    broken = cli(proj, "run", "submit", "--conda-file", str(bad), "six_user.py")
    assert broken.returncode == 2
    assert broken.stderr.startswith("error: --conda-file: ") and "not valid YAML" in \
        broken.stderr
    unknown = cli(proj, "run", "submit", "--environment", "no-such-env:3", "six_user.py")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: --environment: ")
    assert as_json(proj, "run", "list", "-e", "envs") == [run]  # nothing more was stored


def test_init_in_a_git_repository_ignores_the_workspace_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sub = repo / "project"
    sub.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (sub / ".gitignore").write_text("*.pyc")  # no final newline
    first = ok(sub, "init")
    assert f"added .runyard/ to {sub / '.gitignore'}" in first.stdout
    ok(sub, "init", "--exist-ok")
    assert (sub / ".gitignore").read_text() == (
        "*.pyc\n# runyard workspace (database, snapshots, runs)\n.runyard/\n")
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=repo, capture_output=True, text=True, check=True).stdout
    assert ".runyard" not in status

    plain = tmp_path / "not-git"
    plain.mkdir()
    assert "gitignore" not in ok(plain, "init").stdout
    assert not (plain / ".gitignore").exists()


def test_download_never_writes_into_the_source_folder(proj: Path, two_runs: list[str],
                                                      tmp_path: Path) -> None:
    before = sorted(p.name for p in proj.iterdir())
    run_id = two_runs[0]
    here = ok(proj, "run", "download", run_id)
    dest = proj / ".runyard" / "downloads" / run_id
    assert (dest / "system_logs" / "driver_log.txt").is_file()
    assert f"written to {dest}" in here.stderr
    assert sorted(p.name for p in proj.iterdir()) == before
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok(elsewhere, "-w", str(proj), "run", "download", run_id)
    assert (elsewhere / run_id / "system_logs" / "driver_log.txt").is_file()
