"""``Environment``: what a run's script runs in (interpreter, dependencies, image, variables).

This module holds the definition only. Building system-managed environments arrives with the
environments issue; until then a run needs a user-managed interpreter (the default when no
dependencies are listed).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from runyard.errors import InvalidParameter

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


@dataclass
class DockerSection(_Section):
    """Container settings (used once a container builder exists)."""

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
        env.environment_variables = {str(k): str(v) for k, v in
                                     (data.pop("environmentVariables", None) or {}).items()}
        env.python = PythonSection._from(data.pop("python", None), f"{where}.python")
        env.docker = DockerSection._from(data.pop("docker", None), f"{where}.docker")
        for section in ("spark", "databricks", "inferencingStackVersion"):
            data.pop(section, None)  # Azure-only sections: accepted, ignored
        if data:
            key = sorted(data)[0]
            raise InvalidParameter(f"{where}.{key}", "unknown key; expected name, version, "
                                   "environmentVariables, python, docker")
        return env

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"
