"""Azure ML v1 environments on runyard (issue 11, items 2, 5, 6), with real uv builds and runs.

* ``azureml-*`` packages are dropped from system-managed specs (the hash ignores them, the build
  log says so) and an ``azureml`` alias of ``runyard.compat.azureml`` is on the script's path,
  so ``from azureml.core import Run`` in an unchanged training script logs to runyard;
* a user-managed interpreter whose ``azureml`` is the real SDK: the SDK's offline-run lines fail
  the run loudly;
* curated environments (``AzureML-Minimal`` ...): listed, returned, built, read-only;
* ``docker.enabled`` where no container engine runs: built with uv instead (warning, property),
  and a python pin nothing here provides is raised; ``strict_environments`` refuses both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard import (
    Environment,
    Experiment,
    InvalidParameter,
    NotFound,
    Run,
    ScriptRunConfig,
    Workspace,
)
from runyard.environments import CondaDependencies
from runyard.environments.curated import CURATED
from runyard.environments.spec import environment_request, normalize
from runyard.runtime import bundle, envbuild
from runyard.runtime.azureml_alias import offline_sdk_lines
from support import set_config, write

ROOT = Path(__file__).resolve().parents[2]

#: An unchanged v1 training script: it imports the Azure ML SDK's names.
V1_TRAIN = """
    import sys
    from azureml.core import Run
    from azureml.core.run import Run as RunToo
    import azureml.core

    run = Run.get_context()
    assert RunToo is Run and azureml.core.Run is Run
    run.log("accuracy", 0.91)
    run.log("python", ".".join(map(str, sys.version_info[:3])))
    print("trained in", sys.prefix)
"""



def pip_env(name: str, *packages: str, python: str | None = None) -> Environment:
    deps: list[Any] = [f"python={python}"] if python else []
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies(
        _underlying_structure={"name": name, "dependencies": [*deps, {"pip": list(packages)}]})
    return env


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One workspace (and environment cache: uv is bootstrapped once) for this module."""
    w = Workspace.create("envs-v1", tmp_path_factory.mktemp("ws"), max_concurrent_runs=4)
    yield w
    w.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    write(folder, "train.py", V1_TRAIN)
    return folder


def run_in(ws: Workspace, src: Path, env: Environment | None) -> Run:
    run = Experiment(ws, "v1-envs").submit(ScriptRunConfig(src, "train.py", environment=env))
    run.wait_for_completion(timeout=300, raise_on_error=False)
    return run


def driver_log(ws: Workspace, run: Run) -> str:
    return (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()


# -- item 2: azureml-* dropped, the alias on the path -----------------------------------------
def test_azureml_packages_are_dropped_before_hashing() -> None:
    plain = pip_env("e", "six==1.16.0")
    v1 = pip_env("e", "azureml-defaults==1.48.0", "six==1.16.0", "azureml-core",
                 "AzureML_DataPrep[pandas]>=4", "azureml.mlflow")
    v1.python.conda_dependencies.add_conda_package("azureml-sdk")
    spec = normalize(v1)
    assert spec is not None and spec.pip_packages == ("six==1.16.0",)
    assert spec.conda_packages == ()
    assert spec.spec_hash == normalize(plain).spec_hash  # type: ignore[union-attr]
    request = environment_request(v1)
    assert request is not None
    assert request["plan"]["requirements"] == ["six==1.16.0"]
    assert request["plan"]["dropped"] == ["azureml-sdk", "azureml-defaults", "azureml-core",
                                          "azureml-dataprep", "azureml-mlflow"]
    assert "dropped" not in (environment_request(plain) or {})["plan"]
    # a package that only starts with the letters is kept
    assert normalize(pip_env("e", "azuremlish")).pip_packages == ("azuremlish",)  # type: ignore[union-attr]


def test_unchanged_training_script_logs_to_runyard_in_a_built_environment(
        ws: Workspace, src: Path, tmp_path: Path) -> None:
    write(tmp_path, "requirements.txt", "azureml-defaults\nazureml-core==1.48.0\nsix==1.16.0\n")
    env = Environment.from_pip_requirements("v1-reqs", tmp_path / "requirements.txt")
    run = run_in(ws, src, env)
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert run.get_metrics()["accuracy"] == 0.91
    log = driver_log(ws, run)
    assert ("[runyard env] dropped azureml-defaults, azureml-core: runyard provides the "
            "azureml import path") in log
    prefix = Path(log.split("trained in ", 1)[1].split()[0])
    assert prefix.parent == ws.context.env_cache_dir / ".builds"
    assert not list(prefix.glob("lib/python*/site-packages/azureml*"))  # nothing installed


def test_unchanged_training_script_in_the_default_environment(ws: Workspace,
                                                              src: Path) -> None:
    run = run_in(ws, src, None)
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert run.get_metrics()["accuracy"] == 0.91


def test_alias_runs_from_the_bundle_on_the_oldest_python(tmp_path: Path) -> None:
    """The alias is in the runtime bundle and works with only the bundle on the path, on the
    oldest interpreter found here (3.8 where pyenv has one)."""
    oldest = next((p for p in (Path("/root/.pyenv/versions/3.8.18/bin/python"),
                               shutil.which("python3.8"), Path(sys.executable))
                   if p and Path(p).is_file()), sys.executable)
    root = bundle.write_bundle(tmp_path / "bundle")
    alias = root / "runyard/runtime/azureml_alias"
    assert (alias / "azureml/__init__.py").is_file()
    code = ("import sys; from azureml.core import Run; import azureml.core.run as r; "
            "import runyard.run; assert Run is r.Run is runyard.run.Run; "
            "print(sys.version_info[:2], Run.get_context().id.startswith('OfflineRun'))")
    out = subprocess.run([str(oldest), "-I", "-c", f"import sys; sys.path[:0] = "
                          f"[{str(alias)!r}, {str(root)!r}]; exec({code!r})"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("True")
    bad = subprocess.run([str(oldest), "-I", "-c", f"import sys; sys.path[:0] = "
                          f"[{str(alias)!r}, {str(root)!r}]; import azureml.nothing_here"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert "No module named 'azureml.nothing_here'" in bad.stderr


# -- item 2: the real SDK in a user-managed interpreter ---------------------------------------
#: Stand-in for the real Azure ML SDK: it prints exactly what azureml-core's offline run prints
#: for ``run.log`` and ``run.upload_file`` outside Azure ML. Only the output text is the SDK's.
FAKE_SDK = '''
    class Run:
        @classmethod
        def get_context(cls):
            return cls()

        def log(self, name, value, description=""):
            print("Attempted to log scalar metric %s:\\n%s" % (name, value))

        def upload_file(self, name, path_or_stream):
            print("Attempted to track file %s at %s" % (name, path_or_stream))
'''


def test_user_managed_interpreter_with_the_real_sdk_fails_loudly(ws: Workspace,
                                                                  tmp_path: Path) -> None:
    """A user-managed interpreter keeps its own ``azureml`` (here a stand-in package in the
    source folder that prints the SDK's exact offline-run messages; the real SDK is 112
    packages): the run would end Completed with no metrics, so runyard fails it instead."""
    src = tmp_path / "um"
    write(src, "azureml/__init__.py", "")
    write(src, "azureml/core/__init__.py", FAKE_SDK)
    write(src, "train.py", """
        from azureml.core import Run
        run = Run.get_context()
        for epoch in range(3):
            run.log("loss", 1.0 / (epoch + 1))
        run.upload_file("model.pkl", "outputs/model.pkl")
    """)
    env = Environment("real-sdk")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = sys.executable
    run = run_in(ws, src, env)
    details = run.get_details()
    assert details["status"] == "Failed"
    msg = details["error"]["message"]
    assert "logged 4 values to the Azure ML SDK's offline run" in msg
    assert "from runyard import Run" in msg and "system-managed environment" in msg
    assert "scalar metric loss" in msg and "file model.pkl" in msg
    assert details["error"]["offline_sdk_values"] == 4
    assert run.get_metrics() == {}
    # the same script with runyard's Run completes (the runner's check is about the SDK only)
    write(src, "train.py", "from runyard import Run\nRun.get_context().log('loss', 0.5)\n")
    ok = run_in(ws, src, env)
    assert ok.get_status() == "Completed" and ok.get_metrics()["loss"] == 0.5


def test_offline_lines_are_counted_after_the_script_start_only(tmp_path: Path) -> None:
    log = tmp_path / "driver_log.txt"
    log.write_bytes(b"Attempted to log scalar metric before:\n1\n")
    start = log.stat().st_size
    with log.open("ab") as fh:
        fh.write(b"epoch 1\nAttempted to log list metric losses:\n[1, 2]\n"
                 b"  Attempted to log scalar metric indented:\n"
                 b"Attempted to track file m.pkl at outputs/m.pkl\n")
    assert offline_sdk_lines(log, start) == ["list metric losses", "file m.pkl"]
    assert offline_sdk_lines(log) == ["scalar metric before", "list metric losses",
                                      "file m.pkl"]


# -- item 5: curated environments -------------------------------------------------------------
def test_curated_environments_are_listed_returned_and_read_only(ws: Workspace) -> None:
    listed = Environment.list(ws)
    assert set(CURATED) <= set(listed) and len(CURATED) >= 10
    minimal = Environment.get(ws, "AzureML-Minimal")
    assert (minimal.name, minimal.version) == ("AzureML-Minimal", "1")
    cd = minimal.python.conda_dependencies
    assert isinstance(cd, CondaDependencies)
    assert cd.get_python_version() == "3.11" and "azureml-defaults" in cd.pip_packages
    sk = Environment.get(ws, "AzureML-Scikit-learn-0.20.3")
    assert "scikit-learn==1.9.1" in sk.python.conda_dependencies.pip_packages
    with pytest.raises(NotFound, match=r"no curated environment 'AzureML-Minmal'; closest: "
                                       r"AzureML-Minimal"):
        Environment.get(ws, "AzureML-Minmal")
    with pytest.raises(NotFound, match="only version 1"):
        Environment.get(ws, "AzureML-Minimal", version=2)
    copy = Environment.get(ws, "AzureML-Tutorial")
    with pytest.raises(InvalidParameter, match="reserved for curated environments"):
        copy.register(ws)
    copy.name = "azureml-my-tutorial"
    with pytest.raises(InvalidParameter, match="read-only"):
        copy.register(ws)
    copy.name = "my-tutorial"
    assert copy.register(ws).version == "1"  # a copy under its own name is fine
    assert Environment.get(ws, "AzureML-Tutorial").version == "1"


def test_a_curated_environment_builds_and_runs_an_unchanged_script(ws: Workspace,
                                                                   src: Path) -> None:
    run = run_in(ws, src, Environment.get(ws, "AzureML-Minimal"))
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert run.get_metrics()["accuracy"] == 0.91
    props = run.get_properties()
    assert props["environment_builder"] == "uv"
    assert "dropped azureml-core, azureml-defaults" in driver_log(ws, run)
    assert run.get_environment().name == "AzureML-Minimal"


def test_curated_table_in_the_docs_matches_the_data() -> None:
    doc = (ROOT / "docs/curated-environments.md").read_text()
    for name, entry in CURATED.items():
        row = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{name}` |")), None)
        assert row is not None, f"{name} is missing from docs/curated-environments.md"
        for pin in entry["pip"]:
            if not pin.startswith("azureml"):
                assert pin in row, f"{name}: {pin} missing from its row"


# -- item 6: docker.enabled without an engine, old python pins, strict mode -------------------
def _no_engine() -> bool:
    for name in ("docker", "podman"):
        exe = shutil.which(name)
        if exe and subprocess.run([exe, "info"], capture_output=True,
                                  timeout=20).returncode == 0:
            return False
    return True


def v1_docker_env(name: str = "v1-docker") -> Environment:
    """What v1 code wrote everywhere: docker on, v1's default python 3.6.2, azureml-defaults."""
    env = Environment(name)
    env.docker.enabled = True
    env.docker.base_image = "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04"
    env.python.conda_dependencies = CondaDependencies.create(
        python_version="3.6.2", pip_packages=["azureml-defaults", "six==1.16.0"])
    return env


@pytest.mark.skipif(not _no_engine(), reason="a container engine runs here: the fallback "
                    "is for targets without one (the container builder's tests cover it)")
def test_docker_without_engine_builds_with_uv_and_raises_python(ws: Workspace,
                                                                 src: Path) -> None:
    run = run_in(ws, src, v1_docker_env())
    assert run.get_status() == "Completed", run.get_details().get("error")
    props = run.get_properties()
    assert props["runyard.container_fallback"] == "uv: no container engine on target"
    assert props["environment_builder"] == "uv"
    raised_to = props["runyard.python_raised"].split(" -> ")
    assert raised_to[0] == "3.6.2" and tuple(map(int, raised_to[1].split(".")[:2])) >= (3, 8)
    assert run.get_metrics()["python"] == raised_to[1]
    log = driver_log(ws, run)
    assert "warning: environment.docker.enabled asks for a container, and this target has no " \
           "container engine" in log
    assert "warning: python 3.6.2 is not available on this target" in log
    assert "dropped azureml-defaults" in log


def test_strict_environments_refuse_instead(tmp_path: Path, src: Path) -> None:
    root = tmp_path / "strict"
    Workspace.create("strict-ws", root).close()
    set_config(root, strict_environments=True)
    ws = Workspace.get("strict-ws", root)
    try:
        exp = Experiment(ws, "strict")
        with pytest.raises(InvalidParameter, match=r"python=3\.6\.2 cannot run runyard's "
                                                   r"runtime.*strict_environments"):
            exp.submit(ScriptRunConfig(src, "train.py", environment=v1_docker_env()))
        assert list(exp.get_runs()) == []  # refused before anything was stored
        env = v1_docker_env("strict-docker")
        env.python.conda_dependencies.set_python_version("3.11")
        if _no_engine():
            run = run_in(ws, src, env)
            details = run.get_details()
            assert details["status"] == "Failed"
            assert "needs a running docker or podman engine" in details["error"]["message"]
            assert "runyard.container_fallback" not in run.get_properties()
    finally:
        ws.close()


def test_python_pin_nothing_provides_on_the_target(ws: Workspace, tmp_path: Path) -> None:
    """On the target: a pin no installer here provides is raised (warning, property), unless
    the request is strict (what ``strict_environments`` sends), which refuses in Preparing."""
    cache = ws.context.env_cache_dir  # the module's cache: uv is bootstrapped there once
    request: dict[str, Any] = {"builder": "uv", "spec_hash": "py-raise-test",
                               "plan": {"python": "3.6.2", "requirements": []},
                               "cache_dir": str(cache), "python_downloads": False}
    prepared = envbuild.prepare(request, tmp_path / "raise.log")
    raised = prepared.properties()["runyard.python_raised"]
    assert raised.startswith("3.6.2 -> 3.") and prepared.marker["python"].endswith(
        raised.split(" -> ")[1])
    assert "using the oldest available python" in (tmp_path / "raise.log").read_text()
    with pytest.raises(envbuild.EnvBuildError, match="python 3.6.2 is not available"):
        envbuild.prepare({**request, "strict": True}, tmp_path / "strict.log")


# -- the alias on another target: an SSH host (only the runtime bundle there) -----------------
def test_unchanged_training_script_on_an_ssh_host(ws: Workspace, src: Path) -> None:
    """The host has no runyard installed: ``azureml`` comes from the bundle's alias."""
    from sshhost import missing_tools, start_host, stop_host  # noqa: PLC0415

    from runyard.compute.remote.ssh.connection import POOL  # noqa: PLC0415
    from runyard.computetarget import ComputeTarget, RemoteCompute  # noqa: PLC0415

    lacking = missing_tools()
    if lacking:
        pytest.fail(f"needs {', '.join(lacking)} (scripts/test installs them)", pytrace=False)
    host = start_host()
    try:
        ComputeTarget.attach(ws, "v1-box", RemoteCompute.attach_configuration(
            address=host.address, ssh_port=host.port, username=host.username,
            private_key_file=str(host.key_file), known_hosts_file=str(host.known_hosts)))
        run = Experiment(ws, "v1-envs").submit(ScriptRunConfig(src, "train.py",
                                                               compute_target="v1-box"))
        run.wait_for_completion(timeout=120, raise_on_error=False)
        assert run.get_status() == "Completed", run.get_details().get("error")
        assert run.get_metrics()["accuracy"] == 0.91
        assert "trained in /usr" in driver_log(ws, run)  # the host's python, not a venv
    finally:
        POOL.close_all()
        stop_host(host)
