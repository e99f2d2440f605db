"""Registered environments: named definitions with versions, stored in the workspace.

Receives a :class:`~runyard.context.WorkspaceContext` and returns records; the SDK
``Environment`` turns them into objects.

``register`` stores a new version only when the definition changed; "changed" is decided on
the normalized definition (:func:`runyard.environments.spec.definition_hash`), so listing the
same packages in another order or spelling a name ``Scikit_Learn`` is not a change.

Every workspace also has the read-only curated environments (``AzureML-Minimal``, ...; see
:mod:`runyard.environments.curated`): ``get`` and ``list`` return them, ``register`` refuses
their names. An unknown name is answered with the closest known names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runyard.environments.curated import (
    CURATED,
    CURATED_VERSION,
    closest_names,
    curated_definition,
    is_curated_name,
)
from runyard.environments.spec import conda_dependencies_of, definition_hash
from runyard.errors import InvalidParameter, NotFound
from runyard.store.base import EnvironmentRecord

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext
    from runyard.environment import Environment

__all__ = ["get_environment", "list_environments", "register_environment"]

_RESERVED_PREFIXES = ("AzureML", "Microsoft")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidParameter("name", "an environment name must be 1-255 characters")
    if name.startswith(_RESERVED_PREFIXES) or is_curated_name(name):
        raise InvalidParameter("name", f"{name!r}: names starting with "
                               f"{' or '.join(_RESERVED_PREFIXES)} are reserved for curated "
                               "environments, which are read-only; register it under another "
                               "name (e.g. without the prefix)")


def _curated_record(name: str) -> EnvironmentRecord | None:
    definition = curated_definition(name)
    if definition is None:
        return None
    from runyard.environment import Environment  # noqa: PLC0415

    env = Environment.from_dict({**definition, "name": name})
    return EnvironmentRecord(name=name, version=CURATED_VERSION, definition=definition,
                             definition_hash=definition_hash(env), created_at=0.0)


def register_environment(ctx: WorkspaceContext, env: Environment) -> EnvironmentRecord:
    """Store ``env`` as a new version of its name, unless the latest version is the same."""
    _check_name(env.name)
    definition = env.to_dict()
    cd = conda_dependencies_of(env)  # a conda_dependencies_file is read now, relative to cwd
    if cd is not None:
        definition["python"]["condaDependencies"] = cd.serialize_to_string()
        definition["python"]["condaDependenciesFile"] = None
    definition.pop("name", None)
    definition.pop("version", None)
    return ctx.store.register_environment(env.name, definition, definition_hash(env))


def get_environment(ctx: WorkspaceContext, name: str,
                    version: str | int | None = None) -> EnvironmentRecord:
    """The registered environment ``name`` (its latest version unless ``version`` is given)."""
    v: int | None = None
    if version is not None:
        try:
            v = int(version)
        except (TypeError, ValueError) as exc:
            raise InvalidParameter("version", f"{version!r} is not a version number") from exc
    curated = _curated_record(name) if isinstance(name, str) else None
    if curated is not None:
        if v is not None and v != CURATED_VERSION:
            raise NotFound(f"curated environment {name!r} has only version {CURATED_VERSION}, "
                           f"not {version}; leave the version out")
        return curated
    rec = None if is_curated_name(name) else ctx.store.get_environment(name, v)
    if rec is None:
        known = sorted({r.name for r in ctx.store.list_environments()})
        what = f"{name!r} version {version}" if version is not None else repr(name)
        close = closest_names(str(name), [*known, *CURATED])
        if is_curated_name(name):
            raise NotFound(f"no curated environment {name!r}"
                           + (f"; closest: {', '.join(close)}" if close else "")
                           + f"; Environment.list(workspace) lists all {len(CURATED)} "
                           "(docs/curated-environments.md)")
        raise NotFound(f"no registered environment {what} in workspace {ctx.name!r}"
                       + (f"; registered: {', '.join(known)}" if known else
                          "; register one with env.register(workspace)")
                       + (f"; closest: {', '.join(close)}" if close and version is None
                          else ""))
    return rec


def list_environments(ctx: WorkspaceContext) -> list[EnvironmentRecord]:
    """The latest version of every registered environment, by name, then the curated ones
    (``AzureML-...``, read-only; see :mod:`runyard.environments.curated`)."""
    latest: dict[str, EnvironmentRecord] = {}
    for rec in ctx.store.list_environments():
        if rec.name not in latest or rec.version > latest[rec.name].version:
            latest[rec.name] = rec
    curated = [r for r in map(_curated_record, CURATED) if r is not None]
    return [rec for _, rec in sorted(latest.items())] + curated
