"""Model-registry rows of the SQLAlchemy store (mixed into ``SqlWorkspaceStore``).

Versions are numbered per name: a registration reads the highest version and inserts the
next one; the primary key ``(name, version)`` makes a concurrent registration that picked the
same number fail, and it retries with the next. So two registrations at once get distinct
versions on SQLite and PostgreSQL alike, with no table lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, delete, select, update

from runyard.errors import NotFound
from runyard.store.model_record import ModelFile, ModelRecord
from runyard.store.sqlalchemy import tables as t
from runyard.store.sqlalchemy.versioned import insert_next_version, select_version

#: How often a registration retries after losing the race for a version number.

_m = t.models


def _rec(row: Any) -> ModelRecord:
    return ModelRecord(
        name=row.name, version=int(row.version), description=row.description,
        framework=row.framework, framework_version=row.framework_version,
        tags=dict(row.tags or {}), properties=dict(row.properties or {}), run_id=row.run_id,
        experiment=row.experiment, datasets=list(row.datasets or []), root=row.root,
        files=tuple(ModelFile(f["path"], f["blob"], int(f["size"])) for f in row.files or []),
        total_size=int(row.total_size), created_at=float(row.created_at))


def _matches(have: Mapping[str, str], want: Mapping[str, str | None] | None) -> bool:
    """Every key of ``want`` present in ``have`` (with the value, unless it is None)."""
    return all(k in have and (v is None or have[k] == v) for k, v in (want or {}).items())


class ModelRows:
    """Store methods for the model registry."""

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def add_model_version(self, rec: ModelRecord) -> ModelRecord:
        """Insert ``rec`` as the next version of ``rec.name`` (its ``version`` is ignored)."""
        version = insert_next_version(self._write, _m, "model", rec.name, dict(
            description=rec.description,
            framework=rec.framework, framework_version=rec.framework_version,
            tags=dict(rec.tags), properties=dict(rec.properties), run_id=rec.run_id,
            experiment=rec.experiment, datasets=list(rec.datasets), root=rec.root,
            files=[f.to_json() for f in rec.files], total_size=rec.total_size,
            created_at=rec.created_at))
        return dataclasses.replace(rec, version=version)

    def get_model(self, name: str, version: int | None = None) -> ModelRecord | None:
        """The given version of model ``name`` (default: the latest), or None."""
        with self._read() as c:
            row = c.execute(select_version(_m, name, version)).first()
        return _rec(row) if row else None

    def list_models(self, name: str | None = None, *,
                    tags: Mapping[str, str | None] | None = None,
                    properties: Mapping[str, str | None] | None = None,
                    run_id: str | None = None, latest: bool = False) -> list[ModelRecord]:
        """Model versions by name then newest version first; ``tags``/``properties`` filters
        match keys (with the value, unless None); ``latest`` keeps the newest version of each
        name (before filtering, as v1)."""
        q = select(_m)
        if name is not None:
            q = q.where(_m.c.name == name)
        if run_id is not None:
            q = q.where(_m.c.run_id == run_id)
        with self._read() as c:
            rows = c.execute(q.order_by(_m.c.name, _m.c.version.desc())).all()
        out: list[ModelRecord] = []
        seen: set[str] = set()
        for row in rows:
            if latest:
                if row.name in seen:
                    continue
                seen.add(row.name)
            rec = _rec(row)
            if _matches(rec.tags, tags) and _matches(rec.properties, properties):
                out.append(rec)
        return out

    def update_model(self, name: str, version: int, *,
                     tags: Mapping[str, str] | None = None,
                     remove_tags: list[str] | None = None,
                     properties: Mapping[str, str] | None = None,
                     description: str | None = None) -> ModelRecord:
        """Set/remove tags, add properties (the caller checks immutability) or change the
        description of one version; NotFound if it does not exist."""
        where = (_m.c.name == name) & (_m.c.version == version)
        with self._write() as c:
            row = c.execute(select(_m).where(where)).first()
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}",
                               details={"name": name, "version": version})
            new_tags = {**(row.tags or {}), **(tags or {})}
            for key in remove_tags or []:
                new_tags.pop(key, None)
            values: dict[str, Any] = {
                "tags": new_tags, "properties": {**(row.properties or {}), **(properties or {})}}
            if description is not None:
                values["description"] = description
            c.execute(update(_m).where(where).values(**values))
            row = c.execute(select(_m).where(where)).one()
        return _rec(row)

    def delete_model(self, name: str, version: int) -> bool:
        """Remove one version; False if it did not exist."""
        with self._write() as c:
            res = c.execute(delete(_m).where((_m.c.name == name) & (_m.c.version == version)))
        return bool(res.rowcount)

    def model_blobs(self) -> set[str]:
        """Every content blob some model version refers to (garbage collection keeps them)."""
        with self._read() as c:
            rows = c.execute(select(_m.c.files)).all()
        return {f["blob"] for (files,) in rows for f in files or []}
