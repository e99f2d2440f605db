"""Normalized environment specs, their hashes, and the build request a target receives.

An :class:`Environment` is system-managed when it lists dependencies (a ``CondaDependencies``
object or a ``conda_dependencies_file``) or enables docker. :func:`normalize` turns it into an
:class:`EnvSpec`: sorted, de-duplicated, canonical package names, whitespace removed, so that
two definitions that install the same thing hash the same. :func:`environment_request` adds the
builder's plan (for uv: conda packages translated through :mod:`runyard.environments.mapping`)
and is what travels to the target in the job spec; the target-side builder
(:mod:`runyard.runtime.envbuild`) adds the interpreter version and platform to the hash to get
the cache key.

Everything that can be checked here is checked before a run is stored: malformed YAML,
unknown keys, conda packages the chosen builder cannot install, unknown builders, unsupported
requirement-file options. :func:`normalize` is the one place every package spec passes through
on its way to a builder, and it holds each entry to the rules of
:mod:`runyard.environments.specrules` (one requirement per entry, options only as the
supported options, no newlines or NUL), however the entry came in. Packages that do not
exist, conflicting versions and missing python versions are the installer's to find; the run
then fails in ``Preparing``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.environments.conda_dependencies import (
    CondaDependencies,
    canonical_name,
    conda_package_name,
    pip_package_name,
)
from runyard.environments.mapping import MappingError, to_pypi
from runyard.environments.requirements import parse_requirements
from runyard.environments.specrules import (
    check_base_image,
    check_channel,
    check_conda_package,
    check_pip_option,
    check_pip_requirement,
    check_python_version,
    check_variable_name,
)
from runyard.errors import InvalidParameter, NotSupported
from runyard.runtime.azureml_alias import ENV_AZUREML_ALIAS

if TYPE_CHECKING:
    from runyard.environment import Environment

__all__ = ["BUILDERS", "REQUEST_FORMAT", "RUNTIME_PYTHON_FLOOR", "EnvSpec",
           "conda_dependencies_of", "definition_hash", "dropped_packages",
           "environment_request", "is_azureml_package", "normalize", "parse_requirements",
           "plan", "resolve_for_run", "script_variables"]

#: Builders a user can name in ``environment.python.builder`` (``container`` comes from
#: ``docker.enabled``).
BUILDERS = ("uv", "conda", "mamba", "micromamba")
#: Version of the request layout and of the normalization rules (part of every hash).
REQUEST_FORMAT = 1

_PIP_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


@dataclass(frozen=True)
class EnvSpec:
    """What a system-managed environment installs, in normal form (see module docs)."""

    builder: str
    python: str | None
    channels: tuple[str, ...]
    conda_packages: tuple[str, ...]
    pip_packages: tuple[str, ...]
    pip_options: tuple[str, ...]
    variables: tuple[tuple[str, str], ...] = ()
    base_image: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists, not tuples)."""
        d = asdict(self)
        return {k: ([list(x) if isinstance(x, tuple) else x for x in v]
                    if isinstance(v, tuple) else v) for k, v in d.items()}

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of the spec (and the normalization version)."""
        return _sha({"format": REQUEST_FORMAT, "spec": self.to_dict()})


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def is_azureml_package(name: str) -> bool:
    """Whether a canonical package name is part of the Azure ML SDK (``azureml-*``, ``azureml``).

    A system-managed environment never installs these: runyard provides the ``azureml`` import
    path itself (see :mod:`runyard.runtime.azureml_alias`), and the real SDK would log to its
    own offline run, which runyard cannot see.
    """
    name = canonical_name(name.split("::")[-1])
    return name == "azureml" or name.startswith("azureml-")


def dropped_packages(cd: CondaDependencies) -> list[str]:
    """The ``azureml-*`` entries :func:`normalize` leaves out of ``cd``, as written."""
    out = [c.strip() for c in cd.conda_packages if is_azureml_package(conda_package_name(c))]
    out += [p.strip() for p in cd.pip_packages if is_azureml_package(pip_package_name(p))]
    return _unique(out)


def script_variables(env: Environment) -> dict[str, str]:
    """Variables a run's script gets because of its environment's kind: a system-managed
    environment (``user_managed_dependencies=False``) gets the ``azureml`` alias on its path
    (the runner reads :data:`~runyard.runtime.azureml_alias.ENV_AZUREML_ALIAS`); a user-managed
    interpreter keeps whatever ``azureml`` it has (the real SDK wins there)."""
    if env.python.user_managed_dependencies:
        return {}
    return {ENV_AZUREML_ALIAS: "1"}


#: The oldest Python the runtime next to a script runs on (``runyard.runtime``).
RUNTIME_PYTHON_FLOOR = (3, 8)


def _pin_below_floor(python: str) -> bool:
    """Whether a python pin (``3.6.2``, ``=3.6``, ``3.6.*``) asks only for versions older than
    :data:`RUNTIME_PYTHON_FLOOR` (ranges and unknown forms: False, the target decides)."""
    m = re.fullmatch(r"\s*(?:==?)?\s*(\d+)\.(\d+)(?:\.\d+)*(?:\.\*)?\s*", python)
    if m is None:
        return False
    return (int(m.group(1)), int(m.group(2))) < RUNTIME_PYTHON_FLOOR


def _norm_pip(req: str) -> str:
    req = req.strip()
    m = _PIP_NAME.match(req)
    if not m:
        return req
    head, sep, marker = req.partition(";")
    rest = head[m.end():]
    if "@" in rest or "://" in head:
        return req  # a direct reference: keep it as written
    out = canonical_name(m.group(1)) + "".join(rest.split())
    if sep:
        out += "; " + " ".join(marker.split())
    return out


def _norm_conda(spec: str) -> str:
    spec = " ".join(spec.split())
    name = conda_package_name(spec)
    i = spec.lower().find(name)
    return spec[:i] + name + spec[i + len(name):] if i >= 0 else spec


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


def conda_dependencies_of(env: Environment,
                          source_dir: str | os.PathLike[str] | None = None
                          ) -> CondaDependencies | None:
    """The environment's ``CondaDependencies``: the object, else the file (read now)."""
    py = env.python
    cd = py.conda_dependencies
    if cd is not None:
        if isinstance(cd, CondaDependencies):
            return cd
        if isinstance(cd, str):
            return CondaDependencies.from_string(cd, "environment.python.conda_dependencies")
        if isinstance(cd, dict):
            return CondaDependencies(_underlying_structure=cd)
        raise InvalidParameter("environment.python.conda_dependencies",
                               f"expected a CondaDependencies object, got {type(cd).__name__}")
    if py.conda_dependencies_file:
        file = Path(py.conda_dependencies_file)
        if not file.is_absolute():
            file = Path(source_dir or ".") / file
        if not file.is_file():
            raise InvalidParameter("environment.python.conda_dependencies_file",
                                   f"{py.conda_dependencies_file!r} does not exist (looked for "
                                   f"{file}); give a path relative to the source directory")
        return CondaDependencies(file)
    return None


def normalize(env: Environment,
              source_dir: str | os.PathLike[str] | None = None) -> EnvSpec | None:
    """The normalized spec of a system-managed environment; None when it is user-managed."""
    py = env.python
    docker = env.docker.enabled
    if py.user_managed_dependencies:
        if docker:
            raise NotSupported("environment.docker.enabled with user_managed_dependencies=True "
                               "is not supported yet; let runyard build the environment "
                               "(user_managed_dependencies=False)")
        return None
    cd = conda_dependencies_of(env, source_dir)
    if cd is None and not docker:
        return None
    builder = "container" if docker else str(py.builder or "uv")
    if builder not in (*BUILDERS, "container"):
        raise InvalidParameter("environment.python.builder", f"{builder!r} is not a builder; "
                               f"use one of {', '.join(BUILDERS)}")
    cd = cd or CondaDependencies()
    data = cd.as_dict()
    # every entry passes the package-spec rules here, whichever way it came in (API, yml,
    # requirements file, a structure edited in place): nothing else reaches a builder
    field = "environment.python.conda_dependencies"
    for c in cd.conda_packages:
        check_conda_package(c, field)
    conda = [_norm_conda(c) for c in cd.conda_packages  # python is the python pin; a bare
             if conda_package_name(c) != "python" and c.strip() != "pip"  # pip is implied
             and not is_azureml_package(conda_package_name(c))]  # runyard provides azureml
    pip = [_norm_pip(check_pip_requirement(p, field)) for p in cd.pip_packages
           if not is_azureml_package(pip_package_name(p))]
    options = [check_pip_option(o, field) for o in cd.pip_options]
    channels = [check_channel(c, field) for c in cd.conda_channels]
    python = cd.get_python_version() or None
    if python is not None:
        check_python_version(python, field)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidParameter(f"{field}.variables", "must be a mapping of name: value")
    for key, value in variables.items():
        check_variable_name(key, f"{field}.variables")
        if "\x00" in str(value):
            raise InvalidParameter(f"{field}.variables.{key}", "contains a NUL character")
    base_image = None
    if docker:
        base_image = str(env.docker.base_image or "").strip()
        if not base_image:
            raise InvalidParameter("environment.docker.base_image", "docker is enabled but no "
                                   "base image is set")
        check_base_image(env.docker.base_image)
    return EnvSpec(
        builder=builder,
        python=python,
        channels=tuple(_unique(channels)),
        conda_packages=tuple(sorted(_unique(conda), key=lambda c: (conda_package_name(c), c))),
        pip_packages=tuple(sorted(_unique(pip), key=lambda p: (pip_package_name(p), p))),
        pip_options=tuple(_unique(options)),
        variables=tuple(sorted((str(k), str(v)) for k, v in variables.items())),
        base_image=base_image,
    )


def _pip_plan(spec: EnvSpec) -> dict[str, Any]:
    requirements: list[str] = []
    notes: list[str] = []
    for c in spec.conda_packages:
        try:
            req, more = to_pypi(c)
        except MappingError as exc:
            field = "environment.python.conda_dependencies"
            if spec.builder == "container":
                raise InvalidParameter(field, f"conda package {exc.package!r} cannot be "
                                       "installed in a container build (it installs conda "
                                       "packages through pip, and this one has no known "
                                       "PyPI equivalent); list the PyPI project under 'pip:' "
                                       "or use a base image that has it",
                                       details={"package": exc.package}) from exc
            raise InvalidParameter(field, str(exc), details={"package": exc.package}) from exc
        notes.extend(more)
        if req is not None:  # a translation is held to the same rules as a pip entry
            requirements.append(check_pip_requirement(
                req, f"environment.python.conda_dependencies ({c!r})"))
    requirements.extend(spec.pip_packages)
    if spec.channels:
        notes.append(f"channels {', '.join(spec.channels)} ignored (packages come from the "
                     "pip index)")
    return {"python": spec.python, "requirements": _unique(requirements),
            "pip_options": list(spec.pip_options), "variables": dict(spec.variables),
            "notes": notes}


def plan(spec: EnvSpec) -> dict[str, Any]:
    """What the builder of ``spec`` runs (see :mod:`runyard.runtime.envbuild`)."""
    if spec.builder == "uv":
        return _pip_plan(spec)
    if spec.builder == "container":
        return {**_pip_plan(spec), "base_image": spec.base_image}
    # conda, mamba, micromamba: the environment file itself
    deps: list[Any] = []
    if spec.python:
        p = spec.python
        deps.append(f"python{p}" if p[0] in "<>=!~" else f"python={p}")
    deps.extend(spec.conda_packages)
    if spec.pip_packages and "pip" not in (conda_package_name(c) for c in deps):
        deps.append("pip")
    if spec.pip_packages:
        deps.append({"pip": [*spec.pip_options, *spec.pip_packages]})
    return {"python": spec.python, "channels": list(spec.channels), "dependencies": deps,
            "variables": dict(spec.variables)}


def environment_request(env: Environment, source_dir: str | os.PathLike[str] | None = None,
                        auto_prepare: bool = True,
                        strict: bool = False) -> dict[str, Any] | None:
    """The ``environment`` part of a job spec, or None for a user-managed environment.

    Raises ``InvalidParameter``/``NotSupported`` for everything detectable before queueing.
    ``azureml-*`` packages are left out (:func:`normalize`; the plan's ``dropped`` and a
    build-log note say which). ``strict`` (the workspace setting ``strict_environments``):
    the target refuses instead of substituting (uv for a container engine it lacks, the
    oldest available python for a pin it cannot provide), and a python pin older than the
    runtime's floor is refused here.
    """
    spec = normalize(env, source_dir)
    if spec is None:
        return None
    if strict and spec.python and _pin_below_floor(spec.python):
        floor = ".".join(map(str, RUNTIME_PYTHON_FLOOR))
        raise InvalidParameter(
            "environment.python.conda_dependencies",
            f"python={spec.python} cannot run runyard's runtime (it needs python >= {floor}), "
            "and strict_environments is set, so it is not raised to an available version; "
            f"pin python={floor} or newer (e.g. cd.set_python_version('3.11')), or turn "
            "strict_environments off")
    the_plan = plan(spec)
    cd = conda_dependencies_of(env, source_dir)
    dropped = dropped_packages(cd) if cd is not None else []
    if dropped:
        the_plan["dropped"] = _unique([conda_package_name(d) if "::" in d else
                                       pip_package_name(d) for d in dropped])
    request: dict[str, Any] = {
        "format": REQUEST_FORMAT, "name": env.name, "version": env.version,
        "builder": spec.builder, "spec": spec.to_dict(), "spec_hash": spec.spec_hash,
        "plan": the_plan, "auto_prepare": bool(auto_prepare),
    }
    if strict:
        request["strict"] = True
    if spec.builder == "container":
        d = env.docker
        for i, a in enumerate(d.arguments or ()):
            if not isinstance(a, (str, int, float)) or "\x00" in str(a) or "\n" in str(a):
                raise InvalidParameter(f"environment.docker.arguments[{i}]", f"{a!r} is not "
                                       "one container-engine argument (a string without "
                                       "newlines or NUL)")
        request["container"] = {"gpu_support": bool(d.gpu_support), "shm_size": d.shm_size,
                                "arguments": [str(a) for a in d.arguments or ()],
                                "shared_volumes": bool(d.shared_volumes)}
    return request


def definition_hash(env: Environment,
                    source_dir: str | os.PathLike[str] | None = None) -> str:
    """Hash of everything that defines ``env`` (not its name or version), spec normalized."""
    spec = normalize(env, source_dir)
    py = env.python
    return _sha({
        "format": REQUEST_FORMAT,
        "spec": spec.to_dict() if spec else None,
        "user_managed": bool(py.user_managed_dependencies),
        "interpreter": py.interpreter_path if py.user_managed_dependencies else None,
        "variables": sorted((str(k), str(v)) for k, v in env.environment_variables.items()),
        "docker": env.docker.to_dict() if env.docker.enabled else None,
    })


def resolve_for_run(env: Environment, source_dir: str | os.PathLike[str],
                    auto_prepare: bool = True, strict: bool = False
                    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """For a submission: (the job's environment request or None, the environment as recorded).

    The recorded form inlines a ``conda_dependencies_file`` so that ``run.get_environment()``
    returns what the run was built from even after the file changes. ``strict``: see
    :func:`environment_request`.
    """
    request = environment_request(env, source_dir, auto_prepare, strict)
    recorded = env.to_dict()
    if request is not None:
        cd = conda_dependencies_of(env, source_dir)
        if cd is not None:
            recorded["python"]["condaDependencies"] = cd.serialize_to_string()
    return request, recorded
