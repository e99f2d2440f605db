"""``azureml.train.estimator``: Azure ML v1's ``Estimator``, translated into a ScriptRunConfig.

v1 deprecated estimators in favour of ``ScriptRunConfig`` with an ``Environment``; runyard keeps
them so that v1 code ports with imports changed only. An estimator is checked when it is
made (a bad argument raises ``InvalidParameter`` or ``NotSupported`` naming it) and becomes a
:class:`runyard.runconfig.ScriptRunConfig` through :meth:`Estimator._script_run_config`, which
``Experiment.submit(estimator)`` and ``HyperDriveConfig(estimator=...)`` call. The
translation rules, and the framework version table of ``SKLearn``/``PyTorch``/``TensorFlow``/
``Chainer`` (:mod:`runyard.environments.frameworks`), are in ``docs/estimators.md``.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from runyard.environment import Environment
from runyard.environments.conda_dependencies import CondaDependencies
from runyard.environments.frameworks import framework_pins
from runyard.environments.requirements import parse_requirements
from runyard.environments.specrules import (
    check_base_image,
    check_conda_package,
    check_pip_requirement,
)
from runyard.errors import InvalidParameter, NotSupported
from runyard.runconfig import (
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    ScriptRunConfig,
)

__all__ = ["Estimator", "Gloo", "Mpi", "Nccl", "ParameterServer"]


# -- distributed training (v1: azureml.train.dnn) ---------------------------------------------
class _Distributed:
    """Base of v1's ``distributed_training`` choices."""

    backend: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Mpi(_Distributed):
    """MPI (Horovod): ``node_count x process_count_per_node`` ranks."""

    backend = "mpi"

    def __init__(self, process_count_per_node: int = 1) -> None:
        self.process_count_per_node = _count(process_count_per_node,
                                             "Mpi.process_count_per_node")

    def __repr__(self) -> str:
        return f"Mpi(process_count_per_node={self.process_count_per_node})"


class ParameterServer(_Distributed):
    """TensorFlow parameter-server training. runyard has no parameter-server launcher: an
    estimator given one raises ``NotSupported`` (use ``Mpi`` with Horovod, or TensorFlow's
    ``MultiWorkerMirroredStrategy`` on ``Mpi`` processes)."""

    backend = "ps"

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1) -> None:
        self.worker_count = _count(worker_count, "ParameterServer.worker_count")
        self.parameter_server_count = _count(parameter_server_count,
                                             "ParameterServer.parameter_server_count")


class Gloo(_Distributed):
    """PyTorch ``torch.distributed`` over Gloo (CPU)."""

    backend = "gloo"


class Nccl(_Distributed):
    """PyTorch ``torch.distributed`` over NCCL (GPU)."""

    backend = "nccl"


_BACKENDS: dict[str, type[_Distributed]] = {"mpi": Mpi, "ps": ParameterServer,
                                            "parameterserver": ParameterServer,
                                            "gloo": Gloo, "nccl": Nccl}


def _count(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidParameter(field, f"must be an integer of 1 or more, got {value!r}")
    return value


def _str_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidParameter(field, f"must be a list of package specs such as "
                               f"['numpy==2.4.6'], got {type(value).__name__} {value!r}")
    return list(value)


def _path(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise InvalidParameter(field, f"must be a file path, got {type(value).__name__} "
                               f"{value!r}")
    return os.fspath(value)


def _input_name(item: Any) -> str | None:
    """The run-input name of a dataset input (``name``) or data reference."""
    name = getattr(item, "data_reference_name", None) or getattr(item, "name", None)
    return name if isinstance(name, str) else None


#: v1's private keyword arguments (telemetry, linting, validation switches): accepted, ignored.
_PRIVATE_OK = ("_enable_optimized_mode", "_disable_validation", "_show_lint_warnings",
               "_show_package_warnings", "_telemetry_values")


class Estimator:
    """Azure ML v1's generic estimator: a script, its arguments, its environment and target.

    Every argument is keyword-only after ``source_directory`` and is checked here. How each
    becomes part of the :class:`~runyard.runconfig.ScriptRunConfig` (see ``docs/estimators.md``):

    * ``entry_script`` -> the script; ``script_params`` (a dict ``{'--arg': value}``) -> its
      arguments in dict order, ``key, value`` each; a value of None or ``""`` gives the key
      alone (a flag). Dataset inputs and data references (``ds.as_named_input('x')
      .as_mount()``, ``datastore.as_download()``) stay objects, rendered on the target.
    * ``inputs``: v1 also listed inputs here; runyard binds inputs through the arguments
      only, so an input must also be a ``script_params`` value, or named like one (one that
      is not raises ``NotSupported`` naming it).
    * ``compute_target`` -> the target; ``vm_size`` without it -> a cluster made for this run
      (``target="amlcompute"``, with ``vm_priority`` and as many nodes as ``node_count``).
    * ``node_count``, ``process_count_per_node``, ``distributed_training`` (``Mpi``,
      ``Gloo``, ``Nccl``; ``ParameterServer`` is refused) or ``distributed_backend``
      (``'mpi'``, ``'gloo'``, ``'nccl'``) -> the run's node and process counts; more than one
      node or process without a backend is MPI, as in v1.
    * ``environment_definition`` (an ``Environment``) is used as given; otherwise an
      environment is made from the framework's pins (framework estimators),
      ``conda_dependencies_file``/``_path``, ``pip_requirements_file``/``_path``,
      ``conda_packages`` and ``pip_packages`` (later ones replace a same-named earlier pin).
      ``user_managed=True`` runs the target's ``python`` as is. ``custom_docker_base_image``
      (v1's older name ``custom_docker_image`` too) builds in a container on that image;
      otherwise runyard's builder makes the environment on the target (no container, whatever
      ``use_docker`` says). ``environment_variables`` are set for the script.
    * ``max_run_duration_seconds`` -> the run's time limit.

    Azure-only settings with no effect here are accepted and ignored:
    ``source_directory_data_store`` (the file share behind the snapshot), ``vm_priority``
    without ``vm_size`` (no cluster is made), ``shm_size`` without a container.
    ``image_registry_details`` and ``resume_from`` are refused: ignoring them would change
    what runs.
    """

    #: The framework of :mod:`runyard.environments.frameworks` (None: the generic estimator).
    _FRAMEWORK: ClassVar[str | None] = None
    #: ``RunConfiguration.framework`` of this estimator's runs.
    _RUN_FRAMEWORK: ClassVar[str] = "Python"
    #: Which ``distributed_training`` choices this estimator takes.
    _BACKENDS_OK: ClassVar[tuple[str, ...]] = ("mpi",)

    def __init__(self, source_directory: str | os.PathLike[str], *,
                 compute_target: Any = None, vm_size: str | None = None,
                 vm_priority: str | None = None, entry_script: str | None = None,
                 script_params: Mapping[str, Any] | None = None, node_count: int = 1,
                 process_count_per_node: int = 1, distributed_backend: str | None = None,
                 distributed_training: Any = None, use_gpu: bool = False,
                 use_docker: bool = True, custom_docker_base_image: str | None = None,
                 custom_docker_image: str | None = None, image_registry_details: Any = None,
                 user_managed: bool = False, conda_packages: list[str] | None = None,
                 pip_packages: list[str] | None = None,
                 conda_dependencies_file_path: str | os.PathLike[str] | None = None,
                 pip_requirements_file_path: str | os.PathLike[str] | None = None,
                 conda_dependencies_file: str | os.PathLike[str] | None = None,
                 pip_requirements_file: str | os.PathLike[str] | None = None,
                 environment_variables: Mapping[str, str] | None = None,
                 environment_definition: Environment | None = None,
                 inputs: list[Any] | None = None, source_directory_data_store: Any = None,
                 shm_size: str | None = None, resume_from: Any = None,
                 max_run_duration_seconds: float | None = None, **kwargs: Any) -> None:
        self._framework_version: str | None = getattr(self, "_framework_version", None)
        self._check_kwargs(kwargs)
        if isinstance(source_directory, bytes) or not isinstance(source_directory,
                                                                 (str, os.PathLike)):
            raise InvalidParameter("source_directory", f"must be a folder path, got "
                                   f"{type(source_directory).__name__} {source_directory!r}")
        self.source_directory = os.fspath(source_directory)
        if not isinstance(entry_script, (str, os.PathLike)) or not str(entry_script).strip():
            raise InvalidParameter("entry_script", f"give the script to run, relative to "
                                   f"source_directory (e.g. 'train.py'), got {entry_script!r}")
        self.entry_script = os.fspath(entry_script)
        for name, flag in (("use_gpu", use_gpu), ("use_docker", use_docker),
                           ("user_managed", user_managed)):
            if not isinstance(flag, bool):
                raise InvalidParameter(name, f"must be True or False, got {flag!r}")
        self.use_gpu = use_gpu
        self._arguments = self._flatten(script_params)
        self.script_params = dict(script_params or {})
        self._check_inputs(inputs)
        if image_registry_details is not None:
            raise NotSupported("Estimator(image_registry_details=...): runyard pulls base "
                               "images with the target's own registry login; run "
                               "'docker login <registry>' on the target and leave "
                               "image_registry_details unset")
        if resume_from is not None:
            raise NotSupported("Estimator(resume_from=...): runyard does not restore "
                               "checkpoints into a run; pass the checkpoint folder as an "
                               "input in script_params (e.g. {'--resume-from': "
                               "datastore.path('ckpt').as_download()}) and load it in the "
                               "script")
        del source_directory_data_store  # Azure's file share behind the snapshot: no effect
        image = self._docker_image(use_docker, custom_docker_base_image, custom_docker_image)
        nodes = _count(node_count, "node_count")
        procs = _count(process_count_per_node, "process_count_per_node")
        self.node_count = nodes
        self.process_count_per_node = procs
        self._distributed = self._distributed_choice(distributed_backend, distributed_training,
                                                     nodes, procs)
        env = self._environment(
            environment_definition, user_managed=user_managed, image=image, shm_size=shm_size,
            conda_packages=_str_list(conda_packages, "conda_packages"),
            pip_packages=_str_list(pip_packages, "pip_packages"),
            conda_file=self._one_file(conda_dependencies_file, conda_dependencies_file_path,
                                      "conda_dependencies_file"),
            pip_file=self._one_file(pip_requirements_file, pip_requirements_file_path,
                                    "pip_requirements_file"),
            variables=environment_variables)
        rc = RunConfiguration()
        rc.framework = self._RUN_FRAMEWORK
        self._target(rc, compute_target, vm_size, vm_priority, nodes)
        self._config = ScriptRunConfig(
            self.source_directory, self.entry_script, arguments=[], run_config=rc,
            environment=env, max_run_duration_seconds=max_run_duration_seconds,
            distributed_job_config=self._job_config(nodes, procs))
        if isinstance(self._distributed, (Gloo, Nccl)):
            self._config.run_config.communicator = "Gloo" if isinstance(
                self._distributed, Gloo) else "Nccl"
        elif self._distributed is not None:
            self._config.run_config.communicator = "OpenMpi"
        self._config.run_config.mpi.node_count = nodes
        self._config.run_config.validate()

    # -- the translation ----------------------------------------------------------------------
    def _script_run_config(self) -> ScriptRunConfig:
        """A new ScriptRunConfig for one submission (a fresh copy each call: a sweep adds
        its hyperparameters to the arguments of its own copy)."""
        return ScriptRunConfig(self.source_directory, self.entry_script,
                               arguments=list(self._arguments),
                               run_config=self._config.run_config)

    @property
    def run_config(self) -> RunConfiguration:
        """The run configuration submissions start from (changes to it are kept, as in v1)."""
        return self._config.run_config

    @property
    def conda_dependencies(self) -> CondaDependencies | None:
        """The environment's package specification (None: none, e.g. user-managed)."""
        cd = self.run_config.environment.python.conda_dependencies
        return cd if isinstance(cd, CondaDependencies) else None

    @property
    def framework_version(self) -> str | None:
        """The framework version the environment installs (the table's key), or None."""
        return self._framework_version

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(source_directory={self.source_directory!r}, "
                f"entry_script={self.entry_script!r}, target={self.run_config.target!r})")

    # -- checks -------------------------------------------------------------------------------
    def _check_kwargs(self, kwargs: dict[str, Any]) -> None:
        cls = type(self).__name__
        for name in sorted(kwargs):
            if name in _PRIVATE_OK:
                continue
            if name in ("worker_count", "parameter_server_count"):  # v1 TensorFlow, deprecated
                raise NotSupported(f"{cls}({name}=...): TensorFlow parameter-server training "
                                   "is not supported by runyard; use "
                                   "distributed_training=Mpi() (Horovod) instead")
            raise InvalidParameter(name, f"{cls} has no argument {name!r}")

    @staticmethod
    def _flatten(script_params: Any) -> list[Any]:
        """``{'--a': 1, '--flag': None}`` -> ``['--a', 1, '--flag']`` (dict order)."""
        if script_params is None:
            return []
        if not isinstance(script_params, Mapping):
            raise InvalidParameter("script_params", f"must be a dict of argument to value, "
                                   f"e.g. {{'--lr': 0.01}}, got {type(script_params).__name__}")
        args: list[Any] = []
        for key, value in script_params.items():
            where = f"script_params[{key!r}]"
            if not isinstance(key, str) or not key.strip() or "\x00" in key:
                raise InvalidParameter(where, "a key must be a non-empty argument string such "
                                       "as '--lr'")
            args.append(key)
            if value is None or (isinstance(value, str) and value == ""):
                continue  # a flag: the key alone
            if callable(getattr(value, "_run_binding", None)):
                args.append(value)  # a dataset input or data reference, rendered on the target
                continue
            if (isinstance(value, bytes)
                    or not isinstance(value, (str, int, float, os.PathLike))):
                raise InvalidParameter(where, f"{value!r} ({type(value).__name__}) is not a "
                                       "command-line value; give a string or a number (a list "
                                       "as one string, e.g. '1,2,3')")
            if "\x00" in str(value):
                raise InvalidParameter(where, "contains a NUL character, which no command "
                                       "line can carry")
            args.append(value)
        return args

    def _check_inputs(self, inputs: Any) -> None:
        if inputs is None:
            return
        if not isinstance(inputs, (list, tuple)):
            raise InvalidParameter("inputs", f"must be a list of dataset inputs or data "
                                   f"references, got {type(inputs).__name__}")
        given = [a for a in self._arguments if callable(getattr(a, "_run_binding", None))]
        names = {_input_name(a) for a in given} - {None}
        for i, item in enumerate(inputs):
            if not callable(getattr(item, "_run_binding", None)):
                raise InvalidParameter(f"inputs[{i}]", f"{item!r} is not a dataset input or "
                                       "data reference (e.g. ds.as_named_input('x')."
                                       "as_mount() or datastore.as_download())")
            name = _input_name(item)
            if not any(item is a for a in given) and name not in names:
                raise NotSupported(f"Estimator(inputs=[...]): input {name or i!r} is not a "
                                   "value of script_params (nor named like one); runyard "
                                   "passes inputs to the script "
                                   "through its arguments only: add it to script_params, "
                                   "e.g. {'--data': <the input>}")

    @staticmethod
    def _docker_image(use_docker: bool, base: Any, old: Any) -> str | None:
        """The container base image (None: no container)."""
        if old is not None:
            warnings.warn("custom_docker_image is v1's deprecated name of "
                          "custom_docker_base_image; use that", DeprecationWarning,
                          stacklevel=4)
            if base is not None and base != old:
                raise InvalidParameter("custom_docker_image", f"{old!r} and "
                                       f"custom_docker_base_image={base!r} disagree; give "
                                       "custom_docker_base_image only")
            base = old
        if base is None:
            return None
        image = check_base_image(base, "custom_docker_base_image")
        if not use_docker:
            raise InvalidParameter("use_docker", "is False but custom_docker_base_image is "
                                   "given: a base image needs a container; drop one of them")
        return image

    @staticmethod
    def _one_file(relative: Any, path: Any, field: str) -> tuple[str, Path] | None:
        """v1's ``X_file`` (relative to the source directory) or ``X_file_path``: one."""
        rel = _path(relative, field)
        full = _path(path, f"{field}_path")
        if rel is not None and full is not None:
            raise InvalidParameter(f"{field}_path", f"give {field} or {field}_path, not both")
        if full is not None:
            return f"{field}_path", Path(full)
        return None if rel is None else (field, Path(rel))

    def _distributed_choice(self, backend: Any, choice: Any, nodes: int,
                            procs: int) -> _Distributed | None:
        cls = type(self).__name__
        if backend is not None:
            if choice is not None:
                raise InvalidParameter("distributed_backend", "give distributed_training or "
                                       "the older distributed_backend, not both")
            kind = _BACKENDS.get(str(backend).lower()) if isinstance(backend, str) else None
            if kind is None:
                raise InvalidParameter("distributed_backend", f"{backend!r} is not one of "
                                       "'mpi', 'ps', 'gloo', 'nccl'")
            choice = Mpi(procs) if kind is Mpi else kind()
        if choice is None and (nodes > 1 or procs > 1):
            choice = Mpi(procs)  # v1: more than one node or process is an MPI job
        if choice is not None and not self._BACKENDS_OK:
            raise InvalidParameter("node_count" if nodes > 1 else "process_count_per_node"
                                   if procs > 1 else "distributed_training",
                                   f"{cls} runs one process on one node; leave node_count, "
                                   "process_count_per_node and distributed_training unset")
        if choice is None:
            return None
        if not isinstance(choice, _Distributed):
            raise InvalidParameter("distributed_training", f"expected Mpi(), Gloo(), Nccl() or "
                                   f"ParameterServer(), got {type(choice).__name__} {choice!r}")
        if isinstance(choice, ParameterServer):
            raise NotSupported(f"{cls}(distributed_training=ParameterServer()): runyard has no "
                               "parameter-server launcher; use distributed_training=Mpi() "
                               "(Horovod), or TensorFlow's MultiWorkerMirroredStrategy")
        if choice.backend not in self._BACKENDS_OK:
            raise InvalidParameter("distributed_training", f"{cls} takes "
                                   f"{' or '.join(b.title() + '()' for b in self._BACKENDS_OK)}"
                                   f", not {choice!r} (Gloo and Nccl are PyTorch's)")
        if isinstance(choice, Mpi) and procs != 1 and procs != choice.process_count_per_node:
            raise InvalidParameter("process_count_per_node", f"{procs} disagrees with "
                                   f"{choice!r}; give the count in one place")
        return choice

    def _job_config(self, nodes: int, procs: int) -> Any:
        d = self._distributed
        if isinstance(d, Mpi):
            return MpiConfiguration(process_count_per_node=d.process_count_per_node,
                                    node_count=nodes)
        if isinstance(d, (Gloo, Nccl)):
            return PyTorchConfiguration(communication_backend="Gloo" if isinstance(d, Gloo)
                                        else "Nccl", process_count=nodes * procs,
                                        node_count=nodes)
        return None

    @staticmethod
    def _target(rc: RunConfiguration, compute_target: Any, vm_size: Any, vm_priority: Any,
                nodes: int) -> None:
        if compute_target is not None:
            name = compute_target if isinstance(compute_target, str) else getattr(
                compute_target, "name", None)
            if not isinstance(name, str) or not name:
                raise InvalidParameter("compute_target", f"expected a ComputeTarget or its "
                                       f"name, got {type(compute_target).__name__} "
                                       f"{compute_target!r}")
            if vm_size is not None:
                raise InvalidParameter("vm_size", f"a cluster is made for the run only without "
                                       f"compute_target; give compute_target={name!r} or "
                                       "vm_size, not both")
            rc.target = compute_target
            return
        if vm_size is None:
            return  # vm_priority alone: no cluster is made, nothing to prioritise
        if not isinstance(vm_size, str) or not vm_size.strip():
            raise InvalidParameter("vm_size", f"must name a VM size such as 'STANDARD_D2_V2', "
                                   f"got {vm_size!r}")
        rc.target = "amlcompute"
        rc.amlcompute.vm_size = vm_size
        rc.amlcompute.vm_priority = vm_priority
        rc.amlcompute._cluster_max_node_count = nodes

    # -- the environment ----------------------------------------------------------------------
    def _pins(self, pip_packages: list[str]) -> list[str]:
        """The framework's pins (none for the generic estimator)."""
        if self._FRAMEWORK is None:
            return []
        key, pins = framework_pins(self._FRAMEWORK, self._framework_version, self.use_gpu)
        self._framework_version = key
        return pins

    def _environment(self, definition: Any, *, user_managed: bool, image: str | None,
                     shm_size: Any, conda_packages: list[str], pip_packages: list[str],
                     conda_file: tuple[str, Path] | None, pip_file: tuple[str, Path] | None,
                     variables: Any) -> Environment:
        if shm_size is not None and (not isinstance(shm_size, str) or not shm_size.strip()):
            raise InvalidParameter("shm_size", f"must be a size such as '2g', got {shm_size!r}")
        if variables is not None and not isinstance(variables, Mapping):
            raise InvalidParameter("environment_variables", f"must be a dict of variable name "
                                   f"to value, got {type(variables).__name__}")
        if definition is not None:
            env = self._given_environment(definition, user_managed=user_managed, image=image,
                                          conda_packages=conda_packages,
                                          pip_packages=pip_packages,
                                          files=(conda_file, pip_file))
        elif user_managed:
            for field, given in (("conda_packages", conda_packages),
                                 ("pip_packages", pip_packages),
                                 ("conda_dependencies_file", conda_file),
                                 ("pip_requirements_file", pip_file)):
                if given:
                    raise InvalidParameter(field, "user_managed=True runs the target's python "
                                           "as it is, so nothing would install these; drop "
                                           "user_managed or the packages")
            if self._FRAMEWORK is not None:  # nothing installed, but the version is checked
                self._framework_version, _ = framework_pins(
                    self._FRAMEWORK, self._framework_version, self.use_gpu)
            env = Environment(self._env_name())
            env.python.user_managed_dependencies = True
        else:
            cd = self._packages(conda_packages, pip_packages, conda_file, pip_file)
            env = Environment(self._env_name())  # named after the version the pins chose
            if cd is not None:
                env.python.conda_dependencies = cd
        if image is not None:
            env.docker.enabled = True
            env.docker.base_image = image
        if env.docker.enabled:
            if self.use_gpu:
                env.docker.gpu_support = True
            if shm_size is not None:
                env.docker.shm_size = shm_size
        for key, value in (variables or {}).items():
            env.environment_variables[key] = value
        return env

    def _given_environment(self, definition: Any, *, user_managed: bool, image: str | None,
                           conda_packages: list[str], pip_packages: list[str],
                           files: tuple[Any, Any]) -> Environment:
        if not isinstance(definition, Environment):
            raise InvalidParameter("environment_definition", f"expected an Environment, got "
                                   f"{type(definition).__name__} {definition!r}")
        clashes = [name for name, given in (
            ("conda_packages", conda_packages), ("pip_packages", pip_packages),
            ("conda_dependencies_file", files[0]), ("pip_requirements_file", files[1]),
            ("custom_docker_base_image", image), ("user_managed", user_managed),
            ("framework_version", self._framework_version)) if given]
        if clashes:
            raise InvalidParameter(clashes[0], "environment_definition is given and is used "
                                   f"as it is; set {clashes[0]} on that Environment instead "
                                   "(or drop environment_definition)")
        return copy.deepcopy(definition)

    def _packages(self, conda_packages: list[str], pip_packages: list[str],
                  conda_file: tuple[str, Path] | None,
                  pip_file: tuple[str, Path] | None) -> CondaDependencies | None:
        pins = self._pins(pip_packages)
        if not (pins or conda_packages or pip_packages or conda_file or pip_file):
            return None
        if conda_file is not None:
            field, file = conda_file
            if field == "conda_dependencies_file" and not file.is_absolute():
                file = Path(self.source_directory) / file
            if not file.is_file():
                raise InvalidParameter(field, f"{file} does not exist")
            cd = CondaDependencies(file)
        else:
            cd = CondaDependencies()
        for pin in pins:
            cd.add_pip_package(pin)
        for i, spec in enumerate(conda_packages):
            cd.add_conda_package(check_conda_package(spec, f"conda_packages[{i}]"))
        if pip_file is not None:
            field, file = pip_file
            if field == "pip_requirements_file" and not file.is_absolute():
                file = Path(self.source_directory) / file
            if not file.is_file():
                raise InvalidParameter(field, f"{file} does not exist")
            requirements, options = parse_requirements(file)
            for option in options:
                cd.set_pip_option(option)
            for req in requirements:
                cd.add_pip_package(req)
        for i, spec in enumerate(pip_packages):
            cd.add_pip_package(check_pip_requirement(spec, f"pip_packages[{i}]"))
        return cd

    def _env_name(self) -> str:
        if self._FRAMEWORK is None:
            return "estimator-environment"
        return f"estimator-{self._FRAMEWORK.lower()}-{self._framework_version or 'default'}"


class _FrameworkEstimator(Estimator):
    """An estimator for one framework of :mod:`runyard.environments.frameworks`; adds
    ``framework_version`` (None: the newest version listed)."""

    def __init__(self, source_directory: str | os.PathLike[str], *,
                 framework_version: str | None = None, **kwargs: Any) -> None:
        self._framework_version = framework_version
        super().__init__(source_directory, **kwargs)
