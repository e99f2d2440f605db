"""The runtime on Pythons older and newer than the SDK's, each a real interpreter.

The runtime floor is 3.8 (``scripts/pyfloor`` checks it statically on every file of the
bundle). Real interpreters here: Debian bullseye's python3.9 (scripts/test installs it with
``runyard_old_python`` from scripts/_env.sh; ``RUNYARD_TEST_OLD_PYTHON`` names another one) and
the pyenv builds the machine image ships (3.8, 3.9, 3.10, 3.12, 3.13 under /root/.pyenv).

* local: a user-managed environment whose interpreter is that Python runs a script doing
  ``from runyard import Run; Run.get_context().log(...)``; the metrics arrive (every
  interpreter found, 3.8 included).
* SSH: a host whose python is that Python attaches, and the runner, the host agent and the
  script all run on it; a python that passes the version check but cannot import the runtime
  is refused at attach, naming the python and its version.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sshhost import SSHHost, running_host

from runyard import Experiment, Run, ScriptRunConfig, Workspace
from runyard.computetarget import ComputeTarget, RemoteCompute
from runyard.errors import ComputeTargetInvalid
from support import write

OLD_PYTHON = os.environ.get("RUNYARD_TEST_OLD_PYTHON", "/usr/bin/python3.9")

SCRIPT = """
    import os, sys
    from runyard import Run
    run = Run.get_context()
    run.log("python", ".".join(map(str, sys.version_info[:3])))
    for i in range(3):
        run.log("loss", 1.0 / (i + 1))
    run.log("epochs", 3)
    run.log_list("accuracy", [0.5, 0.75])
    run.log_row("table", step=1, value=0.5)
    run.tag("interpreter", sys.executable)
    run.tag("parent", os.path.realpath("/proc/%d/exe" % os.getppid()))  # the runner's python
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/done.txt", "w") as fh:
        fh.write("ok")
    print("ran on", sys.version.split()[0], flush=True)
"""


def old_python_version() -> str:
    """The version of OLD_PYTHON (fails, never skips, when it is missing)."""
    try:
        out = subprocess.run([OLD_PYTHON, "-c", "import sys; print('%d.%d.%d' % "
                              "sys.version_info[:3])"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"{OLD_PYTHON} does not run ({exc}): scripts/test installs it "
                    "(runyard_old_python in scripts/_env.sh, needs root on Debian), or set "
                    "RUNYARD_TEST_OLD_PYTHON to a Python 3.8 to 3.10", pytrace=False)
    assert (3, 8) <= tuple(map(int, out.split(".")[:2])) < (3, 11), \
        f"{OLD_PYTHON} is {out}: this test is about a Python older than the SDK's (3.8 to 3.10)"
    return out


def more_pythons() -> list[str]:
    """Other real interpreters this machine image ships (pyenv builds), newest minor each:
    the runtime runs on every one of them in ``test_local_run_on_each_python_here``."""
    found: dict[str, str] = {}
    root = Path("/root/.pyenv/versions")
    for d in sorted(root.glob("3.*")) if root.is_dir() else []:
        parts = d.name.split(".")
        usable = len(parts) == 3 and all(x.isdigit() for x in parts)
        if usable and (d / "bin/python").is_file() and int(parts[1]) >= 8 and parts[1] != "11":
            found[".".join(parts[:2])] = str(d / "bin/python")
    return [found[k] for k in sorted(found, key=lambda v: tuple(map(int, v.split("."))))]



def check_run(run: Run, version: str, python: str = OLD_PYTHON) -> None:
    details = run.wait_for_completion()
    assert details["status"] == "Completed", run.get_details()
    metrics = run.get_metrics()
    assert metrics["python"] == version
    assert metrics["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert metrics["epochs"] == 3
    assert metrics["accuracy"] == [0.5, 0.75]
    assert metrics["table"] == {"step": [1], "value": [0.5]}
    assert run.get_tags()["interpreter"] == python
    assert "outputs/done.txt" in run.get_file_names()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    w = Workspace.create("old-python", tmp_path / "ws")
    yield w
    w.close()


def test_local_run_with_the_runtime_on_an_old_python(ws: Workspace, tmp_path: Path) -> None:
    version = old_python_version()
    src = tmp_path / "project"
    write(src, "train.py", SCRIPT)
    cfg = ScriptRunConfig(str(src), "train.py")
    cfg.run_config.environment.python.user_managed_dependencies = True
    cfg.run_config.environment.python.interpreter_path = OLD_PYTHON
    run = Experiment(ws, "old-python").submit(cfg)
    check_run(run, version)
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert f"ran on {version}" in log


@pytest.mark.parametrize("python", more_pythons() or [OLD_PYTHON])
def test_local_run_on_each_python_here(ws: Workspace, tmp_path: Path, python: str) -> None:
    """The runtime on every other interpreter the machine has, 3.8 (the floor) up to 3.13."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30,
                             check=True).stdout.strip()
    src = tmp_path / "project"
    write(src, "train.py", SCRIPT)
    cfg = ScriptRunConfig(str(src), "train.py")
    cfg.run_config.environment.python.user_managed_dependencies = True
    cfg.run_config.environment.python.interpreter_path = python
    run = Experiment(ws, "pythons").submit(cfg)
    check_run(run, version, python)


# -- SSH host ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def host() -> Iterator[SSHHost]:
    with running_host("the old-python SSH tests") as h:
        yield h


def attach(ws: Workspace, h: SSHHost, **more: Any) -> ComputeTarget:
    cfg = RemoteCompute.attach_configuration(
        address=h.address, ssh_port=h.port, username=h.username,
        private_key_file=str(h.key_file), known_hosts_file=str(h.known_hosts), **more)
    return ComputeTarget.attach(ws, "box", cfg)


def test_ssh_host_whose_python_is_old_runs_the_runtime(ws: Workspace, host: SSHHost,
                                                      tmp_path: Path) -> None:
    version = old_python_version()
    target = attach(ws, host, python=OLD_PYTHON)
    assert target.config["python"] == OLD_PYTHON
    assert target.config["host_info"]["python_version"] == version
    src = tmp_path / "project"
    write(src, "train.py", SCRIPT)
    run = Experiment(ws, "old-python").submit(
        ScriptRunConfig(str(src), "train.py", compute_target="box"))
    check_run(run, version)
    # the host agent starts the runner with the python it runs on (the configured one)
    assert run.get_tags()["parent"] == os.path.realpath(OLD_PYTHON)
    assert [e["status"] for e in run.get_events()] == [
        "Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"]
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert f"ran on {version}" in log


def test_attach_refuses_a_python_that_cannot_import_the_runtime(ws: Workspace, host: SSHHost,
                                                               tmp_path: Path) -> None:
    # A real interpreter that passes the version check and runs the agent's probe, but cannot
    # import the runtime: on this host a broken `uuid` module shadows the standard library's
    # (the runtime imports uuid; the probe does not).
    version = old_python_version()
    folder = Path(tempfile.mkdtemp(prefix="broken-python-", dir=host.base))
    folder.chmod(0o755)  # the host's user reads it (pytest's tmp_path is private to root)
    shadow = write(folder, "shadow/uuid.py", 'raise ImportError("uuid is broken on this host")\n')
    wrapper = write(folder, "bin/python3",
                    f'#!/bin/sh\nPYTHONPATH={shadow.parent} exec {OLD_PYTHON} "$@"\n')
    wrapper.chmod(0o755)
    with pytest.raises(ComputeTargetInvalid) as err:
        attach(ws, host, python=str(wrapper))
    msg = str(err.value)
    assert err.value.field == "python"
    assert f"{wrapper}: python {version} cannot run runyard's runtime (importing " in msg
    assert "ImportError: uuid is broken on this host" in msg
    assert "needs python >= 3.8 on the host that can import its runtime" in msg
    assert ws.store.list_compute_targets() == []
