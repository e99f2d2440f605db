"""``RunConfiguration`` and ``ScriptRunConfig``: what to run, where, and in what environment."""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard import settings
from runyard.environment import (
    DEFAULT_CPU_IMAGE,
    DEFAULT_GPU_IMAGE,
    Environment,
    _Section,
)
from runyard.errors import InvalidParameter, NotFound
from runyard.naming import check_runconfig_name
from runyard.runtime.envscrub import is_secret

__all__ = ["DEFAULT_CPU_IMAGE", "DEFAULT_GPU_IMAGE", "HistoryConfiguration", "MpiConfiguration",
           "PyTorchConfiguration", "ResourceConfiguration", "RunConfiguration",
           "ScriptRunConfig"]

FRAMEWORKS = ("Python", "PySpark", "CNTK", "TensorFlow", "PyTorch")
_FRAMEWORK_NAMES = {f.lower(): f for f in FRAMEWORKS}
COMMUNICATORS = ("None", "ParameterServer", "OpenMpi", "IntelMpi", "Gloo", "Nccl")


_ARGUMENT_TYPES = (str, int, float, os.PathLike)


def _argument_list(value: Any, field: str) -> list[Any]:
    """``arguments`` as given to a constructor: a list or tuple (a string is refused: it would
    become one argument per character)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, bytes)):
        raise InvalidParameter(field, f"must be a list of arguments such as ['--lr', '0.1'], "
                               f"not the string {value!r} (shlex.split() turns a command line "
                               "into a list)")
    raise InvalidParameter(field, f"must be a list of arguments such as ['--lr', '0.1'], got "
                           f"{type(value).__name__}")


def _check_argument(value: Any, field: str) -> None:
    if callable(getattr(value, "_run_binding", None)):
        return  # a run input or output (DatasetConsumptionConfig, DataReference, ...)
    if isinstance(value, bytes) or not isinstance(value, _ARGUMENT_TYPES):
        raise InvalidParameter(field, f"{value!r} ({type(value).__name__}) is not a command-line "
                               "argument; give a string or a number")
    if "\x00" in str(value):
        raise InvalidParameter(field, f"{value!r} contains a NUL character, which no command "
                               "line can carry")


def _check_environment(env: Any, field: str = "environment") -> None:
    """The environment's type and its variables; int/float values become strings in place."""
    if not isinstance(env, Environment):
        raise InvalidParameter(field, f"expected an Environment object, got "
                               f"{type(env).__name__} {env!r}; for a registered environment "
                               "use Environment.get(workspace, name)")
    if not isinstance(env.name, str) or not env.name.strip():
        raise InvalidParameter(f"{field}.name", "an environment needs a non-empty name")
    variables = env.environment_variables
    where = f"{field}.environment_variables"
    if not isinstance(variables, dict):
        raise InvalidParameter(where, "must be a dict of variable name to string value")
    for key, value in list(variables.items()):
        if not isinstance(key, str) or not key or "=" in key or "\x00" in key:
            raise InvalidParameter(where, f"{key!r} is not a variable name: give a non-empty "
                                   "string without '=' or NUL")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidParameter(f"{where}[{key!r}]", f"{value!r} is not a string; give the "
                                   "value as a string (e.g. '1' or 'true')")
        if not isinstance(value, str):
            value = variables[key] = str(value)  # numbers are passed as str(value)
        if "\x00" in value:
            raise InvalidParameter(f"{where}[{key!r}]", "contains a NUL character, which no "
                                   "environment variable can carry")
        if is_secret(key, value):
            raise InvalidParameter(f"{where}[{key!r}]", "runyard's credentials (its secret key, "
                                   "database URLs with a password, RUNYARD_* tokens) are never "
                                   "passed to a script; use another variable name, or give "
                                   "the script what it needs another way")


def _check_azure_only(cls: str, given: dict[str, Any], accepted: set[str]) -> None:
    """Accept (and ignore) Azure-only keyword arguments; refuse anything else by name."""
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise InvalidParameter(unknown[0], f"{cls} has no argument {unknown[0]!r}")


@dataclass
class HistoryConfiguration(_Section):
    """Output collection and snapshot settings."""

    output_collection: bool = True
    snapshot_project: bool = True
    directories_to_watch: list[str] = field(default_factory=lambda: ["logs"])


@dataclass
class AmlComputeConfiguration(_Section):
    """Run-based cluster settings (``target = "amlcompute"``): a cluster made for one run."""

    vm_size: str | None = None
    vm_priority: str | None = None
    _retain_cluster: bool = False
    _name: str | None = None
    _cluster_max_node_count: int = 1

    _KEYS = {"vmSize": "vm_size", "vmPriority": "vm_priority", "retainCluster": "_retain_cluster",
             "name": "_name", "clusterMaxNodeCount": "_cluster_max_node_count"}

    def to_dict(self) -> dict[str, Any]:
        """The ``.runconfig`` layout (Azure's camelCase keys)."""
        return {k: getattr(self, f) for k, f in self._KEYS.items()}

    @classmethod
    def _from(cls, data: dict[str, Any] | None, where: str) -> Any:
        if data is not None and not isinstance(data, dict):
            raise InvalidParameter(where, "must be a mapping of settings")
        out = cls()
        for key, value in (data or {}).items():
            if key not in cls._KEYS:
                raise InvalidParameter(f"{where}.{key}", "unknown key; expected one of "
                                       f"{', '.join(cls._KEYS)}")
            setattr(out, cls._KEYS[key], value)
        return out


@dataclass
class MpiConfiguration(_Section):
    """Distributed runs (Azure ML ``MpiConfiguration``): processes per node, node count."""

    process_count_per_node: int = 1
    node_count: int = 1


class PyTorchConfiguration:
    """Azure ML's ``PyTorchConfiguration`` (``distributed_job_config``): ``process_count`` in
    all, over ``node_count`` nodes; RANK, WORLD_SIZE, MASTER_ADDR... are set for each process."""

    def __init__(self, communication_backend: str = "Nccl", process_count: int | None = None,
                 node_count: int = 1) -> None:
        self.communication_backend = communication_backend
        self.process_count = process_count
        self.node_count = node_count


@dataclass
class ResourceConfiguration(_Section):
    """What one node of a run asks for on a cluster; None: a whole node of its ``vm_size``."""

    cpu: float | None = None
    gpu: int | None = None
    memory_gb: float | None = None


_FIELDS = ("script", "arguments", "target", "framework", "communicator",
           "auto_prepare_environment", "max_run_duration_seconds", "node_count", "command")


class RunConfiguration:
    """How a script runs: target, script and arguments, environment, history, limits.

    Unknown attributes are refused (as in Azure ML), so a typo never silently does nothing.
    """

    def __init__(self, script: str | None = None, arguments: list[Any] | None = None,
                 framework: str | None = None, communicator: str | None = None,
                 conda_dependencies: Any = None, command: list[str] | str | None = None,
                 **azure_only: Any) -> None:
        _check_azure_only("RunConfiguration", azure_only, {"_history_enabled", "_path", "_name"})
        object.__setattr__(self, "_ready", False)
        self.script = script
        self.arguments: list[Any] = (_argument_list(arguments, "arguments")
                                     if arguments is not None else [])
        self.target: str = "local"
        self.framework = framework or "Python"
        self.communicator = communicator or "None"
        self.auto_prepare_environment = True
        self.max_run_duration_seconds: float | None = None
        self.node_count = 1
        self.command = command
        self.environment = Environment()
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
        self.history = HistoryConfiguration()
        self.amlcompute = AmlComputeConfiguration()
        self.mpi = MpiConfiguration()
        self.resources = ResourceConfiguration()
        object.__setattr__(self, "_ready", True)

    _ready: bool

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "prepare_environment":  # the Azure docs' name for auto_prepare_environment
            name = "auto_prepare_environment"
        if name == "framework" and isinstance(value, str):
            value = _FRAMEWORK_NAMES.get(value.lower(), value)
        if self._ready and name not in (*_FIELDS, "environment", "history", "amlcompute",
                                        "mpi", "resources"):
            raise AttributeError(f"RunConfiguration has no setting {name!r}")
        if name == "target" and not isinstance(value, str):
            value = getattr(value, "name", value)  # a ComputeTarget object stores its name
        object.__setattr__(self, name, value)

    # -- validation & (de)serialization ------------------------------------------------------
    def validate(self) -> None:
        """Raise ``InvalidParameter`` naming the first bad field.

        Types are checked here, before a run is queued: ``script`` (a string), ``arguments``
        (a list of strings or numbers), ``command`` (a string or such a list), no NUL
        anywhere, ``max_run_duration_seconds`` (a finite positive number), the environment
        (an ``Environment``) and its variables (names without ``=`` or NUL; values strings).
        Integer and float variable values are accepted and converted with ``str()`` (Azure ML
        v1 scripts often pass them); booleans and other types are refused, since their string
        form is ambiguous ('True' or '1'). Variables that would carry runyard's credentials
        (see :mod:`runyard.runtime.envscrub`) are refused.
        """
        if self.script is not None:
            if isinstance(self.script, bytes) or not isinstance(self.script, (str, os.PathLike)):
                raise InvalidParameter("script", f"must be the file name of the script, e.g. "
                                       f"'train.py', got {type(self.script).__name__} "
                                       f"{self.script!r}")
            if "\x00" in str(self.script):
                raise InvalidParameter("script", f"{self.script!r} contains a NUL character")
        if not isinstance(self.arguments, list):
            raise InvalidParameter("arguments", "must be a list of arguments, e.g. "
                                   "['--lr', '0.1']" + (
                                       f", not the string {self.arguments!r}"
                                       if isinstance(self.arguments, str) else ""))
        for i, arg in enumerate(self.arguments):
            _check_argument(arg, f"arguments[{i}]")
        cmd = self.command
        if cmd is not None:
            if isinstance(cmd, str):
                if not cmd.strip():
                    raise InvalidParameter("command", "is empty; give a command line")
                _check_argument(cmd, "command")
            elif isinstance(cmd, (list, tuple)):
                if not cmd:
                    raise InvalidParameter("command", "is empty; give a command such as "
                                           "['python', 'train.py']")
                for i, arg in enumerate(cmd):
                    _check_argument(arg, f"command[{i}]")
            else:
                raise InvalidParameter("command", f"must be a string or a list of strings, got "
                                       f"{type(cmd).__name__}")
        _check_environment(self.environment)
        if self.framework not in FRAMEWORKS:
            raise InvalidParameter("framework", f"{self.framework!r} is not one of "
                                   f"{', '.join(FRAMEWORKS)}")
        if str(self.communicator) not in COMMUNICATORS:
            raise InvalidParameter("communicator", f"{self.communicator!r} is not one of "
                                   f"{', '.join(COMMUNICATORS)}")
        if (not isinstance(self.node_count, int) or isinstance(self.node_count, bool)
                or self.node_count < 1):
            raise InvalidParameter("node_count", "must be an integer of 1 or more")
        mrd = self.max_run_duration_seconds
        if mrd is not None and (isinstance(mrd, bool) or not isinstance(mrd, (int, float))
                                or not math.isfinite(mrd) or mrd <= 0):
            raise InvalidParameter("max_run_duration_seconds", f"must be a finite positive "
                                   f"number of seconds (or None for no limit), got {mrd!r}")
        if not isinstance(self.target, str) or not self.target:
            raise InvalidParameter("target", "must name a compute target, e.g. 'local'")
        procs = self.mpi.process_count_per_node
        if not isinstance(procs, int) or isinstance(procs, bool) or procs < 1:
            raise InvalidParameter("mpi.process_count_per_node", "must be an integer of 1 or "
                                   "more")
        for key in ("cpu", "gpu", "memory_gb"):
            value = getattr(self.resources, key)
            if value is not None and (not isinstance(value, (int, float))
                                      or isinstance(value, bool) or value <= 0):
                raise InvalidParameter(f"resources.{key}", "must be a positive number (or "
                                       "None for a whole node)")
        if self.target == "amlcompute":  # a cluster made for this run (run-based creation)
            from runyard.compute.vmsizes import check_run_based  # noqa: PLC0415

            check_run_based(self)

    def to_dict(self) -> dict[str, Any]:
        """camelCase dict (the ``.runconfig`` YAML layout)."""
        return {
            "script": self.script, "arguments": [str(a) for a in self.arguments],
            "command": self.command, "target": self.target, "framework": self.framework,
            "communicator": self.communicator,
            "autoPrepareEnvironment": self.auto_prepare_environment,
            "maxRunDurationSeconds": self.max_run_duration_seconds, "nodeCount": self.node_count,
            "environment": self.environment.to_dict(), "history": self.history.to_dict(),
            "mpi": self.mpi.to_dict(), "resources": self.resources.to_dict(),
            "amlcompute": self.amlcompute.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfiguration:
        """Inverse of :meth:`to_dict`; accepts the legacy TitleCase keys too."""
        if not isinstance(data, dict):
            raise InvalidParameter("runconfig", "a run configuration must be a mapping")
        legacy = {"ArgumentVector": "arguments", "Target": "target", "Framework": "framework",
                  "Script": "script", "AutoPrepareEnvironment": "autoPrepareEnvironment",
                  "EnvironmentVariables": None, "CondaDependenciesFile": None,
                  "TrackedRun": None, "SparkDependenciesFile": None}
        rc = cls()
        env_vars: dict[str, str] = {}
        for key, value in data.items():
            if key in legacy:
                if key == "EnvironmentVariables":
                    env_vars = dict(value or {})
                key = legacy[key] or ""
                if not key:
                    continue
            name = {"autoPrepareEnvironment": "auto_prepare_environment",
                    "maxRunDurationSeconds": "max_run_duration_seconds",
                    "nodeCount": "node_count"}.get(key, key)
            if name in ("environment", "history") and value is not None \
                    and not isinstance(value, dict):
                raise InvalidParameter(f"runconfig.{key}", "must be a mapping of settings")
            if name == "environment":
                rc.environment = Environment.from_dict(value)
            elif name == "history":
                rc.history = HistoryConfiguration._from(value, "history")
            elif name == "mpi":
                rc.mpi = MpiConfiguration._from(value, "mpi")
            elif name == "resources":
                rc.resources = ResourceConfiguration._from(value, "resources")
            elif name == "amlcompute":
                rc.amlcompute = AmlComputeConfiguration._from(value, "amlcompute")
            elif name == "arguments":
                if value is not None and not isinstance(value, list):
                    raise InvalidParameter(f"runconfig.{key}", "must be a list of arguments, "
                                           "e.g. ['--lr', '0.1']")
                rc.arguments = list(value or [])
            elif name in _FIELDS:
                setattr(rc, name, value)
            elif key in ("spark", "hdi", "tensorflow", "pytorch", "dataReferences",
                         "sourceDirectoryDataStore", "containerInstance",
                         "batchai", "data", "outputData", "datacaches", "docker",
                         "environmentVariables", "priority", "credentialPassthrough"):
                continue  # sections owned by later issues / Azure only: accepted, ignored
            else:
                raise InvalidParameter(f"runconfig.{key}", "unknown key in run configuration")
        rc.environment.environment_variables.update(env_vars)
        rc.validate()
        return rc

    #: Folders a named run configuration is looked for in, under the project folder (Azure ML
    #: v1's two, then runyard's own older place).
    CONFIG_DIRS = (".azureml", "aml_config", settings.CONFIG_DIR_NAME)

    @staticmethod
    def _save_file(path: str | os.PathLike[str], name: str) -> Path:
        """v1's place: ``<path>/aml_config/<name>.runconfig`` if ``aml_config/`` exists,
        else ``<path>/.azureml/<name>.runconfig``."""
        check_runconfig_name(name)
        root = Path(path)
        folder = "aml_config" if (root / "aml_config").is_dir() else ".azureml"
        return root / folder / f"{name}.runconfig"

    @classmethod
    def _load_file(cls, path: str | os.PathLike[str], name: str) -> Path:
        check_runconfig_name(name)
        tried = [Path(path) / folder / f"{name}.runconfig" for folder in cls.CONFIG_DIRS]
        for file in tried:
            if file.is_file():
                return file
        raise NotFound(f"run configuration {name!r} does not exist (looked for "
                       f"{', '.join(str(f) for f in tried)}); save one with "
                       "RunConfiguration.save(path, name)")

    def save(self, path: str | os.PathLike[str] | None = None, name: str | None = None,
             separate_environment_yaml: bool = False) -> Path:
        """Write the run configuration as Azure ML v1 did: camelCase YAML in
        ``<path>/.azureml/<name>.runconfig`` (``aml_config/`` when that folder exists), or in
        ``path`` itself when it names a ``.runconfig`` file. Returns the file."""
        import yaml  # noqa: PLC0415

        if separate_environment_yaml:
            from runyard.errors import NotSupported  # noqa: PLC0415

            raise NotSupported("RunConfiguration.save(separate_environment_yaml=True): runyard "
                               "keeps the environment inside the .runconfig file; save "
                               "without it")
        if name is None and path is not None and str(path).endswith(".runconfig"):
            file = Path(path)
        elif name is None:
            raise InvalidParameter("name", "give the run configuration a name, e.g. 'local' "
                                   "(or pass path='<file>.runconfig')")
        else:
            file = self._save_file(path or ".", name)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return file

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, name: str | None = None,
             separate_environment_yaml: bool = False, project_object: Any = None,
             run_config_name: str | None = None, **_kwargs: Any) -> RunConfiguration:
        """Read a ``.runconfig``: ``load(folder, name)`` looks in ``<folder>/.azureml/``, then
        ``aml_config/``, then ``.runyard/``; ``load(file)`` reads that file. The 2018 form
        ``load(project_object=folder, run_config_name=name)`` works too. v1's camelCase and
        legacy TitleCase keys are both read."""
        import yaml  # noqa: PLC0415

        if run_config_name is not None:
            if name is not None and name != run_config_name:
                raise InvalidParameter("run_config_name", f"{run_config_name!r} and name="
                                       f"{name!r} disagree; give one of them")
            name = run_config_name
        if project_object is not None:
            path = getattr(project_object, "project_directory", project_object)
        if name is None:
            if path is None:
                raise InvalidParameter("name", "give the run configuration's name (and the "
                                       "project folder), or the path of a .runconfig file")
            file = Path(path)
            if not file.is_file():
                raise NotFound(f"run configuration {file} does not exist; save one with "
                               "RunConfiguration.save(path, name)")
        else:
            file = cls._load_file(path if path is not None else ".", name)
        try:
            data = yaml.safe_load(file.read_text())
        except yaml.YAMLError as exc:
            raise InvalidParameter("runconfig", f"{file} is not valid YAML: {exc}") from exc
        return cls.from_dict(data or {})

    @classmethod
    def delete(cls, path: str | os.PathLike[str], name: str) -> None:
        """Delete the saved run configuration ``name`` of the project in ``path``."""
        cls._load_file(path, name).unlink()

    def __deepcopy__(self, memo: dict[int, Any]) -> RunConfiguration:
        new = RunConfiguration()
        for k, v in self.__dict__.items():
            if k != "_ready":
                object.__setattr__(new, k, copy.deepcopy(v, memo))
        return new

    def __repr__(self) -> str:
        return (f"RunConfiguration(script={self.script!r}, target={self.target!r}, "
                f"environment={self.environment.name!r})")


class ScriptRunConfig:
    """A script (or command) in a source directory, with its run configuration."""

    def __init__(self, source_directory: str | os.PathLike[str] = ".", script: str | None = None,
                 arguments: list[Any] | None = None, run_config: RunConfiguration | None = None,
                 compute_target: Any = None, environment: Environment | None = None,
                 command: list[str] | str | None = None,
                 max_run_duration_seconds: float | None = None,
                 **azure_only: Any) -> None:
        _check_azure_only("ScriptRunConfig", azure_only, {
            "_telemetry_values", "distributed_job_config", "resume_from",
            "docker_runtime_config"})
        if isinstance(source_directory, bytes) or not isinstance(source_directory,
                                                                 (str, os.PathLike)):
            raise InvalidParameter("source_directory", f"must be a folder path, got "
                                   f"{type(source_directory).__name__} {source_directory!r}")
        if run_config is not None and not isinstance(run_config, RunConfiguration):
            raise InvalidParameter("run_config", f"expected a RunConfiguration, got "
                                   f"{type(run_config).__name__}")
        if environment is not None:
            _check_environment(environment)
        self.source_directory = str(source_directory)
        self.script = script
        self.arguments = (_argument_list(arguments, "arguments")
                          if arguments is not None else None)
        self.command = command
        self.run_config = copy.deepcopy(run_config) if run_config else RunConfiguration()
        if compute_target is not None:
            self.run_config.target = compute_target
        if environment is not None:
            self.run_config.environment = environment
        if max_run_duration_seconds is not None:
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
        dist = azure_only.get("distributed_job_config")
        if isinstance(dist, MpiConfiguration):
            self.run_config.mpi = copy.deepcopy(dist)
            self.run_config.node_count = dist.node_count
        elif isinstance(dist, PyTorchConfiguration):
            nodes = max(1, int(dist.node_count or 1))
            self.run_config.node_count = nodes
            total = dist.process_count or nodes
            if total % nodes:
                raise InvalidParameter("distributed_job_config", f"process_count ({total}) "
                                       f"must be a multiple of node_count ({nodes})")
            self.run_config.mpi.process_count_per_node = total // nodes
        elif dist is not None:
            raise InvalidParameter("distributed_job_config", "give an MpiConfiguration or a "
                                   "PyTorchConfiguration")

    def effective_run_config(self) -> RunConfiguration:
        """A copy of ``run_config`` with script/arguments/command overridden from here."""
        if not isinstance(self.run_config, RunConfiguration):
            raise InvalidParameter("run_config", f"expected a RunConfiguration, got "
                                   f"{type(self.run_config).__name__}")
        if isinstance(self.arguments, (str, bytes)):
            raise InvalidParameter("arguments", f"must be a list of arguments such as "
                                   f"['--lr', '0.1'], not the string {self.arguments!r}")
        rc = copy.deepcopy(self.run_config)
        if self.script is not None:
            rc.script = self.script
        if self.arguments is not None:
            rc.arguments = _argument_list(self.arguments, "arguments")
        if self.command is not None:
            rc.command = self.command
        return rc

    def __repr__(self) -> str:
        return (f"ScriptRunConfig(source_directory={self.source_directory!r}, "
                f"script={self.script!r}, target={self.run_config.target!r})")
