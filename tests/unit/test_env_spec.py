"""Environment specs: normalization and hashing, the conda-to-PyPI table, builder plans and
the target-side builder's pure parts (keys, python matching, refusals, translations)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runyard import Environment, InvalidParameter, NotSupported
from runyard.environments import CondaDependencies
from runyard.environments.mapping import (
    CONDA_ONLY,
    CONDA_TO_PYPI,
    MappingError,
    parse_conda_spec,
    to_pypi,
)
from runyard.environments.spec import (
    definition_hash,
    environment_request,
    normalize,
    parse_requirements,
    resolve_for_run,
)
from runyard.runtime import envbuild

SRC = Path(__file__).resolve().parents[2] / "src"
PEP508_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[a-z0-9,-]+\])?$")


def env_with(cd: CondaDependencies, **python: Any) -> Environment:
    env = Environment("e")
    env.python.conda_dependencies = cd
    for k, v in python.items():
        setattr(env.python, k, v)
    return env


# -- normalization and hashing ------------------------------------------------------------------
def test_same_content_in_another_order_or_spelling_hashes_the_same() -> None:
    a = CondaDependencies.create(pip_packages=["Six>=1.0", "tabulate == 0.9.0"],
                                 conda_packages=["numpy=1.26", "scipy"], python_version="3.11")
    b = CondaDependencies.create(pip_packages=["tabulate==0.9.0", "six >= 1.0"],
                                 conda_packages=["scipy", "numpy=1.26"], python_version="3.11")
    sa, sb = normalize(env_with(a)), normalize(env_with(b))
    assert sa is not None and sb is not None
    assert sa == sb and sa.spec_hash == sb.spec_hash
    assert sa.pip_packages == ("six>=1.0", "tabulate==0.9.0")
    assert sa.conda_packages == ("numpy=1.26", "scipy")
    assert sa.python == "3.11" and sa.builder == "uv"


@pytest.mark.parametrize("change", ["pip", "version", "python", "conda", "channel", "option",
                                    "builder"])
def test_any_real_change_changes_the_hash(change: str) -> None:
    def make() -> Environment:
        cd = CondaDependencies.create(pip_packages=["six==1.16.0"], conda_packages=["tomli"],
                                      python_version="3.11")
        return env_with(cd)

    base = normalize(make())
    env = make()
    cd = env.python.conda_dependencies
    {"pip": lambda: cd.add_pip_package("tabulate"),
     "version": lambda: cd.add_pip_package("six==1.17.0"),
     "python": lambda: cd.set_python_version("3.12"),
     "conda": lambda: cd.add_conda_package("tabulate"),
     "channel": lambda: cd.add_channel("conda-forge"),
     "option": lambda: cd.set_pip_index_url("https://example.org/simple"),
     "builder": lambda: setattr(env.python, "builder", "micromamba")}[change]()
    other = normalize(env)
    assert base is not None and other is not None
    assert other.spec_hash != base.spec_hash


def test_user_managed_and_plain_environments_have_no_spec() -> None:
    assert normalize(Environment("plain")) is None
    env = env_with(CondaDependencies.create(pip_packages=["six"]),
                   user_managed_dependencies=True)
    assert normalize(env) is None
    assert environment_request(env) is None
    env.docker.enabled = True
    with pytest.raises(NotSupported, match="user_managed_dependencies"):
        normalize(env)


def test_unknown_builder_is_refused_naming_the_field() -> None:
    env = env_with(CondaDependencies.create(pip_packages=["six"]), builder="poetry")
    with pytest.raises(InvalidParameter, match="environment.python.builder"):
        normalize(env)


def test_conda_file_is_read_relative_to_the_source_directory(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text("dependencies:\n- pip:\n  - six\n")
    env = Environment("f")
    env.python.conda_dependencies_file = "env.yml"
    spec = normalize(env, tmp_path)
    assert spec is not None and spec.pip_packages == ("six",)
    with pytest.raises(InvalidParameter, match="conda_dependencies_file.*does not exist"):
        normalize(env, tmp_path / "elsewhere")
    (tmp_path / "env.yml").write_text("dependencies:\n- pip:\n  - six\nunknown: 1\n")
    with pytest.raises(InvalidParameter, match="unknown: unknown key"):
        normalize(env, tmp_path)
    # the recorded definition inlines the file's content
    (tmp_path / "env.yml").write_text("dependencies:\n- pip:\n  - six\n")
    request, recorded = resolve_for_run(env, tmp_path)
    assert request is not None
    assert "six" in recorded["python"]["condaDependencies"]


def test_definition_hash_covers_variables_and_docker_but_not_name() -> None:
    def make(name: str) -> Environment:
        return env_with(CondaDependencies.create(pip_packages=["six"]))

    a, b = make("a"), make("b")
    b.name = "other-name"
    assert definition_hash(a) == definition_hash(b)
    b.environment_variables["X"] = "1"
    assert definition_hash(a) != definition_hash(b)
    c = make("c")
    c.docker.enabled = True
    assert definition_hash(a) != definition_hash(c)


def test_request_carries_spec_hash_plan_and_auto_prepare() -> None:
    env = env_with(CondaDependencies.create(pip_packages=["six"], conda_packages=["tomli=2"]))
    req = environment_request(env, auto_prepare=False)
    assert req is not None
    assert req["auto_prepare"] is False and req["builder"] == "uv"
    assert req["plan"]["requirements"] == ["tomli==2.*", "six"]
    spec = normalize(env)
    assert spec is not None and req["spec_hash"] == spec.spec_hash
    json.dumps(req)  # travels as JSON


# -- the conda -> PyPI table --------------------------------------------------------------------
def test_every_table_entry_is_a_valid_pypi_requirement_name() -> None:
    for conda, pypi in CONDA_TO_PYPI.items():
        assert conda == conda.lower(), conda
        assert PEP508_NAME.match(pypi), (conda, pypi)
        assert conda not in CONDA_ONLY, conda
    for name in CONDA_ONLY:
        with pytest.raises(MappingError, match=f"conda package '{re.escape(name)}'.*conda-only"):
            to_pypi(name)


@pytest.mark.parametrize(("conda", "pip"), [
    ("numpy", "numpy"),
    ("numpy=1.26", "numpy==1.26.*"),
    ("numpy=1.26.4", "numpy==1.26.4.*"),
    ("numpy==1.26.4", "numpy==1.26.4"),
    ("numpy>=1.2,<2", "numpy>=1.2,<2"),
    ("numpy >=1.2", "numpy>=1.2"),
    ("numpy 1.26.*", "numpy==1.26.*"),
    ("numpy 1.26.4", "numpy==1.26.4"),
    ("numpy=1.26.*", "numpy==1.26.*"),
    ("conda-forge::scikit-learn=1.4", "scikit-learn==1.4.*"),
    ("pytorch=2.1", "torch==2.1.*"),
    ("py-xgboost", "xgboost"),
    ("matplotlib-base>=3.7", "matplotlib>=3.7"),
    ("pytables", "tables"),
    ("msgpack-python", "msgpack"),
    ("ruamel_yaml", "ruamel.yaml"),
    ("ray-default", "ray[default]"),
    ("six=1.16=pyhd3eb1b0_1", "six==1.16.*"),
])
def test_translations(conda: str, pip: str) -> None:
    req, _notes = to_pypi(conda)
    assert req == pip


def test_notes_for_dropped_build_strings_and_channels() -> None:
    _req, notes = to_pypi("conda-forge::six=1.16=py_0")
    assert any("build string 'py_0'" in n for n in notes)
    assert any("channel 'conda-forge'" in n for n in notes)
    assert to_pypi("pip=23.1") == (None, [])


@pytest.mark.parametrize(("conda", "package", "match"), [
    ("cudatoolkit=11.8", "cudatoolkit", "'cudatoolkit'.*conda-only.*conda builder"),
    ("r-ggplot2", "r-ggplot2", "'r-ggplot2'.*conda-only.*R packages"),
    ("some-conda-thing", "some-conda-thing",
     "'some-conda-thing'.*no known PyPI equivalent.*conda builder"),
    ("numpy=1.2|1.3", "numpy", "'numpy'.*alternative"),
    ("numpy[version='>=1.2']", "numpy", "'numpy'.*bracket"),
])
def test_untranslatable_conda_packages_are_named(conda: str, package: str, match: str) -> None:
    with pytest.raises(MappingError, match=match) as info:
        to_pypi(conda)
    assert info.value.package == package


def test_parse_conda_spec_parts() -> None:
    s = parse_conda_spec("conda-forge::NumPy=1.26=py311_0")
    assert (s.channel, s.name, s.op_version, s.fuzzy, s.build) == (
        "conda-forge", "numpy", "1.26", True, "py311_0")


def test_uv_plan_refuses_a_conda_only_package_before_queueing() -> None:
    env = env_with(CondaDependencies.create(conda_packages=["mkl"], pip_packages=["six"]))
    with pytest.raises(InvalidParameter, match="conda_dependencies.*'mkl'.*builder = 'conda'"):
        environment_request(env)
    env.python.builder = "conda"  # the conda builder takes it as is
    req = environment_request(env)
    assert req is not None and req["builder"] == "conda"
    assert req["plan"]["dependencies"] == ["mkl", "pip", {"pip": ["six"]}]


def test_container_plan() -> None:
    env = env_with(CondaDependencies.create(pip_packages=["six"], conda_packages=["tomli"]))
    env.docker.enabled = True
    env.docker.base_image = "python:3.11-slim"
    env.docker.gpu_support = True
    env.docker.shm_size = "4g"
    env.docker.arguments = ["--ipc=host"]
    req = environment_request(env)
    assert req is not None and req["builder"] == "container"
    assert req["plan"]["base_image"] == "python:3.11-slim"
    assert req["plan"]["requirements"] == ["tomli", "six"]
    assert req["container"] == {"gpu_support": True, "shm_size": "4g",
                                "arguments": ["--ipc=host"], "shared_volumes": True}
    env.python.conda_dependencies.add_conda_package("cudatoolkit")
    with pytest.raises(InvalidParameter, match="'cudatoolkit'.*container build"):
        environment_request(env)


# -- requirements files -------------------------------------------------------------------------
def test_parse_requirements(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("six==1.16.0\n")
    (tmp_path / "req.txt").write_text(textwrap.dedent("""\
        # a comment
        -r base.txt
        --index-url https://pypi.org/simple
        -i=https://ignored.example/simple
        --extra-index-url=https://extra.example/simple
        --pre
        tabulate>=0.9  # inline comment
        tomli ; python_version < "3.11"
        requests[socks] \\
            >=2
    """))
    reqs, opts = parse_requirements(tmp_path / "req.txt")
    assert reqs == ["six==1.16.0", "tabulate>=0.9", 'tomli ; python_version < "3.11"',
                    "requests[socks]      >=2"]
    assert opts == ["--index-url https://pypi.org/simple",
                    "--index-url https://ignored.example/simple",
                    "--extra-index-url https://extra.example/simple", "--pre"]
    env = Environment.from_pip_requirements("r", tmp_path / "req.txt")
    cd = env.python.conda_dependencies
    assert cd.pip_packages == reqs
    assert cd.pip_options == opts  # as written (the last --index-url wins, as in pip)


@pytest.mark.parametrize(("line", "match"), [
    ("-e .", "editable"),
    ("-c constraints.txt", "constraint"),
    ("./local/pkg", "local path"),
    ("--no-deps", "unsupported pip option '--no-deps'"),
    ("--index-url", "needs a value"),
    ("-r req.txt", "includes itself"),
])
def test_bad_requirements_files_name_the_line(tmp_path: Path, line: str, match: str) -> None:
    f = tmp_path / "req.txt"
    f.write_text(f"six\n{line}\n")
    with pytest.raises(InvalidParameter, match=match) as info:
        Environment.from_pip_requirements("r", f)
    assert f"{f}:2" in str(info.value)


def test_from_conda_specification_checks_the_file(tmp_path: Path) -> None:
    good = tmp_path / "env.yml"
    good.write_text("name: x\ndependencies:\n- python=3.11\n- pip:\n  - six\n")
    env = Environment.from_conda_specification("conda-env", good)
    assert env.name == "conda-env" and env.python.conda_dependencies.pip_packages == ["six"]
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\ndependencies:\n- six\n - tomli: [\n")
    with pytest.raises(InvalidParameter, match="not valid YAML"):
        Environment.from_conda_specification("bad", bad)
    bad.write_text("name: x\npackages:\n- six\n")
    with pytest.raises(InvalidParameter, match="packages: unknown key"):
        Environment.from_conda_specification("bad", bad)


def test_environment_dict_round_trip_keeps_conda_dependencies() -> None:
    env = env_with(CondaDependencies.create(pip_packages=["six"], python_version="3.11"),
                   builder="micromamba")
    env.environment_variables = {"A": "1"}
    back = Environment.from_dict(json.loads(json.dumps(env.to_dict())))
    assert isinstance(back.python.conda_dependencies, CondaDependencies)
    assert back.python.conda_dependencies == env.python.conda_dependencies
    assert back.python.builder == "micromamba"
    assert definition_hash(back) == definition_hash(env)
    data = env.to_dict()
    data["python"]["condaDependencies"] = "dependencies: [six\n"
    with pytest.raises(InvalidParameter, match="condaDependencies: not valid YAML"):
        Environment.from_dict(data)


# -- the target-side builder's pure parts -------------------------------------------------------
@pytest.mark.parametrize("module", ["envbuild", "envbuilders", "envcache"])
def test_envbuild_imports_only_the_standard_library(module: str) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        before = set(sys.modules)
        import runyard.runtime.{module}
        new = set(sys.modules) - before
        print(json.dumps(sorted(m for m in new if m.split(".")[0] not in
                                sys.stdlib_module_names and m != "runyard"
                                and m.split(".")[:2] != ["runyard", "runtime"])))
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize(("version", "request_", "ok"), [
    ("3.11.7", None, True), ("3.11.7", "3.11", True), ("3.11.7", "3.11.7", True),
    ("3.11.7", "3.11.6", False), ("3.11.7", "3.12", False), ("3.11.7", ">=3.10", True),
    ("3.11.7", ">=3.10,<3.11", False), ("3.11.7", "<3.12", True), ("3.11.7", ">3.11", True),
    ("3.11.7", "3.11.*", True), ("3.11.7", "!=3.11", False), ("3.11.7", "~=3.11", None),
    ("3.11.7", "3.99", False),
])
def test_python_satisfies(version: str, request_: str | None, ok: bool | None) -> None:
    assert envbuild.python_satisfies(version, request_) is ok


def test_cache_key_depends_on_spec_builder_and_identity() -> None:
    req = {"builder": "uv", "spec_hash": "a" * 64}
    k = envbuild.cache_key(req, "cpython-3.11.7|linux-x86_64")
    assert re.fullmatch(r"[0-9a-f]{32}", k)
    assert k == envbuild.cache_key(dict(req), "cpython-3.11.7|linux-x86_64")
    assert k != envbuild.cache_key(req, "cpython-3.11.8|linux-x86_64")
    assert k != envbuild.cache_key(req, "cpython-3.11.7|linux-aarch64")
    assert k != envbuild.cache_key({**req, "spec_hash": "b" * 64}, "cpython-3.11.7|linux-x86_64")
    assert k != envbuild.cache_key({**req, "builder": "conda"}, "cpython-3.11.7|linux-x86_64")


def test_installer_message_picks_the_error_block() -> None:
    out = ("[runyard env] $ uv pip install ...\nUsing Python 3.11.7 environment at: x\n"
           "\x1b[31merror\x1b[0m: No solution found when resolving dependencies\n"
           "  cause: Because nosuch was not found in the package registry\n")
    msg = envbuild.installer_message(out)
    assert msg.startswith("error: No solution found")
    assert "nosuch was not found" in msg and "Using Python" not in msg
    assert envbuild.installer_message("a\nb\nc") == "a\nb\nc"


def _request(tmp_path: Path, env: Environment) -> dict[str, Any]:
    req = environment_request(env)
    assert req is not None
    return {**req, "cache_dir": str(tmp_path / "cache")}


@pytest.mark.parametrize("builder", ["conda", "mamba", "micromamba"])
def test_conda_builders_refuse_without_their_tool(tmp_path: Path, builder: str) -> None:
    env = env_with(CondaDependencies.create(conda_packages=["mkl"]), builder=builder)
    req = _request(tmp_path, env)
    with pytest.raises(envbuild.EnvBuildError, match=f"the {builder} builder needs.*none was "
                                                      "found.*builder = 'uv'"):
        envbuild.prepare(req, tmp_path / "log.txt", env={"PATH": str(tmp_path / "empty")})
    log = (tmp_path / "log.txt").read_text()
    assert "environment preparation failed" in log
    assert not (tmp_path / "cache" / ".builds").exists()


def test_container_builder_refuses_without_an_engine(tmp_path: Path) -> None:
    """In strict mode (otherwise uv builds the spec: tests/integration/test_environments_v1)."""
    env = env_with(CondaDependencies.create(pip_packages=["six"]))
    env.docker.enabled = True
    req = {**_request(tmp_path, env), "strict": True}
    with pytest.raises(envbuild.EnvBuildError, match="running docker or podman.*docker: not on "
                                                      "PATH; podman: not on PATH"):
        envbuild.prepare(req, tmp_path / "log.txt", env={"PATH": str(tmp_path / "empty")})


def test_auto_prepare_false_fails_fast_when_not_cached(tmp_path: Path) -> None:
    env = env_with(CondaDependencies.create(pip_packages=["six"]))
    req = {**_request(tmp_path, env), "auto_prepare": False}
    with pytest.raises(envbuild.EnvBuildError, match="auto_prepare_environment is False") as e:
        envbuild.prepare(req, tmp_path / "log.txt", env={"PATH": ""})
    assert e.value.error()["environment_key"]


def test_conda_environment_file_translation(tmp_path: Path) -> None:
    cd = CondaDependencies.create(conda_packages=["numpy=1.26", "mkl"],
                                  pip_packages=["six"], pip_indexurl="https://x.example/simple")
    cd.add_channel("conda-forge")
    env = env_with(cd, builder="micromamba")
    req = _request(tmp_path, env)
    log = envbuild._Log(tmp_path / "log.txt")
    try:
        b = envbuild.make_builder(req, log, {"PATH": ""})
        assert isinstance(b, envbuild._CondaBuilder)
        text = b.environment_yml()
        cmd = b.command("/opt/bin/micromamba", tmp_path / "p", tmp_path / "e.yml")
    finally:
        log.close()
    import yaml

    data = yaml.safe_load(text)
    py = ".".join(map(str, sys.version_info[:2]))
    assert data == {"name": "runyard-env", "channels": ["conda-forge"],
                    "dependencies": [f"python={py}", "mkl", "numpy=1.26", "pip",
                                     {"pip": ["--index-url https://x.example/simple", "six"]}]}
    assert cmd == ["/opt/bin/micromamba", "create", "--yes", "--prefix", str(tmp_path / "p"),
                   "--file", str(tmp_path / "e.yml")]
    assert b.command("/usr/bin/conda", tmp_path / "p", tmp_path / "e.yml")[:3] == [
        "/usr/bin/conda", "env", "create"]
    assert b.identity().startswith(f"conda-python{py}|")


def test_container_dockerfile_and_run_command(tmp_path: Path) -> None:
    env = env_with(CondaDependencies.create(pip_packages=["six"]))
    env.docker.enabled = True
    env.docker.base_image = "python:3.11-slim"
    env.docker.gpu_support = True
    env.docker.arguments = ["--ipc=host"]
    req = _request(tmp_path, env)
    log = envbuild._Log(tmp_path / "log.txt")
    try:
        b = envbuild.make_builder(req, log, {"PATH": ""})
        assert isinstance(b, envbuild._ContainerBuilder)
        dockerfile = b.dockerfile()
    finally:
        log.close()
    assert dockerfile.splitlines()[0] == "FROM python:3.11-slim"
    assert "pip install" in dockerfile and envbuild.REQUIREMENTS_FILE in dockerfile
    pylib = tmp_path / "pylib"
    pylib.mkdir()
    (pylib / "runyard").symlink_to(SRC / "runyard")
    job = {"run_id": "exp_1_ab", "attempt": 1, "workdir": str(tmp_path / "wd"),
           "artifacts_dir": str(tmp_path / "art"), "spool_dir": str(tmp_path / "spool"),
           "env": {"RUNYARD_RUN_ID": "exp_1_ab", "PYTHONPATH": str(pylib)},
           "environment": req}
    cmd = envbuild.container_command(job, {"image": "runyard-env:k", "engine": "docker"},
                                     ["/opt/runyard-env/bin/python", "train.py"],
                                     job["env"])
    text = " ".join(cmd)
    assert cmd[:3] == ["docker", "run", "--rm"]
    for p in (tmp_path / "wd", tmp_path / "art", tmp_path / "spool", pylib, SRC / "runyard"):
        assert f"--volume {p}:{p}" in text
    assert "--gpus all" in text and "--ipc=host" in text
    assert "--env RUNYARD_RUN_ID=exp_1_ab" in text
    assert cmd[-3:] == ["runyard-env:k", "/opt/runyard-env/bin/python", "train.py"]
