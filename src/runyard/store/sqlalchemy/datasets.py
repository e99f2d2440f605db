"""Dataset rows of the SQLAlchemy store (mixed into ``SqlWorkspaceStore``).

Versions are numbered per name as for models: a registration reads the highest version and
inserts the next; the primary key ``(name, version)`` makes a concurrent registration that
picked the same number fail, and it retries with the next.
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, select

from runyard.store.dataset_record import DatasetFile, DatasetRecord
from runyard.store.sqlalchemy import tables as t
from runyard.store.sqlalchemy.versioned import insert_next_version, select_version

#: How often a registration retries after losing the race for a version number.

_d = t.datasets


def _rec(row: Any) -> DatasetRecord:
    return DatasetRecord(
        name=row.name, version=int(row.version), kind=row.kind, description=row.description,
        tags=dict(row.tags or {}), definition=dict(row.definition or {}),
        files=tuple(DatasetFile.from_json(f) for f in row.files or []),
        total_size=int(row.total_size), created_at=float(row.created_at))


class DatasetRows:
    """Store methods for registered datasets."""

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def add_dataset_version(self, rec: DatasetRecord) -> DatasetRecord:
        """Insert ``rec`` as the next version of ``rec.name`` (its ``version`` is ignored)."""
        version = insert_next_version(self._write, _d, "dataset", rec.name, dict(
            kind=rec.kind,
            description=rec.description, tags=dict(rec.tags), definition=dict(rec.definition),
            files=[f.to_json() for f in rec.files], total_size=rec.total_size,
            created_at=rec.created_at))
        return dataclasses.replace(rec, version=version)

    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord | None:
        """The given version of dataset ``name`` (default: the latest), or None."""
        with self._read() as c:
            row = c.execute(select_version(_d, name, version)).first()
        return _rec(row) if row else None

    def list_datasets(self, name: str | None = None, *, latest: bool = False
                      ) -> list[DatasetRecord]:
        """Dataset versions by name then newest first; ``latest``: the newest of each name."""
        q = select(_d)
        if name is not None:
            q = q.where(_d.c.name == name)
        with self._read() as c:
            rows = c.execute(q.order_by(_d.c.name, _d.c.version.desc())).all()
        out: list[DatasetRecord] = []
        seen: set[str] = set()
        for row in rows:
            if latest:
                if row.name in seen:
                    continue
                seen.add(row.name)
            out.append(_rec(row))
        return out
