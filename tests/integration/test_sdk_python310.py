"""The SDK and CLI on Python 3.10, their floor (``requires-python >= 3.10``), for real.

A venv of the oldest Python 3.10 on this machine (the pyenv build the machine image ships, or
``python3.10`` on PATH; ``RUNYARD_TEST_PY310`` names another) gets ``pip install -e .`` (base
dependencies only; cached in ``.test-py310/`` until pyproject.toml changes). Then, on 3.10: the
CLI creates a workspace, and the SDK submits a local run, waits for it and reads its metrics.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python310() -> str:
    named = os.environ.get("RUNYARD_TEST_PY310")
    if named:
        return named
    found = sorted(Path("/root/.pyenv/versions").glob("3.10.*/bin/python"))
    if found:
        return str(found[0])
    exe = shutil.which("python3.10")
    if exe is None:
        pytest.fail("no Python 3.10 here (looked in /root/.pyenv/versions and PATH): set "
                    "RUNYARD_TEST_PY310 to one", pytrace=False)
    return exe


def venv310() -> Path:
    venv = ROOT / ".test-py310"
    stamp = venv / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want and (venv / "bin/python").is_file():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python310(), "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "-q",
                    "--disable-pip-version-check", "-e", str(ROOT)], check=True, timeout=600)
    stamp.write_text(want)
    return venv


SMOKE = """
    import sys
    from pathlib import Path
    from runyard import Experiment, ScriptRunConfig, Workspace
    assert sys.version_info[:2] == (3, 10), sys.version
    ws = Workspace.from_config(sys.argv[1])
    src = Path(sys.argv[2])
    run = Experiment(ws, "py310").submit(ScriptRunConfig(str(src), "train.py"))
    details = run.wait_for_completion()
    assert details["status"] == "Completed", run.get_details()
    print("METRICS", run.get_metrics())
    ws.close()
"""


def test_sdk_and_cli_on_python_310(tmp_path: Path) -> None:
    venv = venv310()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["RUNYARD_CONFIG_HOME"] = str(tmp_path / "config")
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    out = subprocess.run([str(venv / "bin/runyard"), "init"], cwd=ws_dir, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    src = tmp_path / "project"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent("""
        import sys
        from runyard import Run
        run = Run.get_context()
        run.log("minor", sys.version_info[1])
        run.log("loss", 0.25)
    """))
    (tmp_path / "smoke.py").write_text(textwrap.dedent(SMOKE))
    res = subprocess.run([str(venv / "bin/python"), str(tmp_path / "smoke.py"), str(ws_dir),
                          str(src)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    # the script ran in the submitting interpreter (3.10), and metrics came back typed
    line = next(x for x in res.stdout.splitlines() if x.startswith("METRICS "))
    assert ast.literal_eval(line[len("METRICS "):]) == {"minor": 10, "loss": 0.25}
