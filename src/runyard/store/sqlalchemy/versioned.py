"""Versions of a named asset (models, datasets): insert the next one (``max(version) + 1``
under the table's (name, version) primary key, retried when a concurrent registration took it)
and select one (or the latest)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Select, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from runyard.errors import WorkspaceError

#: How many lost races a registration tolerates before it gives up.
VERSION_RETRIES = 50


def insert_next_version(write: Callable[[], AbstractContextManager[Connection]], table: Table,
                        what: str, name: str, values: dict[str, Any]) -> int:
    """Insert ``values`` as the next version of ``name`` in ``table``; returns that version.

    ``what`` names the asset kind in the error raised after :data:`VERSION_RETRIES` lost races.
    """
    for _ in range(VERSION_RETRIES):
        try:
            with write() as c:
                top = c.execute(select(func.max(table.c.version))
                                .where(table.c.name == name)).scalar()
                version = int(top or 0) + 1
                c.execute(insert(table).values(name=name, version=version, **values))
            return version
        except IntegrityError:
            continue  # another registration took this version: take the next
    raise WorkspaceError(f"could not register a new version of {what} {name!r}: "
                         f"{VERSION_RETRIES} concurrent registrations won the race; retry")


def select_version(table: Table, name: str, version: int | None) -> Select[Any]:
    """The row of version ``version`` of ``name`` (None: the latest)."""
    q = select(table).where(table.c.name == name)
    return (q.where(table.c.version == version) if version is not None
            else q.order_by(table.c.version.desc()).limit(1))
