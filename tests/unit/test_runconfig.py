"""``RunConfiguration`` (defaults, validation, ``.runconfig`` files) and ``ScriptRunConfig``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from runyard.environment import DEFAULT_CPU_IMAGE, Environment
from runyard.errors import InvalidParameter, NotFound
from runyard.runconfig import HistoryConfiguration, RunConfiguration, ScriptRunConfig


def test_defaults() -> None:
    rc = RunConfiguration()
    assert rc.script is None and rc.command is None
    assert rc.arguments == []
    assert rc.target == "local"
    assert rc.framework == "Python"
    assert rc.communicator == "None"
    assert rc.auto_prepare_environment is True
    assert rc.max_run_duration_seconds is None
    assert rc.node_count == 1
    assert isinstance(rc.environment, Environment)
    assert rc.environment.name == "default-environment"
    assert rc.environment.environment_variables == {}
    assert rc.environment.python.user_managed_dependencies is False
    assert rc.environment.python.interpreter_path == "python"
    assert rc.environment.docker.enabled is False
    assert rc.environment.docker.base_image == DEFAULT_CPU_IMAGE
    assert rc.history == HistoryConfiguration()
    assert rc.history.output_collection is True
    assert rc.history.directories_to_watch == ["logs"]
    rc.validate()
    # defaults are per instance, never shared
    other = RunConfiguration()
    rc.arguments.append("x")
    rc.environment.environment_variables["A"] = "1"
    rc.history.directories_to_watch.append("more")
    assert other.arguments == [] and other.environment.environment_variables == {}
    assert other.history.directories_to_watch == ["logs"]


def test_constructor_arguments() -> None:
    rc = RunConfiguration(script="train.py", arguments=["--lr", "0.1"], framework="PyTorch",
                          communicator="Nccl", command=["python", "x.py"])
    assert (rc.script, rc.arguments, rc.framework, rc.communicator, rc.command) == (
        "train.py", ["--lr", "0.1"], "PyTorch", "Nccl", ["python", "x.py"])
    rc.validate()


def test_unknown_attribute_assignment_raises() -> None:
    rc = RunConfiguration()
    with pytest.raises(AttributeError, match="max_run_duration"):
        rc.max_run_duration = 10  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        rc.targett = "local"  # type: ignore[attr-defined]
    assert not hasattr(rc, "targett")
    with pytest.raises(AttributeError):
        rc.environment.python.interpeter_path = "/usr/bin/python3"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        rc.history.output_colection = False  # type: ignore[attr-defined]
    rc.max_run_duration_seconds = 10  # known settings are fine
    assert rc.max_run_duration_seconds == 10


def test_target_object_stores_its_name() -> None:
    class Target:
        name = "gpu-cluster"

    rc = RunConfiguration()
    rc.target = Target()  # type: ignore[assignment]
    assert rc.target == "gpu-cluster"


def _customized() -> RunConfiguration:
    rc = RunConfiguration(script="train.py", arguments=["--epochs", "5", "--lr", "0.01"])
    rc.target = "cpu-cluster"
    rc.framework = "PyTorch"
    rc.communicator = "Gloo"
    rc.node_count = 3
    rc.max_run_duration_seconds = 3600
    rc.auto_prepare_environment = False
    env = Environment("my-env")
    env.version = "2"
    env.environment_variables = {"EXAMPLE": "value", "N": "1"}
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "/opt/py/bin/python3"
    env.docker.enabled = True
    env.docker.base_image = "example/image:1"
    env.docker.arguments = ["--ipc=host"]
    env.docker.shm_size = "8g"
    rc.environment = env
    rc.history.output_collection = False
    rc.history.directories_to_watch = ["logs", "tb"]
    return rc


def test_save_writes_yaml_under_dot_azureml_and_load_round_trips(tmp_path: Path) -> None:
    rc = _customized()
    file = rc.save(tmp_path, "cluster.v2")
    assert file == tmp_path / ".azureml" / "cluster.v2.runconfig"  # v1's place (issue 11)
    data = yaml.safe_load(file.read_text())
    assert data["script"] == "train.py" and data["nodeCount"] == 3
    assert data["environment"]["python"]["interpreterPath"] == "/opt/py/bin/python3"

    back = RunConfiguration.load(tmp_path, "cluster.v2")
    assert back.to_dict() == rc.to_dict()
    assert back.script == "train.py"
    assert back.arguments == ["--epochs", "5", "--lr", "0.01"]
    assert back.target == "cpu-cluster"
    assert back.framework == "PyTorch" and back.communicator == "Gloo"
    assert back.node_count == 3 and back.max_run_duration_seconds == 3600
    assert back.auto_prepare_environment is False
    env = back.environment
    assert (env.name, env.version) == ("my-env", "2")
    assert env.environment_variables == {"EXAMPLE": "value", "N": "1"}
    assert env.python.user_managed_dependencies is True
    assert env.python.interpreter_path == "/opt/py/bin/python3"
    assert env.docker.enabled is True and env.docker.base_image == "example/image:1"
    assert env.docker.arguments == ["--ipc=host"] and env.docker.shm_size == "8g"
    assert back.history.output_collection is False
    assert back.history.directories_to_watch == ["logs", "tb"]
    # load(file) works as well as load(folder, name)
    assert RunConfiguration.load(file).to_dict() == rc.to_dict()


def test_load_missing_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="RunConfiguration.save"):
        RunConfiguration.load(tmp_path, "absent")


def test_load_legacy_titlecase_file(tmp_path: Path) -> None:
    folder = tmp_path / ".runyard"
    folder.mkdir()
    (folder / "legacy.runconfig").write_text(
        "Script: train.py\n"
        "ArgumentVector:\n  - --data\n  - /tmp/data\n"
        "Target: local\n"
        "Framework: PySpark\n"
        "EnvironmentVariables:\n  EXAMPLE_ENV_VAR: Example Value\n"
        "AutoPrepareEnvironment: false\n"
        "CondaDependenciesFile: aml_config/conda_dependencies.yml\n"
        "TrackedRun: true\n"
        "SparkDependenciesFile: aml_config/spark_dependencies.yml\n"
    )
    rc = RunConfiguration.load(tmp_path, "legacy")
    assert rc.script == "train.py"
    assert rc.arguments == ["--data", "/tmp/data"]
    assert rc.target == "local"
    assert rc.framework == "PySpark"
    assert rc.auto_prepare_environment is False
    assert rc.environment.environment_variables == {"EXAMPLE_ENV_VAR": "Example Value"}


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "a\\b", "x" * 200, "-x",
                                  "a b"])
def test_invalid_runconfig_name_raises_naming_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidParameter) as ei:
        RunConfiguration().save(tmp_path, name)
    assert ei.value.field == "name" and str(ei.value).startswith("name:")
    with pytest.raises(InvalidParameter) as ei:
        RunConfiguration.load(tmp_path, name)
    assert ei.value.field == "name"
    assert list(tmp_path.rglob("*.runconfig")) == []
    assert not (tmp_path.parent / "x.runconfig").exists()


def test_save_without_name_raises(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="^name:"):
        RunConfiguration().save(tmp_path)


def _write(tmp_path: Path, text: str, name: str = "cfg") -> None:
    folder = tmp_path / ".runyard"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.runconfig").write_text(text)


@pytest.mark.parametrize(("text", "key"), [
    ("script: a.py\nscriptt: b.py\n", "scriptt"),
    ("environment:\n  pythn: {}\n", "pythn"),
    ("environment:\n  python:\n    interpreterPth: x\n", "interpreterPth"),
    ("history:\n  outputCollect: false\n", "outputCollect"),
])
def test_unknown_key_raises_naming_it(tmp_path: Path, text: str, key: str) -> None:
    _write(tmp_path, text)
    with pytest.raises(InvalidParameter) as ei:
        RunConfiguration.load(tmp_path, "cfg")
    assert ei.value.field.endswith(key)
    assert str(ei.value).startswith(ei.value.field + ":")


@pytest.mark.parametrize("text", ["script: [unclosed\n", "a: b: c\n", "key: 'open\n",
                                  "\tscript: x\n"])
def test_malformed_yaml_raises_invalid_parameter(tmp_path: Path, text: str) -> None:
    _write(tmp_path, text)
    with pytest.raises(InvalidParameter, match="not valid YAML"):
        RunConfiguration.load(tmp_path, "cfg")


def test_non_mapping_yaml_raises_invalid_parameter(tmp_path: Path) -> None:
    _write(tmp_path, "- a\n- b\n")
    with pytest.raises(InvalidParameter, match="^runconfig:"):
        RunConfiguration.load(tmp_path, "cfg")


@pytest.mark.parametrize(("text", "field"), [
    ("framework: Caffe\n", "framework"),
    ("communicator: Carrier-Pigeon\n", "communicator"),
    ("nodeCount: 0\n", "node_count"),
    ("nodeCount: -2\n", "node_count"),
    ("nodeCount: two\n", "node_count"),
    ("maxRunDurationSeconds: -5\n", "max_run_duration_seconds"),
    ("maxRunDurationSeconds: 0\n", "max_run_duration_seconds"),
    ("maxRunDurationSeconds: soon\n", "max_run_duration_seconds"),
    ("target: ''\n", "target"),
])
def test_invalid_values_raise_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    _write(tmp_path, text)
    with pytest.raises(InvalidParameter) as ei:
        RunConfiguration.load(tmp_path, "cfg")
    assert ei.value.field == field and str(ei.value).startswith(f"{field}:")


@pytest.mark.parametrize(("attr", "value"), [
    ("framework", "Caffe"), ("node_count", 0), ("max_run_duration_seconds", -1.5),
    ("arguments", "--lr 0.1"),
])
def test_validate_names_the_bad_field(attr: str, value: Any) -> None:
    rc = RunConfiguration()
    setattr(rc, attr, value)
    with pytest.raises(InvalidParameter, match=f"^{attr}:"):
        rc.validate()


class _Target:
    name = "gpu-cluster"


def test_script_run_config_overrides() -> None:
    env = Environment("train-env")
    src = ScriptRunConfig(source_directory="proj", script="train.py",
                          arguments=["--lr", 0.1], compute_target="cpu-cluster",
                          environment=env, max_run_duration_seconds=120)
    assert src.source_directory == "proj"
    assert src.run_config.target == "cpu-cluster"
    assert src.run_config.environment.name == "train-env"
    assert src.run_config.max_run_duration_seconds == 120
    eff = src.effective_run_config()
    assert eff.script == "train.py" and eff.arguments == ["--lr", 0.1]
    assert eff.target == "cpu-cluster" and eff.environment.name == "train-env"
    assert ScriptRunConfig(compute_target=_Target()).run_config.target == "gpu-cluster"
    cmd = ScriptRunConfig(command=["python", "-c", "print(1)"]).effective_run_config()
    assert cmd.command == ["python", "-c", "print(1)"] and cmd.script is None


def test_script_run_config_copies_its_run_config() -> None:
    rc = RunConfiguration(script="base.py", arguments=["--base"])
    rc.environment.environment_variables["A"] = "1"
    src = ScriptRunConfig(run_config=rc, compute_target="remote")
    assert rc.target == "local"  # the caller's object is untouched by the override
    rc.environment.environment_variables["B"] = "2"
    rc.arguments.append("--later")
    assert src.run_config.environment.environment_variables == {"A": "1"}
    # without overrides, the run_config's script and arguments stay
    eff = src.effective_run_config()
    assert (eff.script, eff.arguments, eff.target) == ("base.py", ["--base"], "remote")


def test_effective_run_config_is_a_deep_copy() -> None:
    env = Environment("e")
    env.environment_variables["K"] = "v"
    src = ScriptRunConfig(script="t.py", arguments=["--a"], environment=env)
    eff = src.effective_run_config()
    eff.environment.environment_variables["K"] = "changed"
    eff.environment.python.interpreter_path = "/other/python"
    eff.environment.docker.arguments.append("--gpus")
    eff.history.directories_to_watch.append("x")
    eff.arguments.append("--b")
    eff.target = "elsewhere"
    eff.script = "other.py"
    assert src.run_config.environment.environment_variables == {"K": "v"}
    assert env.environment_variables == {"K": "v"}
    assert src.run_config.environment.python.interpreter_path == "python"
    assert src.run_config.environment.docker.arguments == []
    assert src.run_config.history.directories_to_watch == ["logs"]
    assert src.arguments == ["--a"] and src.script == "t.py"
    assert src.run_config.target == "local" and src.run_config.script is None
    again = src.effective_run_config()
    assert again.to_dict() == copy.deepcopy(src).effective_run_config().to_dict()
    assert again.environment.environment_variables == {"K": "v"}
    assert again.arguments == ["--a"]
    # the copy is a working RunConfiguration: unknown settings are still refused
    with pytest.raises(AttributeError):
        eff.scriptt = "x"  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["arguments: --lr 0.1\n", "ArgumentVector: --lr 0.1\n"],
                         ids=["arguments", "ArgumentVector"])
def test_string_arguments_are_not_split_into_characters(tmp_path: Path, text: str) -> None:
    _write(tmp_path, text)
    try:
        rc = RunConfiguration.load(tmp_path, "cfg")
    except InvalidParameter as exc:
        assert exc.field.endswith(("arguments", "ArgumentVector"))
        return
    assert rc.arguments == ["--lr 0.1"]


@pytest.mark.parametrize(("text", "section"), [
    ("environment: text\n", "environment"),
    ("history: text\n", "history"),
    ("environment:\n  python: text\n", "python"),
    ("environment:\n  environmentVariables: text\n", "environmentVariables"),
], ids=["environment", "history", "python", "environmentVariables"])
def test_non_mapping_section_raises_invalid_parameter(tmp_path: Path, text: str,
                                                      section: str) -> None:
    _write(tmp_path, text)
    with pytest.raises(InvalidParameter) as ei:
        RunConfiguration.load(tmp_path, "cfg")
    assert section in ei.value.field
