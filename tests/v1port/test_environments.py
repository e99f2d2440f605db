"""Issue 11, items 2, 5 and 6 (environments), as a v1 user meets them.

The control code imports ``runyard.compat.azureml`` only; the training script
(``scripts/environments/train.py``) is unchanged v1 code: ``from azureml.core import Run``.
Its environment is v1's too: an ``environment.yml`` pinning ``python=3.6.2`` with
``azureml-defaults``/``azureml-core``, and ``docker.enabled = True`` on ``DEFAULT_CPU_IMAGE``,
as v1 required on remote targets. Here (no container engine) uv builds it, python is raised to
the oldest available one, the SDK packages are dropped, and the script's metrics reach runyard.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.compat.azureml.core import Environment, Experiment, ScriptRunConfig, Workspace
from runyard.compat.azureml.core.runconfig import DEFAULT_CPU_IMAGE
from runyard.errors import NotFound

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parent / "scripts" / "environments"


def _engine_running() -> bool:
    for name in ("docker", "podman"):
        exe = shutil.which(name)
        if exe and subprocess.run([exe, "info"], capture_output=True,
                                  timeout=20).returncode == 0:
            return True
    return False


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    w = Workspace.create("v1-envs-ws", path=tmp_path_factory.mktemp("v1envs"))
    yield w
    w.close()


def _log(ws: Workspace, run_id: str) -> str:
    return (ws.run_dir(run_id) / "artifacts/system_logs/driver_log.txt").read_text()


@pytest.mark.skipif(_engine_running(), reason="a container engine runs here, so the v1 "
                    "environment is built as an image, not with uv")
def test_v1_environment_with_docker_and_python_3_6(ws: Workspace) -> None:
    env = Environment.from_conda_specification("sklearn-env",
                                               str(SCRIPTS / "environment.yml"))
    env.docker.enabled = True
    env.docker.base_image = DEFAULT_CPU_IMAGE
    src = ScriptRunConfig(source_directory=str(SCRIPTS), script="train.py",
                          arguments=["--epochs", 3], compute_target="local", environment=env)
    run = Experiment(workspace=ws, name="v1-environments").submit(src)
    run.wait_for_completion(show_output=False)
    assert run.get_status() == "Completed"
    metrics = run.get_metrics()
    assert metrics["loss"] == [1.0, 0.5, 1.0 / 3] and metrics["six"] == "1.16.0"
    props = run.get_properties()
    assert props["runyard.container_fallback"] == "uv: no container engine on target"
    assert props["runyard.python_raised"].startswith("3.6.2 -> ")
    raised_to = props["runyard.python_raised"].split(" -> ")[1]
    assert raised_to.startswith(metrics["python"] + ".")
    assert tuple(int(x) for x in metrics["python"].split(".")) >= (3, 8)
    assert "outputs/model.txt" in run.get_file_names()
    log = _log(ws, run.id)
    assert "dropped azureml-defaults, azureml-core: runyard provides the azureml import " \
           "path" in log


def test_curated_environment_by_its_v1_name(ws: Workspace) -> None:
    env = Environment.get(workspace=ws, name="AzureML-Minimal")
    assert "AzureML-Minimal" in Environment.list(workspace=ws)
    src = ScriptRunConfig(source_directory=str(SCRIPTS), script="train.py",
                          compute_target="local", environment=env)
    run = Experiment(workspace=ws, name="v1-environments").submit(src)
    run.wait_for_completion(show_output=False)
    assert run.get_status() == "Completed"
    assert run.get_metrics()["loss"] == [1.0, 0.5]
    assert run.get_metrics()["six"] == "absent"  # Minimal is minimal
    with pytest.raises(NotFound, match="closest: AzureML-Minimal"):
        Environment.get(workspace=ws, name="AzureML-Minmal")
