"""``runyard dataset list|show|register|download`` end to end: real CLI subprocesses on a real
workspace with a local-folder datastore."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env["RUNYARD_CONFIG_HOME"] = str(cwd.parent / "config")
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def as_json(cwd: Path, *args: str) -> Any:
    proc = cli(cwd, *args, "--json")
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_dataset_commands(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    lake = tmp_path / "lake"
    (lake / "train").mkdir(parents=True)
    (lake / "train" / "a.csv").write_text("x,y\n1,2\n")
    (lake / "train" / "b.csv").write_text("x,y\n3,4\n")
    assert cli(proj, "init", "--name", "ws").returncode == 0
    assert cli(proj, "datastore", "register-local", "lake", str(lake)).returncode == 0

    reg = as_json(proj, "dataset", "register", "--datastore", "lake", "--path", "train/*.csv",
                  "--tabular", "--name", "tr", "--tag", "k=v")
    assert reg["id"] == "tr:1" and reg["kind"] == "tabular" and reg["fileCount"] == 2
    assert reg["tags"] == {"k": "v"} and reg["totalSize"] == 16
    again = cli(proj, "dataset", "register", "--datastore", "lake", "--path", "train/a.csv",
                "--name", "tr")
    assert again.returncode != 0 and "create_new_version" in again.stderr
    v2 = as_json(proj, "dataset", "register", "--datastore", "lake", "--path", "train/a.csv",
                 "--name", "tr", "--new-version")
    assert v2["id"] == "tr:2" and v2["kind"] == "file"
    assert [d["id"] for d in as_json(proj, "dataset", "list")] == ["tr:2", "tr:1"]
    assert [d["id"] for d in as_json(proj, "dataset", "list", "--latest")] == ["tr:2"]
    shown = as_json(proj, "dataset", "show", "tr", "--version", "1")
    assert [f["path"] for f in shown["files"]] == ["train/a.csv", "train/b.csv"]
    assert shown["files"][0]["sha256"] == hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    got = as_json(proj, "dataset", "download", "tr", "--version", "1", "--target", "dl")
    assert sorted(Path(p).name for p in got["paths"]) == ["a.csv", "b.csv"]
    assert (proj / "dl" / "b.csv").read_text() == "x,y\n3,4\n"
    text = cli(proj, "dataset", "list")
    assert text.returncode == 0 and "tr" in text.stdout

    nothing = cli(proj, "dataset", "register", "--datastore", "lake", "--path", "*.json",
                  "--name", "j")
    assert nothing.returncode != 0 and "matches no file on datastore 'lake'" in nothing.stderr
    up = cli(proj, "dataset", "register", "--datastore", "lake", "--path", "../x",
             "--name", "j")
    assert up.returncode != 0 and "leaves the datastore" in up.stderr
    no_ds = cli(proj, "dataset", "register", "--datastore", "nope", "--path", "x",
                "--name", "j")
    assert no_ds.returncode != 0 and "nope" in no_ds.stderr
    missing = cli(proj, "dataset", "show", "tr", "--version", "9")
    assert missing.returncode != 0 and "no version 9" in missing.stderr
    assert [d["id"] for d in as_json(proj, "dataset", "list")] == ["tr:2", "tr:1"]
