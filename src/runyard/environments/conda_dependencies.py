"""``CondaDependencies``: a conda ``environment.yml`` (with a ``pip:`` section) as an object.

The structure is kept as the file has it (key order, entry order, the position of the ``pip:``
block, pip options such as ``--index-url`` inside the pip list), so loading a file and saving
it again gives the same data. Comments are not kept (PyYAML drops them).

Azure ML v1 shape: ``CondaDependencies(conda_dependencies_file_path)``,
``CondaDependencies.create(pip_indexurl, pip_packages, conda_packages, python_version,
pin_sdk_version)``, add/remove of conda and pip packages and channels, pip options, the pip
index url, ``serialize_to_string``, ``save``/``save_to_file``. Differences, on purpose:

* no packaged base file: an empty ``CondaDependencies()`` has no python pin and no packages,
  and ``python_version=None`` (the default) means "the interpreter of the compute target";
* ``pip_packages=None`` adds nothing (runyard needs no SDK package inside the environment: its
  runtime is put on the script's ``PYTHONPATH``), so ``pin_sdk_version`` has nothing to pin.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runyard import settings
from runyard.environments.specrules import (
    check_channel,
    check_conda_package,
    check_pip_entry,
    check_pip_option,
    check_pip_requirement,
    check_python_version,
    check_variable_name,
)
from runyard.errors import InvalidParameter

__all__ = ["CondaDependencies", "canonical_name", "conda_package_name", "pip_package_name"]

TOP_LEVEL_KEYS = ("name", "channels", "dependencies", "prefix", "variables")
DEFAULT_NAME = "project_environment"
DEFAULT_FILE_NAME = "conda_dependencies.yml"

_PIP_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_CONDA_NAME = re.compile(r"^\s*(?:[^\s:]+::)?([A-Za-z0-9_](?:[A-Za-z0-9_.+-]*[A-Za-z0-9_+])?)")


def canonical_name(name: str) -> str:
    """PEP 503 form of a distribution name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_package_name(requirement: str) -> str:
    """Canonical distribution name of a pip requirement (the whole string for URLs/paths)."""
    m = _PIP_NAME.match(requirement)
    if not m or "://" in requirement.split(";")[0].split("@")[0]:
        return requirement.strip()
    return canonical_name(m.group(1))


def conda_package_name(spec: str) -> str:
    """Package name of a conda match spec (``conda-forge::numpy>=1.2`` gives ``numpy``)."""
    m = _CONDA_NAME.match(spec)
    return m.group(1).lower() if m else spec.strip().lower()


def _python_version_of(spec: str) -> str:
    rest = spec.strip()[len("python"):].strip()
    if rest.startswith("=="):
        return rest[2:].strip()
    if rest.startswith("="):
        return rest[1:].split("=")[0].strip()
    return rest


class CondaDependencies:
    """A conda environment specification with conda packages, channels and a pip section."""

    def __init__(self, conda_dependencies_file_path: str | os.PathLike[str] | None = None,
                 _underlying_structure: dict[str, Any] | None = None) -> None:
        if conda_dependencies_file_path is not None:
            data = _read_file(Path(conda_dependencies_file_path))
        elif _underlying_structure is not None:
            data = copy.deepcopy(_underlying_structure)
        else:
            data = {"name": DEFAULT_NAME, "dependencies": []}
        self._data: dict[str, Any] = validate(data, "conda_dependencies")

    # -- constructors ------------------------------------------------------------------------
    @staticmethod
    def create(pip_indexurl: str | None = None, pip_packages: Iterable[str] | None = None,
               conda_packages: Iterable[str] | None = None, python_version: str | None = None,
               pin_sdk_version: bool = True) -> CondaDependencies:
        """A new specification; ``python_version=None`` means the target's interpreter."""
        cd = CondaDependencies()
        if python_version:
            cd.set_python_version(python_version)
        for c in conda_packages or ():
            cd.add_conda_package(c)
        for p in pip_packages or ():
            cd.add_pip_package(p)
        if pip_indexurl:
            cd.set_pip_index_url(pip_indexurl)
        return cd

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CondaDependencies:
        """Read a conda ``environment.yml``."""
        return cls(path)

    @classmethod
    def from_string(cls, text: str, where: str = "conda_dependencies") -> CondaDependencies:
        """Parse YAML text; malformed YAML or unknown keys raise ``InvalidParameter``."""
        return cls(_underlying_structure=validate(_parse(text, where), where))

    @classmethod
    def _from_validated(cls, data: dict[str, Any]) -> CondaDependencies:
        cd = cls.__new__(cls)
        cd._data = data
        return cd

    # -- views -------------------------------------------------------------------------------
    def _deps(self) -> list[Any]:
        deps: list[Any] = self._data.setdefault("dependencies", [])
        return deps

    def _pip_list(self, create: bool = False) -> list[str] | None:
        for d in self._deps():
            if isinstance(d, dict):
                pip: list[str] = d.setdefault("pip", [])
                return pip
        if not create:
            return None
        deps = self._deps()
        if "pip" not in (conda_package_name(d) for d in deps if isinstance(d, str)):
            deps.append("pip")
        block: dict[str, list[str]] = {"pip": []}
        deps.append(block)
        return block["pip"]

    @property
    def conda_packages(self) -> list[str]:
        """Conda match specs, in file order (``python=...`` included)."""
        return [d for d in self._deps() if isinstance(d, str)]

    @property
    def pip_packages(self) -> list[str]:
        """Pip requirements (the pip section without its options)."""
        return [p for p in self._pip_list() or () if not p.lstrip().startswith("-")]

    @property
    def pip_options(self) -> list[str]:
        """Pip options in the pip section (``--index-url ...``, ``--extra-index-url ...``)."""
        return [p for p in self._pip_list() or () if p.lstrip().startswith("-")]

    @property
    def conda_channels(self) -> list[str]:
        """Channels in priority order."""
        return list(self._data.get("channels") or [])

    @property
    def name(self) -> str | None:
        """The ``name:`` of the environment file."""
        value = self._data.get("name")
        return None if value is None else str(value)

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the underlying structure."""
        return copy.deepcopy(self._data)

    # -- python ------------------------------------------------------------------------------
    def get_python_version(self) -> str | None:
        """The python pin (``3.11`` for ``python=3.11``; ``>=3.10`` kept as such), or None."""
        for d in self.conda_packages:
            if conda_package_name(d) == "python":
                return _python_version_of(d) or None
        return None

    def set_python_version(self, version: str) -> None:
        """Pin python (``3.11`` gives ``python=3.11``; an operator spec is kept)."""
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            version = str(version)
        if isinstance(version, str) and not version.strip():
            raise InvalidParameter("python_version", "give a version such as '3.11'")
        version = check_python_version(version, "python_version")
        spec = f"python{version}" if version[0] in "<>=!~" else f"python={version}"
        deps = self._deps()
        for i, d in enumerate(deps):
            if isinstance(d, str) and conda_package_name(d) == "python":
                deps[i] = spec
                return
        deps.insert(0, spec)

    # -- conda packages ----------------------------------------------------------------------
    def add_conda_package(self, conda_package: str) -> None:
        """Add (or replace the same-named) conda package; ``python=X`` sets the python pin.

        One match spec per call (see :mod:`runyard.environments.specrules`).
        """
        spec = check_conda_package(conda_package, "conda_package")
        name = conda_package_name(spec)
        if name == "python":
            self.set_python_version(_python_version_of(spec) or "")
            return
        deps = self._deps()
        for i, d in enumerate(deps):
            if isinstance(d, str) and conda_package_name(d) == name:
                deps[i] = spec
                return
        at = next((i for i, d in enumerate(deps) if isinstance(d, dict)), len(deps))
        deps.insert(at, spec)

    def remove_conda_package(self, conda_package: str) -> None:
        """Remove a conda package by name (python cannot be removed)."""
        name = conda_package_name(conda_package)
        if name == "python":
            raise InvalidParameter("conda_package", "python cannot be removed; use "
                                   "set_python_version to change it")
        deps = self._deps()
        deps[:] = [d for d in deps if not (isinstance(d, str) and conda_package_name(d) == name)]

    # -- pip ---------------------------------------------------------------------------------
    def add_pip_package(self, pip_package: str) -> None:
        """Add (or replace the same-named) pip requirement.

        One PEP 508 requirement per call (``numpy>=1.26``, ``name @ https://...``); options,
        newlines, bare URLs and local paths raise ``InvalidParameter`` (the rules are in
        :mod:`runyard.environments.specrules`).
        """
        spec = check_pip_requirement(pip_package, "pip_package")
        pip = self._pip_list(create=True)
        assert pip is not None
        name = pip_package_name(spec)
        for i, p in enumerate(pip):
            if not p.lstrip().startswith("-") and pip_package_name(p) == name:
                pip[i] = spec
                return
        pip.append(spec)

    def remove_pip_package(self, pip_package: str) -> None:
        """Remove a pip requirement by name."""
        pip = self._pip_list()
        if pip is None:
            return
        name = pip_package_name(pip_package)
        pip[:] = [p for p in pip if p.lstrip().startswith("-") or pip_package_name(p) != name]

    def set_pip_requirements(self, pip_requirements: Iterable[str]) -> None:
        """Replace every pip requirement (options stay)."""
        pip = self._pip_list(create=True)
        assert pip is not None
        pip[:] = [p for p in pip if p.lstrip().startswith("-")]
        for req in pip_requirements:
            self.add_pip_package(req)

    def set_pip_option(self, pip_option: str) -> None:
        """Add a pip option (replaces the same option; ``--extra-index-url``, ``--find-links``
        and ``--trusted-host`` may repeat).

        Only these options are accepted, one per call, stored as ``--name VALUE``:
        ``--index-url URL``, ``--extra-index-url URL``, ``--find-links URL`` (http/https
        URLs; ``-i``/``-f`` as short forms), ``--trusted-host HOST[:PORT]``,
        ``--no-binary``/``--only-binary`` (``:all:``, ``:none:`` or project names),
        ``--no-index``, ``--pre``, ``--prefer-binary``. Editable installs (``-e``), includes,
        constraint files and every other option raise ``InvalidParameter`` (see
        :mod:`runyard.environments.specrules`).
        """
        opt = check_pip_option(pip_option, "pip_option")
        pip = self._pip_list(create=True)
        assert pip is not None
        flag = opt.split()[0]
        for i, p in enumerate(pip):
            if p.lstrip().startswith("-") and _option_flag(p) == flag \
                    and flag not in ("--extra-index-url", "--find-links", "--trusted-host"):
                pip[i] = opt
                return
        if opt in pip:
            return
        at = sum(1 for p in pip if p.lstrip().startswith("-"))
        pip.insert(at, opt)

    def set_pip_index_url(self, index_url: str) -> None:
        """Use ``index_url`` as pip's index (``--index-url``)."""
        self.set_pip_option(f"--index-url {index_url}")

    # -- channels ----------------------------------------------------------------------------
    def add_channel(self, channel: str) -> None:
        """Add a conda channel (lowest priority)."""
        ch = check_channel(channel, "channel")
        channels: list[str] = self._data.setdefault("channels", [])
        if ch not in channels:
            channels.append(ch)

    def remove_channel(self, channel: str) -> None:
        """Remove a conda channel."""
        channels = self._data.get("channels")
        if channels and channel in channels:
            channels.remove(channel)
            if not channels:
                del self._data["channels"]

    # -- files -------------------------------------------------------------------------------
    def serialize_to_string(self) -> str:
        """The specification as conda ``environment.yml`` text."""
        import yaml  # noqa: PLC0415

        return yaml.safe_dump(self._data, sort_keys=False, default_flow_style=False,
                              allow_unicode=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the specification to the file ``path``; returns it."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(self.serialize_to_string())
        return file

    def save_to_file(self, base_directory: str | os.PathLike[str],
                     conda_file_path: str | None = None) -> Path:
        """Write into ``base_directory`` (default file ``.runyard/conda_dependencies.yml``)."""
        rel = conda_file_path or f"{settings.CONFIG_DIR_NAME}/{DEFAULT_FILE_NAME}"
        return self.save(Path(base_directory) / rel)

    # -- misc --------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, CondaDependencies) and other._data == self._data

    def __hash__(self) -> int:
        return hash(self.serialize_to_string())

    def __repr__(self) -> str:
        return (f"CondaDependencies(python={self.get_python_version()!r}, "
                f"conda={self.conda_packages!r}, pip={self.pip_packages!r})")


def _option_flag(entry: str) -> str:
    """The canonical flag of a (checked) option entry, e.g. ``--index-url`` for ``-i URL``."""
    try:
        return check_pip_option(entry).split()[0]
    except InvalidParameter:
        return entry.split()[0].split("=")[0]


def _parse(text: str, where: str) -> Any:
    import yaml  # noqa: PLC0415

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidParameter(where, f"not valid YAML{at}: {problem}") from exc


def _read_file(file: Path) -> dict[str, Any]:
    where = str(file)
    try:
        text = file.read_text()
    except FileNotFoundError as exc:
        raise InvalidParameter(where, "the conda environment file does not exist") from exc
    except OSError as exc:
        raise InvalidParameter(where, f"cannot read the conda environment file: "
                               f"{exc.strerror}") from exc
    return validate(_parse(text, where), where)


def validate(data: Any, where: str) -> dict[str, Any]:
    """Check the structure of an environment.yml mapping; returns it (unchanged).

    Raises ``InvalidParameter`` naming the offending key: unknown top-level keys, a
    ``dependencies`` entry that is neither a string nor a ``{pip: [...]}`` block, non-string
    packages or channels, and any entry that breaks the package-spec rules of
    :mod:`runyard.environments.specrules` (one requirement per ``pip:`` entry, only the
    supported pip options, no newlines or NUL).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidParameter(where, "a conda environment file must be a mapping with "
                               "'dependencies:' (and optionally name, channels, variables)")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise InvalidParameter(f"{where}.{key}", "unknown key; expected one of "
                                   f"{', '.join(TOP_LEVEL_KEYS)}")
    if data.get("name") is not None and not isinstance(data["name"], (str, int, float)):
        raise InvalidParameter(f"{where}.name", "must be a string")
    channels = data.get("channels")
    if channels is not None and (not isinstance(channels, list)
                                 or not all(isinstance(c, str) and c.strip() for c in channels)):
        raise InvalidParameter(f"{where}.channels", "must be a list of channel names")
    for i, c in enumerate(channels or ()):
        check_channel(c, f"{where}.channels[{i}]")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidParameter(f"{where}.variables", "must be a mapping of name: value")
    for key, value in (variables or {}).items():
        check_variable_name(key, f"{where}.variables")
        if value is not None and not isinstance(value, (str, int, float)) or \
                isinstance(value, str) and "\x00" in value:
            raise InvalidParameter(f"{where}.variables.{key}", "must be a string or a number "
                                   "(without NUL characters)")
    deps = data.get("dependencies")
    if deps is None:
        return data
    if not isinstance(deps, list):
        raise InvalidParameter(f"{where}.dependencies", "must be a list of packages")
    pip_blocks = 0
    for i, d in enumerate(deps):
        if isinstance(d, str):
            if not d.strip():
                raise InvalidParameter(f"{where}.dependencies[{i}]", "empty package spec")
            check_conda_package(d, f"{where}.dependencies[{i}]")
            continue
        if isinstance(d, (int, float)) and not isinstance(d, bool):
            raise InvalidParameter(f"{where}.dependencies[{i}]",
                                   f"{d!r} is a number, not a package spec")
        if not isinstance(d, dict):
            raise InvalidParameter(f"{where}.dependencies[{i}]", "expected a package spec "
                                   "string or a 'pip:' list")
        unknown = [k for k in d if k != "pip"]
        if unknown:
            raise InvalidParameter(f"{where}.dependencies[{i}].{unknown[0]}",
                                   "unknown key; only a 'pip:' list may appear in dependencies")
        pip = d.get("pip")
        if pip is None:
            d["pip"] = pip = []
        if not isinstance(pip, list) or not all(isinstance(p, str) and p.strip() for p in pip):
            raise InvalidParameter(f"{where}.dependencies[{i}].pip",
                                   "must be a list of requirement strings")
        for j, p in enumerate(pip):  # one requirement or one supported option per entry
            check_pip_entry(p, f"{where}.dependencies[{i}].pip[{j}]")
        pip_blocks += 1
    if pip_blocks > 1:
        raise InvalidParameter(f"{where}.dependencies", "more than one 'pip:' section")
    return data
