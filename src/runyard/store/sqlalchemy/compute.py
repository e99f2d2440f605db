"""Compute-target and secret rows of the SQLAlchemy store (mixed into ``SqlWorkspaceStore``)."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from runyard.entities import ComputeRecord
from runyard.errors import ComputeTargetExists, ComputeTargetNotFound
from runyard.store.sqlalchemy import tables as t


def _rec(row: Any) -> ComputeRecord:
    return ComputeRecord(name=row.name, kind=row.kind, managed=bool(row.managed),
                         config=dict(row.config or {}), config_version=int(row.config_version),
                         state=row.state, errors=list(row.errors or []),
                         created_at=row.created_at, updated_at=row.updated_at)


class ComputeRows:
    """Store methods for compute targets and their secrets."""

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def create_compute_target(self, rec: ComputeRecord,
                              secrets: dict[str, bytes] | None = None) -> None:
        try:
            with self._write() as c:
                c.execute(insert(t.compute_targets).values(
                    name=rec.name, kind=rec.kind, managed=rec.managed, config=rec.config,
                    config_version=rec.config_version, state=rec.state, errors=rec.errors,
                    created_at=rec.created_at, updated_at=rec.updated_at))
                if secrets:
                    c.execute(insert(t.secrets), [
                        {"scope": f"compute/{rec.name}", "name": k, "ciphertext": v}
                        for k, v in secrets.items()])
        except IntegrityError:
            raise ComputeTargetExists(
                f"a compute target named {rec.name!r} already exists in this workspace; "
                "choose another name or delete it first") from None

    def get_compute_target(self, name: str) -> ComputeRecord | None:
        with self._read() as c:
            row = c.execute(select(t.compute_targets)
                            .where(t.compute_targets.c.name == name)).first()
        return _rec(row) if row else None

    def list_compute_targets(self) -> list[ComputeRecord]:
        with self._read() as c:
            rows = c.execute(select(t.compute_targets).order_by(t.compute_targets.c.name)).all()
        return [_rec(r) for r in rows]

    def update_compute_target(self, name: str, *, config: dict[str, Any] | None = None,
                              state: str | None = None,
                              errors: list[str] | None = None) -> ComputeRecord:
        values: dict[str, Any] = {"updated_at": time.time()}
        if config is not None:
            values["config"] = config
            values["config_version"] = t.compute_targets.c.config_version + 1
        if state is not None:
            values["state"] = state
        if errors is not None:
            values["errors"] = errors
        with self._write() as c:
            res = c.execute(update(t.compute_targets)
                            .where(t.compute_targets.c.name == name).values(**values))
            if res.rowcount != 1:
                raise ComputeTargetNotFound(f"compute target {name!r} does not exist")
            row = c.execute(select(t.compute_targets)
                            .where(t.compute_targets.c.name == name)).one()
        return _rec(row)

    def delete_compute_target(self, name: str) -> None:
        with self._write() as c:
            c.execute(delete(t.compute_targets).where(t.compute_targets.c.name == name))
            c.execute(delete(t.secrets).where(t.secrets.c.scope == f"compute/{name}"))

    def get_secrets(self, scope: str) -> dict[str, bytes]:
        with self._read() as c:
            rows = c.execute(select(t.secrets).where(t.secrets.c.scope == scope)).all()
        return {r.name: bytes(r.ciphertext) for r in rows}
