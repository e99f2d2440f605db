"""Registered environments: named definitions with versions, stored in the workspace.

``register`` stores a new version only when the definition changed; "changed" is decided on
the normalized definition (:func:`runyard.environments.spec.definition_hash`), so listing the
same packages in another order or spelling a name ``Scikit_Learn`` is not a change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runyard.environments.spec import conda_dependencies_of, definition_hash
from runyard.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from runyard.environment import Environment
    from runyard.store.base import EnvironmentRecord
    from runyard.workspace import Workspace

__all__ = ["get_environment", "list_environments", "register_environment"]

_RESERVED_PREFIXES = ("AzureML", "Microsoft")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidParameter("name", "an environment name must be 1-255 characters")
    if name.startswith(_RESERVED_PREFIXES):
        raise InvalidParameter("name", f"{name!r}: names starting with "
                               f"{' or '.join(_RESERVED_PREFIXES)} are reserved for curated "
                               "environments")


def _to_env(rec: EnvironmentRecord) -> Environment:
    from runyard.environment import Environment  # noqa: PLC0415

    env = Environment.from_dict(rec.definition)
    env.name = rec.name
    env.version = str(rec.version)
    return env


def register_environment(ws: Workspace, env: Environment) -> Environment:
    """Store ``env`` as a new version of its name, unless the latest version is the same."""
    _check_name(env.name)
    definition = env.to_dict()
    cd = conda_dependencies_of(env)  # a conda_dependencies_file is read now, relative to cwd
    if cd is not None:
        definition["python"]["condaDependencies"] = cd.serialize_to_string()
        definition["python"]["condaDependenciesFile"] = None
    definition.pop("name", None)
    definition.pop("version", None)
    rec = ws.store.register_environment(env.name, definition, definition_hash(env))
    return _to_env(rec)


def get_environment(ws: Workspace, name: str, version: str | int | None = None) -> Environment:
    """The registered environment ``name`` (its latest version unless ``version`` is given)."""
    v: int | None = None
    if version is not None:
        try:
            v = int(version)
        except (TypeError, ValueError) as exc:
            raise InvalidParameter("version", f"{version!r} is not a version number") from exc
    rec = ws.store.get_environment(name, v)
    if rec is None:
        known = sorted({r.name for r in ws.store.list_environments()})
        what = f"{name!r} version {version}" if version is not None else repr(name)
        raise NotFound(f"no registered environment {what} in workspace {ws.name!r}"
                       + (f"; registered: {', '.join(known)}" if known else
                          "; register one with env.register(workspace)"))
    return _to_env(rec)


def list_environments(ws: Workspace) -> dict[str, Environment]:
    """The latest version of every registered environment, by name."""
    latest: dict[str, EnvironmentRecord] = {}
    for rec in ws.store.list_environments():
        if rec.name not in latest or rec.version > latest[rec.name].version:
            latest[rec.name] = rec
    return {name: _to_env(rec) for name, rec in sorted(latest.items())}
