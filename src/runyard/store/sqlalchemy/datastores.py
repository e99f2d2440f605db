"""Datastore rows of the SQLAlchemy store (mixed into ``SqlWorkspaceStore``)."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from runyard.errors import AlreadyExists, NotFound
from runyard.store.base import DatastoreRecord
from runyard.store.sqlalchemy import tables as t


def _rec(row: Any) -> DatastoreRecord:
    return DatastoreRecord(name=row.name, kind=row.kind, config=dict(row.config or {}),
                           is_default=bool(row.is_default), created_at=row.created_at,
                           updated_at=row.updated_at)


def _scope(name: str) -> str:
    return f"datastore/{name}"


class DatastoreRows:
    """Store methods for datastores (their secrets share the ``secrets`` table)."""

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def create_datastore(self, rec: DatastoreRecord,
                         secrets: dict[str, bytes] | None = None, *,
                         replace: bool = False) -> None:
        ds = t.datastores
        try:
            with self._write() as c:
                exists = c.execute(select(ds.c.name).where(ds.c.name == rec.name)).first()
                if exists is not None and replace:
                    c.execute(update(ds).where(ds.c.name == rec.name).values(
                        kind=rec.kind, config=rec.config, updated_at=rec.updated_at))
                    c.execute(delete(t.secrets).where(t.secrets.c.scope == _scope(rec.name)))
                else:
                    if rec.is_default:
                        c.execute(select(ds.c.name).order_by(ds.c.name).with_for_update())
                        c.execute(update(ds).values(is_default=False))
                    c.execute(insert(ds).values(
                        name=rec.name, kind=rec.kind, config=rec.config,
                        is_default=rec.is_default, created_at=rec.created_at,
                        updated_at=rec.updated_at))
                if secrets:
                    c.execute(insert(t.secrets), [
                        {"scope": _scope(rec.name), "name": k, "ciphertext": v}
                        for k, v in secrets.items()])
        except IntegrityError:
            raise AlreadyExists(
                f"a datastore named {rec.name!r} already exists in this workspace; choose "
                "another name, pass overwrite=True, or unregister it first") from None

    def get_datastore(self, name: str) -> DatastoreRecord | None:
        with self._read() as c:
            row = c.execute(select(t.datastores).where(t.datastores.c.name == name)).first()
        return _rec(row) if row else None

    def list_datastores(self) -> list[DatastoreRecord]:
        with self._read() as c:
            rows = c.execute(select(t.datastores).order_by(t.datastores.c.name)).all()
        return [_rec(r) for r in rows]

    def set_default_datastore(self, name: str) -> None:
        ds = t.datastores
        with self._write() as c:
            # lock every row in name order first: concurrent switches queue instead of
            # deadlocking (PostgreSQL), and exactly one default remains
            names = set(c.execute(select(ds.c.name).order_by(ds.c.name).with_for_update())
                        .scalars())
            if name not in names:
                raise NotFound(f"datastore {name!r} is not registered in this workspace")
            c.execute(update(ds).where(ds.c.name != name).where(ds.c.is_default.is_(True))
                      .values(is_default=False, updated_at=time.time()))
            c.execute(update(ds).where(ds.c.name == name)
                      .values(is_default=True, updated_at=time.time()))

    def delete_datastore(self, name: str) -> None:
        with self._write() as c:
            res = c.execute(delete(t.datastores).where(t.datastores.c.name == name))
            if res.rowcount != 1:
                raise NotFound(f"datastore {name!r} is not registered in this workspace")
            c.execute(delete(t.secrets).where(t.secrets.c.scope == _scope(name)))
