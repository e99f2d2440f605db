"""``Environment``: what a run's script runs in (interpreter, dependencies, image, variables).

An environment is user-managed (``python.user_managed_dependencies=True``: run
``interpreter_path`` as is) or system-managed: runyard builds it from ``python.conda_dependencies``
(or ``conda_dependencies_file``) with ``python.builder`` (``uv`` by default; ``conda``, ``mamba``,
``micromamba``), or as an image when ``docker.enabled``, once per spec and target, and reuses it
(see :mod:`runyard.environments` and :mod:`runyard.runtime.envbuild`). With neither
dependencies nor docker, a run uses the interpreter runyard itself runs in.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from runyard.errors import InvalidParameter

if TYPE_CHECKING:
    class _Workspace(Protocol):
        """What registration needs of a workspace: its client (see ``runyard.client``)."""

        client: Any

DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/base:0.2.4"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/base-gpu:0.2.4"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out).lstrip("_")


class _Section:
    """A dataclass section serialized with camelCase keys; unknown keys are refused."""

    def to_dict(self) -> dict[str, Any]:
        """camelCase dict."""
        return {_camel(k): copy.deepcopy(v) for k, v in asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def _from(cls, data: dict[str, Any] | None, where: str) -> Any:
        if data is not None and not isinstance(data, dict):
            raise InvalidParameter(where, "must be a mapping of settings")
        data = dict(data or {})
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = _snake(key)
            if name not in known:
                raise InvalidParameter(f"{where}.{key}", f"unknown key; expected one of "
                                       f"{', '.join(sorted(_camel(k) for k in known))}")
            kwargs[name] = value
        return cls(**kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in {f.name for f in fields(self)}:  # type: ignore[arg-type]
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}")
        object.__setattr__(self, name, value)


@dataclass
class PythonSection(_Section):
    """Interpreter and dependencies (``user_managed_dependencies=True``: use it as is)."""

    user_managed_dependencies: bool = False
    interpreter_path: str = "python"
    conda_dependencies_file: str | None = None
    conda_dependencies: Any = None
    base_conda_environment: str | None = None
    #: How a system-managed environment is built: uv, conda, mamba or micromamba.
    builder: str = "uv"


@dataclass
class DockerSection(_Section):
    """Container settings: ``enabled`` builds an image on ``base_image`` and runs in it."""

    enabled: bool = False
    base_image: str | None = DEFAULT_CPU_IMAGE
    shared_volumes: bool = True
    gpu_support: bool = False
    shm_size: str = "2g"
    arguments: list[str] = field(default_factory=list)
    base_image_registry: dict[str, Any] = field(default_factory=dict)


class Environment:
    """A named environment definition (Azure ML ``Environment``)."""

    def __init__(self, name: str = "default-environment") -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameter("name", "an environment needs a non-empty name")
        self.name = name
        self.version: str | None = None
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables: dict[str, str] = {}

    @property
    def has_dependencies(self) -> bool:
        """True when the definition lists packages to build (system-managed with a spec)."""
        py = self.python
        return not py.user_managed_dependencies and bool(
            py.conda_dependencies or py.conda_dependencies_file)

    def to_dict(self) -> dict[str, Any]:
        """camelCase dict as stored in ``.runconfig`` files."""
        py = self.python.to_dict()
        cd = self.python.conda_dependencies
        if cd is not None and hasattr(cd, "serialize_to_string"):
            py["condaDependencies"] = cd.serialize_to_string()
        return {"name": self.name, "version": self.version,
                "environmentVariables": dict(self.environment_variables),
                "python": py, "docker": self.docker.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "environment") -> Environment:
        """Inverse of :meth:`to_dict`; unknown keys raise ``InvalidParameter`` naming them."""
        data = dict(data or {})
        env = cls(str(data.pop("name", None) or "default-environment"))
        env.version = data.pop("version", None)
        variables = data.pop("environmentVariables", None) or {}
        if not isinstance(variables, dict):
            raise InvalidParameter(f"{where}.environmentVariables", "must be a mapping of "
                                   "variable name to value")
        env.environment_variables = {str(k): str(v) for k, v in variables.items()}
        env.python = PythonSection._from(data.pop("python", None), f"{where}.python")
        cd = env.python.conda_dependencies
        if isinstance(cd, (str, dict)):
            from runyard.environments.conda_dependencies import (  # noqa: PLC0415
                CondaDependencies,
            )

            env.python.conda_dependencies = (
                CondaDependencies.from_string(cd, f"{where}.python.condaDependencies")
                if isinstance(cd, str) else CondaDependencies(_underlying_structure=cd))
        env.docker = DockerSection._from(data.pop("docker", None), f"{where}.docker")
        for section in ("spark", "databricks", "inferencingStackVersion"):
            data.pop(section, None)  # Azure-only sections: accepted, ignored
        if data:
            key = sorted(data)[0]
            raise InvalidParameter(f"{where}.{key}", "unknown key; expected name, version, "
                                   "environmentVariables, python, docker")
        return env

    # -- constructors from files -------------------------------------------------------------
    @classmethod
    def from_conda_specification(cls, name: str,
                                 file_path: str | os.PathLike[str]) -> Environment:
        """A system-managed environment from a conda ``environment.yml`` (read and checked now)."""
        from runyard.environments.conda_dependencies import CondaDependencies  # noqa: PLC0415

        env = cls(name)
        env.python.conda_dependencies = CondaDependencies(file_path)
        return env

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str | os.PathLike[str]) -> Environment:
        """A system-managed environment from a pip ``requirements.txt`` (read and checked now)."""
        from runyard.environments.conda_dependencies import CondaDependencies  # noqa: PLC0415
        from runyard.environments.requirements import parse_requirements  # noqa: PLC0415

        requirements, options = parse_requirements(file_path)
        # every line kept as written: pip combines repeated names (a>=1 and a<2)
        cd = CondaDependencies(_underlying_structure={
            "name": name, "dependencies": ["pip", {"pip": [*options, *requirements]}]})
        env = cls(name)
        env.python.conda_dependencies = cd
        return env

    # -- registration (through the workspace's client) ---------------------------------------
    @classmethod
    def _from_record(cls, rec: Any) -> Environment:
        env = cls.from_dict(rec.definition)
        env.name = rec.name
        env.version = str(rec.version)
        return env

    def register(self, workspace: _Workspace) -> Environment:
        """Register in ``workspace``: a new version only when the definition changed.

        Returns the registered environment (its ``version`` set); this object's ``version``
        is set too.
        """
        registered = self._from_record(workspace.client.register_environment(self))
        self.version = registered.version
        return registered

    @classmethod
    def get(cls, workspace: _Workspace, name: str,
            version: str | int | None = None) -> Environment:
        """A registered environment (the latest version unless ``version`` is given), or a
        curated one by its v1 name (``"AzureML-Minimal"``; see
        :mod:`runyard.environments.curated`). An unknown name raises ``NotFound`` naming the
        closest known names."""
        return cls._from_record(workspace.client.get_environment(name, version))

    @classmethod
    def list(cls, workspace: _Workspace) -> dict[str, Environment]:
        """The latest version of every registered environment, by name, and the read-only
        curated ones (``AzureML-...``)."""
        return {rec.name: cls._from_record(rec)
                for rec in workspace.client.list_environments()}

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"
