"""``runyard datastore`` end to end: real subprocesses, a real workspace, a real Azurite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datastores_support import ACCOUNT, KEY, Azurite

pytestmark = pytest.mark.e2e

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), e.get("PYTHONPATH")) if p)
    e["RUNYARD_CONFIG_HOME"] = str(tmp_path / "config")
    return e


def cli(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None,
        rc: int = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=env,
                       input=stdin, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == rc, (p.stdout, p.stderr)
    return p


def test_datastore_cli(tmp_path: Path, env: dict[str, str], azurite: Azurite) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    cli(ws, env, "init", "--name", "dsws")
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(4):
        (data / ("sub" if i % 2 else "") / f"f{i}.csv").write_text(f"x\n{i}\n")
    listed = json.loads(cli(ws, env, "datastore", "list", "--json").stdout)
    assert [(d["name"], d["is_default"]) for d in listed] == [("workspaceblobstore", True)]

    up = json.loads(cli(ws, env, "datastore", "upload", str(data), "-t", "raw",
                        "--json").stdout)
    assert up == {"datastore": "workspaceblobstore", "path": "raw", "uploaded": 4,
                  "unchanged": 0, "kept": 0, "bytes": 16}
    again = json.loads(cli(ws, env, "datastore", "upload", str(data), "-t", "raw",
                           "--json").stdout)
    assert again["uploaded"] == 0 and again["unchanged"] == 4

    bad = cli(ws, env, "datastore", "upload", str(data), "-t", "../out", rc=2)
    assert "target_path" in bad.stderr and "Traceback" not in bad.stderr

    wrong = cli(ws, env, "datastore", "register-blob", "blobs", "--container", "c01",
                "--account", ACCOUNT, "--endpoint", azurite.url, "--account-key-stdin",
                "--create-if-not-exists", stdin=KEY[:-8] + "AAAAAAA=\n", rc=2)
    assert "account_key" in wrong.stderr and KEY[:16] not in wrong.stderr + wrong.stdout
    reg = cli(ws, env, "datastore", "register-blob", "blobs", "--container", "c01",
              "--account", ACCOUNT, "--endpoint", azurite.url, "--account-key-stdin",
              "--create-if-not-exists", "--json", stdin=KEY + "\n")
    shown = cli(ws, env, "datastore", "show", "blobs", "--json")
    listed_text = cli(ws, env, "datastore", "list", "--json").stdout
    plain = cli(ws, env, "datastore", "show", "blobs").stdout
    for text in (reg.stdout, reg.stderr, shown.stdout, listed_text, plain):
        assert KEY not in text and KEY[:16] not in text
    assert json.loads(shown.stdout)["container_name"] == "c01"

    cli(ws, env, "datastore", "upload", str(data), "-d", "blobs", "-t", "raw")
    down = json.loads(cli(ws, env, "datastore", "download", str(tmp_path / "out"), "-d",
                          "blobs", "-p", "raw", "--json").stdout)
    assert down["downloaded"] == 4
    assert (tmp_path / "out" / "raw" / "sub" / "f1.csv").read_text() == "x\n1\n"
    missing = cli(ws, env, "datastore", "show", "nope", rc=2)
    assert "nope" in missing.stderr
