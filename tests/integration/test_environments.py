"""System-managed environments end to end: real uv builds from PyPI, the cache, concurrent
builds of one key, every bad-input case, auto_prepare_environment, registration, the CLI."""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runyard import (
    Environment,
    Experiment,
    InvalidParameter,
    NotFound,
    Run,
    RunConfiguration,
    RunFailed,
    ScriptRunConfig,
    Workspace,
)
from runyard.cli.env import env as env_cli
from runyard.cli.workspace import WorkspaceRef
from runyard.environments import CondaDependencies, local_cache_dir
from runyard.environments.spec import environment_request
from runyard.runtime import envbuild
from support import set_config, write

PY = ".".join(map(str, sys.version_info[:2]))

SCRIPT = """
    import importlib.metadata, json, sys
    from runyard import Run
    run = Run.get_context()
    mods = {}
    for name in sys.argv[1:]:
        mod = __import__(name)
        mods[name] = getattr(mod, "__version__", "?")
    try:
        importlib.metadata.version("runyard")
        installed = "yes"
    except importlib.metadata.PackageNotFoundError:
        installed = "no"
    run.log("modules", json.dumps(mods))
    run.log("prefix", sys.prefix)
    run.log("runyard_installed", installed)
    print("script ran in", sys.prefix)
"""



@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = Workspace.create("envs", tmp_path / "ws", max_concurrent_runs=4)
    yield w
    w.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    write(folder, "train.py", SCRIPT)
    return folder


def pip_env(name: str, *packages: str, python: str | None = None) -> Environment:
    """An environment with exactly these pip lines (repeated names kept, as pip would)."""
    deps: list[Any] = [f"python={python}"] if python else []
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies(
        _underlying_structure={"name": name, "dependencies": [*deps, {"pip": list(packages)}]})
    return env


def submit(ws: Workspace, src: Path, env: Environment | None = None, *modules: str,
           run_config: RunConfiguration | None = None) -> Run:
    cfg = ScriptRunConfig(src, "train.py", arguments=list(modules), run_config=run_config,
                          environment=env)
    return Experiment(ws, "env-exp").submit(cfg)


def cache_entries(ws: Workspace) -> dict[str, list[str]]:
    """What the cache holds: published keys and build folders (locks and tools aside)."""
    cache = local_cache_dir(ws)
    keys = sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) \
        if cache.is_dir() else []
    builds = cache / ".builds"
    return {"keys": keys,
            "builds": sorted(p.name for p in builds.iterdir()) if builds.is_dir() else []}


def statuses(run: Run) -> list[str]:
    return [e["status"] for e in run.get_events()]


def driver_log(ws: Workspace, run: Run) -> str:
    return (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()


# -- building and reusing ---------------------------------------------------------------------
def test_pip_environment_is_built_once_then_reused(ws: Workspace, src: Path,
                                                   tmp_path: Path) -> None:
    write(tmp_path, "requirements.txt", "six==1.16.0\n")
    env = Environment.from_pip_requirements("six-env", tmp_path / "requirements.txt")
    run = submit(ws, src, env, "six")
    out = io.StringIO()
    details = run.wait_for_completion(show_output=True, out=out)
    assert details["status"] == "Completed"
    assert statuses(run) == ["Queued", "Preparing", "Starting", "Running", "Finalizing",
                             "Completed"]
    shown = out.getvalue()
    assert "[runyard env] building environment" in shown  # the build streamed while Preparing
    assert "six==1.16.0" in shown and "script ran in" in shown
    props = run.get_properties()
    key = props["environment_key"]
    assert props["environment_build"] == "built" and props["environment_builder"] == "uv"
    assert details["properties"]["environment_key"] == key
    m = run.get_metrics()
    assert json.loads(m["modules"]) == {"six": "1.16.0"}
    assert m["runyard_installed"] == "no"  # Run came from the runtime on PYTHONPATH
    prefix = Path(m["prefix"])
    assert prefix.parent == local_cache_dir(ws) / ".builds" and prefix.name.startswith(key)
    assert (local_cache_dir(ws) / key / envbuild.MARKER).is_file()
    # the same spec again: the cache, no build
    again = submit(ws, src, Environment.from_pip_requirements("other-name",
                                                              tmp_path / "requirements.txt"),
                   "six")
    again.wait_for_completion()
    assert again.get_properties()["environment_key"] == key
    assert again.get_properties()["environment_build"] == "cached"
    assert Path(again.get_metrics()["prefix"]) == prefix
    assert "using cached environment" in driver_log(ws, again)
    assert "uv pip install" not in driver_log(ws, again)
    assert cache_entries(ws) == {"keys": [key], "builds": [prefix.name]}
    # what the run was submitted with
    got = again.get_environment()
    assert got.name == "other-name"
    assert got.python.conda_dependencies.pip_packages == ["six==1.16.0"]


def test_conda_file_with_mapped_conda_packages(ws: Workspace, src: Path) -> None:
    write(src, "environment.yml", f"""
        name: mapped
        channels: [conda-forge]
        dependencies:
        - python={PY}
        - tabulate=0.9
        - pip
        - pip:
          - tomli==2.0.1
    """)
    rc = RunConfiguration()
    rc.environment.python.conda_dependencies_file = "environment.yml"
    run = submit(ws, src, None, "tabulate", "tomli", run_config=rc)
    run.wait_for_completion()
    mods = json.loads(run.get_metrics()["modules"])
    assert mods["tabulate"].startswith("0.9") and mods["tomli"] == "2.0.1"
    log = driver_log(ws, run)
    assert "channels conda-forge ignored" in log
    got = run.get_environment()  # the file's content was recorded with the run
    assert "tabulate=0.9" in got.python.conda_dependencies.conda_packages


def test_concurrent_runs_of_one_new_spec_build_once(ws: Workspace, src: Path) -> None:
    env = pip_env("race", "tomli==2.0.1", "six")
    runs: list[Run] = []
    lock = threading.Lock()

    def go() -> None:  # four submitters at once, each a runner process of its own
        r = submit(ws, src, env, "tomli")
        with lock:
            runs.append(r)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in runs:
        assert r.wait_for_completion(timeout=120)["status"] == "Completed"
    outcomes = sorted(r.get_properties()["environment_build"] for r in runs)
    assert outcomes.count("built") == 1, outcomes
    assert set(outcomes) <= {"built", "waited", "cached"}
    assert len({r.get_properties()["environment_key"] for r in runs}) == 1
    assert len(cache_entries(ws)["builds"]) == 1


def test_concurrent_prepare_from_several_processes(tmp_path: Path) -> None:
    """The lock protocol itself: N processes call envbuild.prepare on one key at once."""
    req = environment_request(pip_env("procs", "tomli==2.0.1"))
    assert req is not None
    req["cache_dir"] = str(tmp_path / "cache")
    (tmp_path / "req.json").write_text(json.dumps(req))
    code = textwrap.dedent(f"""
        import json, sys
        from runyard.runtime import envbuild
        req = json.loads(open({str(tmp_path / "req.json")!r}).read())
        p = envbuild.prepare(req, sys.argv[1])
        print(json.dumps([p.outcome, p.key, p.python]))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"log{i}.txt")],
                              stdout=subprocess.PIPE, text=True) for i in range(5)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5
    assert sorted(r[0] for r in results).count("built") == 1
    assert len({r[1] for r in results}) == 1 and len({r[2] for r in results}) == 1
    assert len(list((tmp_path / "cache" / ".builds").iterdir())) == 1


# -- bad input --------------------------------------------------------------------------------
BAD_CASES = {
    "missing_package": (["runyard-no-such-package-xyz==1.0"], None,
                        ["runyard-no-such-package-xyz", "not found in the package registry"]),
    "conflict": (["tabulate==0.9.0", "tabulate<0.9"], None,
                 ["tabulate==0.9.0", "tabulate<0.9", "unsatisfiable"]),
    "python": (["six"], "3.99", ["python 3.99 is not available",
                                 "no newer python is installed here to raise it to"]),
    "syntax": (["six===="], None, ["six===="]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_spec_fails_in_preparing_and_leaves_nothing(ws: Workspace, src: Path,
                                                       case: str) -> None:
    packages, python, expected = BAD_CASES[case]
    run = submit(ws, src, pip_env(case, *packages, python=python), "six")
    with pytest.raises(RunFailed):
        run.wait_for_completion(timeout=120)
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    err = run.get_details()["error"]
    for text in expected:  # the installer's own message, naming the package / version
        assert text in err["message"], (text, err["message"])
    assert err["builder"] == "uv"
    assert "system_logs/driver_log.txt" in run.get_file_names()
    log = driver_log(ws, run)
    assert "environment preparation failed" in log
    assert cache_entries(ws) == {"keys": [], "builds": []}
    # the corrected spec builds cleanly
    fixed = submit(ws, src, pip_env(case, "six"), "six")
    assert fixed.wait_for_completion(timeout=120)["status"] == "Completed"
    assert fixed.get_properties()["environment_build"] == "built"
    assert len(cache_entries(ws)["keys"]) == 1


@pytest.mark.parametrize("case", ["malformed", "unknown_key", "conda_only", "bad_builder"])
def test_spec_errors_are_refused_before_anything_is_stored(ws: Workspace, src: Path,
                                                           case: str) -> None:
    rc = RunConfiguration()
    env = rc.environment
    if case == "malformed":
        write(src, "environment.yml", "dependencies:\n- six\n- pip: [tomli\n")
        env.python.conda_dependencies_file = "environment.yml"
        match = r"environment.yml: not valid YAML \(line"
    elif case == "unknown_key":
        write(src, "environment.yml", "dependencies:\n- six\npackages:\n- tomli\n")
        env.python.conda_dependencies_file = "environment.yml"
        match = "environment.yml.packages: unknown key"
    elif case == "conda_only":
        env.python.conda_dependencies = CondaDependencies.create(conda_packages=["cudatoolkit"])
        match = "conda package 'cudatoolkit'.*conda builder"
    else:
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
        env.python.builder = "pipenv"
        match = "environment.python.builder"
    exp = Experiment(ws, "bad-env")
    with pytest.raises(InvalidParameter, match=match):
        exp.submit(ScriptRunConfig(src, "train.py", run_config=rc))
    assert list(exp.get_runs()) == []
    runs_dir = ws.data_dir / "runs"
    assert not runs_dir.exists() or list(runs_dir.iterdir()) == []
    assert cache_entries(ws) == {"keys": [], "builds": []}


def test_auto_prepare_false_fails_fast_until_the_environment_exists(ws: Workspace,
                                                                    src: Path) -> None:
    env = pip_env("no-auto", "tomli==2.0.1")
    rc = RunConfiguration()
    rc.auto_prepare_environment = False
    t0 = time.monotonic()
    run = submit(ws, src, env, "tomli", run_config=rc)
    with pytest.raises(RunFailed, match="auto_prepare_environment is False"):
        run.wait_for_completion(timeout=60)
    assert time.monotonic() - t0 < 10
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    assert cache_entries(ws) == {"keys": [], "builds": []}
    built = submit(ws, src, env, "tomli")  # auto_prepare_environment=True (default) builds
    built.wait_for_completion()
    cached = submit(ws, src, env, "tomli", run_config=rc)
    assert cached.wait_for_completion()["status"] == "Completed"
    assert cached.get_properties()["environment_build"] == "cached"


def test_cancel_during_the_build_leaves_nothing(ws: Workspace, src: Path) -> None:
    """The index never answers, so uv hangs in Preparing; cancel ends it and cleans up."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        env = pip_env("hang", "six")
        env.python.conda_dependencies.set_pip_index_url(f"http://127.0.0.1:{port}/simple")
        run = submit(ws, src, env, "six")
        deadline = time.monotonic() + 30
        while "uv pip install" not in (driver_log(ws, run) if (
                ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").exists() else ""):
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
        assert run.get_status() == "Preparing"
        run.cancel()
        assert run.get_status() == "Canceled"
        assert cache_entries(ws) == {"keys": [], "builds": []}
    finally:
        silent.close()


def engine_running() -> bool:
    for engine in ("docker", "podman"):
        path = shutil.which(engine)
        if path and subprocess.run([path, "info"], capture_output=True, timeout=30,
                                   check=False).returncode == 0:
            return True
    return False


def test_conda_builder_refuses_in_preparing_without_conda(ws: Workspace, src: Path) -> None:
    if any(shutil.which(t) for t in ("micromamba", "mamba", "conda")):
        pytest.skip("this machine has conda; the refusal needs it absent")
    conda_env = Environment("conda-env")
    conda_env.python.conda_dependencies = CondaDependencies.create(conda_packages=["mkl"])
    conda_env.python.builder = "conda"
    run = submit(ws, src, conda_env)
    with pytest.raises(RunFailed, match="the conda builder needs micromamba, mamba, conda"):
        run.wait_for_completion(timeout=60)
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    assert cache_entries(ws) == {"keys": [], "builds": []}


def test_container_builder_refuses_in_preparing_without_an_engine(ws: Workspace,
                                                                  src: Path) -> None:
    """With ``strict_environments`` (without it uv builds the spec instead: see
    test_environments_v1.py)."""
    if engine_running():
        pytest.skip("a container engine is running here; the refusal needs none")
    set_config(ws.path, strict_environments=True)
    strict = Workspace.get(ws.name, ws.path)
    docker_env = pip_env("docker-env", "six")
    docker_env.docker.enabled = True
    try:
        run = submit(strict, src, docker_env)
        with pytest.raises(RunFailed, match="needs a running docker or podman engine") as info:
            run.wait_for_completion(timeout=60)
    finally:
        strict.close()
    if shutil.which("docker"):  # a CLI without a daemon: its own message is passed on
        assert "`docker info` failed" in str(info.value)
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    assert cache_entries(ws) == {"keys": [], "builds": []}


def test_uv_is_installed_into_the_cache_when_missing(tmp_path: Path) -> None:
    """A target without uv: it is pip-installed once into <cache_dir>/.tools (real PyPI)."""
    cache = tmp_path / "cache"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if any(shutil.which("uv", path=p) for p in env["PATH"].split(":")):
        pytest.skip("uv is installed system-wide here; nothing to bootstrap")
    log = envbuild._Log(tmp_path / "log.txt")
    try:
        uv = envbuild.find_uv({}, cache, log, env)
        assert uv == [str(cache / ".tools" / "uv" / "bin" / "uv")]
        assert envbuild.find_uv({}, cache, log, env) == uv  # once
    finally:
        log.close()
    version = subprocess.run([*uv, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("uv ")
    assert "installing it into" in (tmp_path / "log.txt").read_text()


# -- registration -----------------------------------------------------------------------------
def test_register_get_list_versions(tmp_path: Path, db_url: str, src: Path) -> None:
    ws = Workspace.create("reg", tmp_path / "reg", database_url=db_url)
    try:
        env = pip_env("train-env", "six", "tabulate==0.9.0")
        v1 = env.register(ws)
        assert v1.version == "1" and env.version == "1"
        same = pip_env("train-env", "tabulate == 0.9.0", "Six")  # same, normalized
        assert same.register(ws).version == "1"
        changed = pip_env("train-env", "six", "tabulate==0.9.0", "tomli")
        assert changed.register(ws).version == "2"
        changed.environment_variables["MODE"] = "fast"
        assert changed.register(ws).version == "3"
        pip_env("other-env", "six").register(ws)
        latest = Environment.get(ws, "train-env")
        assert latest.version == "3" and latest.environment_variables == {"MODE": "fast"}
        first = Environment.get(ws, "train-env", version="1")
        assert first.python.conda_dependencies.pip_packages == ["six", "tabulate==0.9.0"]
        listed = Environment.list(ws)  # the curated AzureML-... ones come after
        assert sorted(n for n in listed if not n.startswith("AzureML-")) == ["other-env",
                                                                            "train-env"]
        assert listed["train-env"].version == "3" and ws.environments.keys() == listed.keys()
        with pytest.raises(NotFound, match="no registered environment 'nope'.*train-env"):
            Environment.get(ws, "nope")
        with pytest.raises(NotFound, match="version 9"):
            Environment.get(ws, "train-env", 9)
        with pytest.raises(InvalidParameter, match="version"):
            Environment.get(ws, "train-env", "latest")
        with pytest.raises(InvalidParameter, match="reserved"):
            pip_env("AzureML-Minimal", "six").register(ws)
        # a registered environment runs, and the run knows which version it used
        run = Experiment(ws, "reg-exp").submit(ScriptRunConfig(src, "train.py",
                                                               arguments=["six"],
                                                               environment=first))
        run.wait_for_completion(timeout=120)
        got = run.get_environment()
        assert (got.name, got.version) == ("train-env", "1")
    finally:
        ws.close()


# -- the CLI ----------------------------------------------------------------------------------
def invoke(ws: Workspace, *args: str) -> Any:
    result = CliRunner().invoke(env_cli, list(args), obj=WorkspaceRef(str(ws.path)),
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_cli_env_list_and_prune(ws: Workspace, src: Path) -> None:
    run = submit(ws, src, pip_env("cli-env", "six"), "six")
    run.wait_for_completion()
    key = run.get_properties()["environment_key"]
    items = json.loads(invoke(ws, "list", "--json").stdout)
    assert [i["key"] for i in items] == [key]
    assert items[0]["builder"] == "uv" and items[0]["packages"] == ["six"]
    assert items[0]["size_bytes"] > 0 and items[0]["in_use"] is False
    assert key in invoke(ws, "list").stdout
    pip_env("cli-env", "six").register(ws)
    assert "cli-env" in invoke(ws, "list", "--registered").stdout
    # recent environments survive; one in use is never removed
    assert json.loads(invoke(ws, "prune", "--older-than", "30", "--json").stdout) == []
    cache = local_cache_dir(ws)
    fd = os.open(cache / ".locks" / f"{key}.use", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        assert json.loads(invoke(ws, "prune", "--older-than", "0", "--json").stdout) == []
    finally:
        os.close(fd)
    assert "would remove" in invoke(ws, "prune", "--older-than", "0", "--dry-run").stdout
    removed = json.loads(invoke(ws, "prune", "--older-than", "0", "--json").stdout)
    assert [r["key"] for r in removed] == [key]
    assert cache_entries(ws) == {"keys": [], "builds": []}
    # the next run builds it again
    again = submit(ws, src, pip_env("cli-env", "six"), "six")
    again.wait_for_completion()
    assert again.get_properties()["environment_build"] == "built"
