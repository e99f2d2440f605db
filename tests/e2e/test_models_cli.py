"""``runyard model list|show|register|download|delete`` end to end: real CLI subprocesses on a
real workspace."""

from __future__ import annotations

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
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def as_json(cwd: Path, *args: str) -> Any:
    proc = cli(cwd, *args, "--json")
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_model_commands(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    assert cli(proj, "init", "--name", "ws").returncode == 0
    (proj / "model.pkl").write_bytes(b"weights")
    reg = as_json(proj, "model", "register", "model.pkl", "--name", "clf", "--tag", "k=v",
                  "--property", "acc=0.9")
    assert reg["id"] == "clf:1" and reg["tags"] == {"k": "v"}
    assert as_json(proj, "model", "register", "model.pkl", "--name", "clf")["version"] == 2
    listed = as_json(proj, "model", "list")
    assert [m["id"] for m in listed] == ["clf:2", "clf:1"]
    assert [m["id"] for m in as_json(proj, "model", "list", "--tag", "k=v")] == ["clf:1"]
    shown = as_json(proj, "model", "show", "clf", "--version", "1")
    assert shown["files"][0]["path"] == "model.pkl" and shown["sizeBytes"] == 7
    got = as_json(proj, "model", "download", "clf", "--target", "dl")
    assert Path(proj / got["path"]).read_bytes() == b"weights"
    again = cli(proj, "model", "download", "clf", "--target", "dl")
    assert again.returncode != 0 and "exist_ok" in again.stderr
    bad = cli(proj, "model", "register", "nope.pkl", "--name", "clf")
    assert bad.returncode != 0 and 'provided model path "nope.pkl" cannot be found' in bad.stderr
    bad = cli(proj, "model", "register", "model.pkl", "--name", "-bad")
    assert bad.returncode != 0 and "model_name" in bad.stderr
    assert as_json(proj, "model", "delete", "clf", "--version", "1") == {"deleted": "clf:1"}
    assert [m["id"] for m in as_json(proj, "model", "list")] == ["clf:2"]
    missing = cli(proj, "model", "show", "clf", "--version", "1")
    assert missing.returncode != 0 and "version 1 of model 'clf'" in missing.stderr
