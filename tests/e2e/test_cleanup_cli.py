"""``runyard run delete`` and ``runyard gc`` end to end: real CLI subprocesses on a real
workspace (issue 11 item 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

TRAIN = """\
import os
from runyard import Run
Run.get_context().log("loss", 0.5)
os.makedirs("outputs", exist_ok=True)
open("outputs/model.bin", "wb").write(os.urandom(200_000))
"""
SLEEP = "import time\ntime.sleep(60)\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def cli(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=120, check=False,
                          input=input)


def ok(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = cli(cwd, *args, input=input)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def as_json(cwd: Path, *args: str) -> Any:
    return json.loads(ok(cwd, *args, "--json").stdout)


def submit(folder: Path, script: str, *, wait: bool = True) -> str:
    args = ["run", "submit", "-e", "gc", *(["--wait"] if wait else []), script]
    proc = cli(folder, *args)
    assert proc.returncode == 0, proc.stderr
    runs = as_json(folder, "run", "list", "-e", "gc")
    return str(runs[0]["runId"])


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    (folder / "sleep.py").write_text(SLEEP)
    (folder / "data.bin").write_bytes(os.urandom(1_000_000))
    ok(folder, "init")
    return folder


def test_run_delete_lists_asks_and_deletes(proj: Path) -> None:
    first = submit(proj, "train.py")
    second = submit(proj, "train.py")
    runs_dir = proj / ".runyard" / "runs"
    assert (runs_dir / first / "artifacts/outputs/model.bin").is_file()
    assert not (runs_dir / first / "wd").exists()  # the working copy went with the run

    # bad input: named, exit 2, nothing removed
    bad = cli(proj, "run", "delete", first, "no-such-run", "--yes")
    assert bad.returncode == 2 and "no-such-run" in bad.stderr and "Traceback" not in bad.stderr
    assert (runs_dir / first).is_dir()

    # without --yes it asks; "n" keeps everything
    no = cli(proj, "run", "delete", first, input="n\n")
    assert no.returncode == 1 and first in no.stdout and "Delete 1 run(s)?" in no.stderr
    assert (runs_dir / first).is_dir()

    done = ok(proj, "run", "delete", first, input="y\n")
    assert "freed" in done.stdout and first in done.stdout
    assert not (runs_dir / first).exists()
    gone = cli(proj, "run", "show", first)
    assert gone.returncode == 2 and first in gone.stderr
    assert [r["runId"] for r in as_json(proj, "run", "list", "-e", "gc")] == [second]

    # a live run is refused with what to do
    live = submit(proj, "sleep.py", wait=False)
    deadline = time.monotonic() + 30
    while as_json(proj, "run", "show", live)["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    refused = cli(proj, "run", "delete", live, "--yes")
    assert refused.returncode == 2 and "cancel it first" in refused.stderr
    ok(proj, "run", "cancel", live)
    report = as_json(proj, "run", "delete", live, second, "--yes")
    assert {r["name"] for r in report["removed"]} == {live, second}
    assert report["total_bytes"] > 200_000


def test_gc_dry_run_then_removes_old_runs_snapshots_and_environments(proj: Path) -> None:
    old = submit(proj, "train.py")
    data = proj / ".runyard"
    # a built environment nobody uses, last used long ago (as the env cache records it)
    env = data / "envs" / ".builds" / "0123abcd-x"
    env.mkdir(parents=True)
    (env / "lib.so").write_bytes(os.urandom(50_000))
    (env / ".runyard-env.json").write_text(json.dumps({"format": 1, "key": "0123abcd"}))
    os.symlink(".builds/0123abcd-x", data / "envs" / "0123abcd")
    # age everything by three days: the run, its snapshot, the environment
    then = time.time() - 3 * 86400
    for path in [*(data / "snapshots" / "manifests").iterdir(), env / ".runyard-env.json"]:
        os.utime(path, (then, then))
    import sqlite3  # the run ended three days ago (the store's own clock field)

    with sqlite3.connect(data / "runyard.db") as db:
        db.execute("UPDATE runs SET end_time = end_time - ?, created_at = created_at - ? "
                   "WHERE id = ?", (3 * 86400, 3 * 86400, old))

    for bad in ("-1", "soon"):
        proc = cli(proj, "gc", "--older-than", bad, "--yes")
        assert proc.returncode == 2 and "--older-than" in proc.stderr, proc.stderr

    recent = ok(proj, "gc", "--older-than", "7", "--dry-run")
    assert "nothing to remove" in recent.stderr

    dry = as_json(proj, "gc", "--older-than", "1", "--dry-run")
    kinds = {r["kind"] for r in dry["removed"]}
    assert {"run", "snapshot", "blob", "environment"} <= kinds, dry
    assert dry["dry_run"] and dry["total_bytes"] > 1_000_000
    assert (data / "runs" / old).is_dir() and env.is_dir()  # a dry run removes nothing

    proc = ok(proj, "gc", "--older-than", "1", "--yes")
    assert "freed" in proc.stdout and old in proc.stdout and "environment" in proc.stdout
    assert not (data / "runs" / old).exists() and not env.exists()
    assert not list((data / "snapshots" / "manifests").iterdir())
    blobs = [p for p in (data / "snapshots" / "blobs").rglob("*") if p.is_file()]
    assert blobs == []
    # the workspace still works: the next run snapshots again
    submit(proj, "train.py")
