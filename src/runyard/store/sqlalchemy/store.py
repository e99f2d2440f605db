"""``SqlWorkspaceStore``: the workspace store over SQLAlchemy Core (SQLite or PostgreSQL)."""

from __future__ import annotations

import errno
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from runyard.entities import (
    AttemptRecord,
    ExperimentRecord,
    FileRecord,
    MetricRow,
    MetricSeries,
    RunEvent,
    RunRecord,
    RunStatus,
)
from runyard.errors import InvalidParameter, NotFound
from runyard.store.base import (
    EnvironmentRecord,
    IngestBatch,
    RunFilter,
    Transition,
    WorkspaceStore,
)
from runyard.store.sqlalchemy import tables as t
from runyard.store.sqlalchemy.compute import ComputeRows
from runyard.store.sqlalchemy.datasets import DatasetRows
from runyard.store.sqlalchemy.datastores import DatastoreRows
from runyard.store.sqlalchemy.engine import (
    DEFAULT_BUSY_TIMEOUT_S,
    WRITE_OPTION,
    make_engine,
    migrate,
)
from runyard.store.sqlalchemy.guard import (
    DatabaseFile,
    disk_full_error,
    is_busy,
    sqlite_file,
    translate,
)
from runyard.store.sqlalchemy.models import ModelRows

_INSERT_CHUNK = 50_000
#: Retries of a write transaction whose BEGIN found the database busy early (see _connect).
_BUSY_RETRIES = 4


class _StaleOffsets(Exception):
    """Another ingester already consumed these spool bytes."""


def _prev_states(new: RunStatus) -> list[str]:
    """States a run may be in for ``new`` to be applied (forward only, never from terminal)."""
    if new is RunStatus.NOT_RESPONDING:  # lost from any live state
        return [s.value for s in RunStatus if not s.terminal and s is not new]
    prev = [s.value for s in RunStatus
            if not s.terminal and s is not RunStatus.NOT_RESPONDING and s.order < new.order]
    if new.order >= RunStatus.RUNNING.order:  # a lost run that comes back resumes
        prev.append(RunStatus.NOT_RESPONDING.value)
    return prev


class SqlWorkspaceStore(ComputeRows, DatasetRows, DatastoreRows, ModelRows, WorkspaceStore):
    """Workspace store over a SQLAlchemy engine; see :class:`WorkspaceStore`."""

    def __init__(self, url: str, *, migrate_schema: bool = True, create: bool = True,
                 busy_timeout_s: float | None = None) -> None:
        """Open the database at ``url`` and bring its schema to head.

        ``create``: whether a missing database may be created (the embedded SQLite file, or the
        schema of an empty PostgreSQL database); opening a workspace passes False, so a deleted
        database is a :class:`~runyard.errors.DatabaseMissing`, never a silent empty one.
        ``busy_timeout_s``: how long to wait for a database another process holds before a
        :class:`~runyard.errors.DatabaseBusy` (default 30 s).
        """
        self.url = url
        self.busy_timeout_s = float(busy_timeout_s or DEFAULT_BUSY_TIMEOUT_S)
        self.engine = make_engine(url, busy_timeout_s=self.busy_timeout_s)
        file = sqlite_file(url) if self.engine.dialect.name == "sqlite" else None
        self._label = str(file) if file is not None else \
            self.engine.url.render_as_string(hide_password=True)
        #: The SQLite file this store opened; checked (one ``os.stat``) on every transaction.
        self._file: DatabaseFile | None = None
        if migrate_schema:
            self._file = migrate(self.engine, create=create, busy_timeout_s=self.busy_timeout_s)
        elif file is not None:
            self._file = DatabaseFile(file)
            with self._faults():
                self._file.record()

    def __repr__(self) -> str:
        return f"SqlWorkspaceStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """Turn driver faults (busy, disk full, I/O, a vanished file) into clear errors."""
        try:
            yield
        except DBAPIError as exc:
            clear = translate(exc, self._label, self._file, self.busy_timeout_s)
            if clear is None:
                raise
            raise clear from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC and self._file is not None:
                raise disk_full_error(self._file.path) from exc
            raise

    def _connect(self, write: bool) -> Connection:
        """A connection (in a ``BEGIN IMMEDIATE`` transaction when ``write``); a busy database
        that gave up before the busy timeout is retried a few times with backoff (nothing has
        been done in the transaction yet, so that is safe)."""
        delay = 0.02
        for attempt in range(_BUSY_RETRIES + 1):
            started = time.monotonic()
            conn: Connection | None = None
            try:
                conn = self.engine.connect()
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                    conn.begin()
                return conn
            except OperationalError as exc:
                if conn is not None:
                    conn.close()
                waited = time.monotonic() - started
                if (attempt == _BUSY_RETRIES or not is_busy(exc)
                        or waited >= self.busy_timeout_s * 0.5):
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._faults(), self._connect(write=True) as conn:
            trans = conn.get_transaction()
            assert trans is not None
            with trans:
                yield conn
                if self._file is not None:
                    self._file.check()  # deleted meanwhile: roll back, never report success

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._faults():
            if self._file is not None:
                self._file.check()
            with self._connect(write=False) as conn:
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    # -- experiments -------------------------------------------------------------------------
    @staticmethod
    def _exp(row: Any) -> ExperimentRecord:
        return ExperimentRecord(id=row.id, name=row.name, created_at=row.created_at,
                                archived=bool(row.archived))

    def get_experiment(self, name: str) -> ExperimentRecord | None:
        with self._read() as c:
            row = c.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
        return self._exp(row) if row else None

    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        found = self.get_experiment(name)
        if found:
            return found
        try:
            with self._write() as c:
                c.execute(insert(t.experiments).values(
                    id=uuid.uuid4().hex, name=name, created_at=time.time(), archived=False))
        except IntegrityError:
            pass  # created concurrently
        found = self.get_experiment(name)
        assert found is not None
        return found

    def list_experiments(self) -> list[ExperimentRecord]:
        with self._read() as c:
            rows = c.execute(select(t.experiments).order_by(t.experiments.c.created_at)).all()
        return [self._exp(r) for r in rows]

    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        with self._write() as c:
            c.execute(update(t.experiments).where(t.experiments.c.name == name)
                      .values(archived=bool(archived)))
        found = self.get_experiment(name)
        if found is None:
            raise NotFound(f"experiment {name!r} does not exist")
        return found

    # -- runs --------------------------------------------------------------------------------
    def _create_run(self, c: Connection, run: RunRecord, cause: str) -> None:
        c.execute(insert(t.runs).values(
            id=run.id, experiment=run.experiment, parent_id=run.parent_id, run_type=run.run_type,
            display_name=run.display_name, status=run.status.value, target=run.target,
            attempt=run.attempt, created_at=run.created_at, start_time=run.start_time,
            end_time=run.end_time, snapshot_id=run.snapshot_id, definition=run.definition,
            error=run.error, handle=run.handle))
        c.execute(insert(t.run_attempts).values(run_id=run.id, attempt=run.attempt,
                                                started_at=run.created_at, cause=cause))
        c.execute(insert(t.run_events).values(run_id=run.id, attempt=run.attempt,
                                              status=run.status.value, at=run.created_at,
                                              cause=cause))
        if run.tags:
            self._set_tags(c, run.id, run.tags)
        if run.properties:
            self._add_properties(c, run.id, run.properties)

    def create_run(self, run: RunRecord, cause: str) -> None:
        with self._write() as c:
            self._create_run(c, run, cause)

    def _load_kv(self, c: Connection, table: Any, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {r: {} for r in run_ids}
        for i in range(0, len(run_ids), 500):
            part = run_ids[i:i + 500]
            for row in c.execute(select(table).where(table.c.run_id.in_(part))):
                out[row.run_id][row.key] = row.value
        return out

    def _runs(self, c: Connection, rows: Sequence[Any]) -> list[RunRecord]:
        ids = [r.id for r in rows]
        tags = self._load_kv(c, t.run_tags, ids)
        props = self._load_kv(c, t.run_properties, ids)
        return [RunRecord(
            id=r.id, experiment=r.experiment, status=RunStatus(r.status), created_at=r.created_at,
            run_type=r.run_type, parent_id=r.parent_id, display_name=r.display_name,
            target=r.target, attempt=r.attempt, start_time=r.start_time, end_time=r.end_time,
            snapshot_id=r.snapshot_id, definition=r.definition or {}, error=r.error,
            handle=r.handle, tags=tags[r.id], properties=props[r.id],
            rejected_events=r.rejected_events or 0) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as c:
            row = c.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
            return self._runs(c, [row])[0] if row else None

    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        q = select(t.runs)
        if flt.experiment is not None:
            q = q.where(t.runs.c.experiment == flt.experiment)
        if flt.parent_id is not None:
            q = q.where(t.runs.c.parent_id == flt.parent_id)
        elif flt.top_level_only:
            q = q.where(t.runs.c.parent_id.is_(None))
        if flt.statuses:
            q = q.where(t.runs.c.status.in_([s.value for s in flt.statuses]))
        if flt.target is not None:
            q = q.where(t.runs.c.target == flt.target)
        for table, wanted in ((t.run_tags, flt.tags), (t.run_properties, flt.properties)):
            for key, value in (wanted or {}).items():
                cond = and_(table.c.run_id == t.runs.c.id, table.c.key == key)
                if value is not None:
                    cond = and_(cond, table.c.value == value)
                q = q.where(exists().where(cond))
        q = q.order_by(t.runs.c.created_at.desc(), t.runs.c.id.desc())
        if flt.limit:
            q = q.limit(flt.limit)
        with self._read() as c:
            return self._runs(c, c.execute(q).all())

    def _transition(self, c: Connection, tr: Transition) -> bool:
        conds = [t.runs.c.id == tr.run_id, t.runs.c.status.in_(_prev_states(tr.new))]
        if tr.attempt is not None:
            conds.append(t.runs.c.attempt == tr.attempt)
        values: dict[str, Any] = {"status": tr.new.value}
        if tr.new == RunStatus.RUNNING:
            values["start_time"] = tr.at
        if tr.new.terminal:
            values["end_time"] = tr.at
        if tr.new.terminal or tr.new is RunStatus.NOT_RESPONDING:
            values["error"] = tr.error  # a run that resumes from NotResponding drops its error
        res = c.execute(update(t.runs).where(*conds).values(**values))
        if res.rowcount != 1:
            return False
        attempt = tr.attempt or c.execute(
            select(t.runs.c.attempt).where(t.runs.c.id == tr.run_id)).scalar_one()
        c.execute(insert(t.run_events).values(run_id=tr.run_id, attempt=attempt,
                                              status=tr.new.value, at=tr.at, cause=tr.cause))
        if tr.new.terminal:
            c.execute(update(t.run_attempts).where(
                t.run_attempts.c.run_id == tr.run_id, t.run_attempts.c.attempt == attempt
            ).values(ended_at=tr.at, status=tr.new.value))
        return True

    def transition(self, tr: Transition) -> bool:
        with self._write() as c:
            return self._transition(c, tr)

    def set_handle(self, run_id: str, handle: dict[str, Any]) -> None:
        with self._write() as c:
            c.execute(update(t.runs).where(t.runs.c.id == run_id).values(handle=handle))

    def set_snapshot(self, run_id: str, snapshot_id: str) -> None:
        with self._write() as c:
            c.execute(update(t.runs).where(t.runs.c.id == run_id).values(snapshot_id=snapshot_id))

    def list_events(self, run_id: str) -> list[RunEvent]:
        with self._read() as c:
            rows = c.execute(select(t.run_events).where(t.run_events.c.run_id == run_id)
                             .order_by(t.run_events.c.id)).all()
        return [RunEvent(r.run_id, r.attempt, RunStatus(r.status), r.at, r.cause) for r in rows]

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        with self._read() as c:
            rows = c.execute(select(t.run_attempts).where(t.run_attempts.c.run_id == run_id)
                             .order_by(t.run_attempts.c.attempt)).all()
        return [AttemptRecord(r.run_id, r.attempt, r.started_at, r.ended_at, r.cause,
                              RunStatus(r.status) if r.status else None) for r in rows]

    def start_attempt(self, run_id: str, cause: str, at: float) -> int:
        with self._write() as c:
            cur = c.execute(select(t.runs.c.attempt, t.runs.c.status)
                            .where(t.runs.c.id == run_id)).one()
            if RunStatus(cur.status).terminal:
                raise InvalidParameter("run_id", f"run {run_id} is {cur.status}; "
                                       "a finished run gets no new attempt")
            n = cur.attempt + 1
            c.execute(update(t.run_attempts).where(
                t.run_attempts.c.run_id == run_id, t.run_attempts.c.attempt == cur.attempt,
                t.run_attempts.c.ended_at.is_(None)).values(ended_at=at, status=cur.status))
            c.execute(insert(t.run_attempts).values(run_id=run_id, attempt=n, started_at=at,
                                                    cause=cause))
            c.execute(update(t.runs).where(t.runs.c.id == run_id).values(
                attempt=n, status=RunStatus.QUEUED.value, handle=None))
            c.execute(insert(t.run_events).values(run_id=run_id, attempt=n,
                                                  status=RunStatus.QUEUED.value, at=at,
                                                  cause=cause))
            return int(n)

    # -- tracking ----------------------------------------------------------------------------
    def _set_tags(self, c: Connection, run_id: str, tags: dict[str, str | None]) -> None:
        if not tags:
            return
        c.execute(delete(t.run_tags).where(t.run_tags.c.run_id == run_id,
                                           t.run_tags.c.key.in_(list(tags))))
        c.execute(insert(t.run_tags), [{"run_id": run_id, "key": k, "value": v}
                                       for k, v in tags.items()])

    def set_tags(self, run_id: str, tags: dict[str, str | None]) -> None:
        with self._write() as c:
            self._set_tags(c, run_id, tags)

    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        with self._write() as c:
            c.execute(delete(t.run_tags).where(t.run_tags.c.run_id == run_id,
                                               t.run_tags.c.key.in_(list(keys))))

    def _add_properties(self, c: Connection, run_id: str, props: dict[str, str]) -> None:
        if not props:
            return
        existing = {r.key: r.value for r in c.execute(select(t.run_properties).where(
            t.run_properties.c.run_id == run_id, t.run_properties.c.key.in_(list(props))))}
        for k, v in props.items():
            if k in existing and existing[k] != v:
                raise InvalidParameter(
                    f"properties[{k!r}]",
                    f"properties are immutable; it is already {existing[k]!r}, cannot set it "
                    f"to {v!r} (use a tag for values that change)")
        new = [{"run_id": run_id, "key": k, "value": v} for k, v in props.items()
               if k not in existing]
        if new:
            c.execute(insert(t.run_properties), new)

    def add_properties(self, run_id: str, props: dict[str, str]) -> None:
        with self._write() as c:
            self._add_properties(c, run_id, props)

    @staticmethod
    def _series_id(c: Connection, cache: dict[tuple[str, str, str], int], run_id: str,
                   name: str, kind: str) -> int:
        key = (run_id, name, kind)
        if key in cache:
            return cache[key]
        ms = t.metric_series.c
        where = (ms.run_id == run_id, ms.name == name, ms.kind == kind)
        found = c.execute(select(ms.id).where(*where)).scalar()
        if found is None:
            try:
                with c.begin_nested():
                    c.execute(insert(t.metric_series).values(run_id=run_id, name=name,
                                                             kind=kind))
            except IntegrityError:
                pass  # created concurrently
            found = c.execute(select(ms.id).where(*where)).scalar_one()
        cache[key] = int(found)
        return cache[key]

    @classmethod
    def _insert_series(cls, c: Connection, series: Iterable[MetricSeries]) -> None:
        """Bulk insert through the driver's executemany (the 1M-values/s path)."""
        mark = "?" if c.dialect.paramstyle == "qmark" else "%s"
        sql = (f"INSERT INTO {t.metrics.name} (series_id, step, value, value_json, ts) "
               f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})")
        cache: dict[tuple[str, str, str], int] = {}
        for s in series:
            if not s.values:
                continue
            sid = cls._series_id(c, cache, s.run_id, s.name, s.kind)
            steps = s.steps
            if s.append:  # numbered after the last stored step; the series row is locked
                ms, m = t.metric_series.c, t.metrics.c
                c.execute(select(ms.id).where(ms.id == sid).with_for_update()).scalar()
                last = c.execute(select(func.max(m.step)).where(m.series_id == sid)).scalar()
                first = 0 if last is None else int(last) + 1
                steps = list(range(first, first + len(s.values)))
            rows = list(zip(repeat(sid, len(steps)), steps, s.values, s.values_json, s.ts,
                            strict=True))
            for i in range(0, len(rows), _INSERT_CHUNK):
                c.exec_driver_sql(sql, rows[i:i + _INSERT_CHUNK])

    def add_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        self.apply_ingest(run_id, IngestBatch(metric_series=MetricSeries.from_rows(
            run_id, list(rows))))

    def get_metric_rows(self, run_id: str, names: Sequence[str] | None = None) -> list[MetricRow]:
        m, ms = t.metrics.c, t.metric_series.c
        q = (select(ms.name, ms.kind, m.step, m.value, m.value_json, m.ts)
             .join_from(t.metrics, t.metric_series, m.series_id == ms.id)
             .where(ms.run_id == run_id))
        if names:
            q = q.where(ms.name.in_(list(names)))
        q = q.order_by(ms.name, m.step, m.id)
        with self._read() as c:
            return [MetricRow(*r) for r in c.execute(q)]

    def delete_runs(self, run_ids: Sequence[str]) -> int:
        ended = [s.value for s in RunStatus if s.terminal]
        deleted = 0
        with self._write() as c:
            for i in range(0, len(run_ids), 500):
                chunk = list(dict.fromkeys(run_ids[i:i + 500]))
                ids = [r[0] for r in c.execute(select(t.runs.c.id).where(
                    t.runs.c.id.in_(chunk), t.runs.c.status.in_(ended)))]
                if not ids:
                    continue
                series = select(t.metric_series.c.id).where(t.metric_series.c.run_id.in_(ids))
                c.execute(delete(t.metrics).where(t.metrics.c.series_id.in_(series)))
                for table in (t.metric_series, t.run_events, t.run_attempts, t.run_tags,
                              t.run_properties, t.run_files, t.spool_offsets):
                    c.execute(delete(table).where(table.c.run_id.in_(ids)))
                deleted += c.execute(delete(t.runs).where(t.runs.c.id.in_(ids))).rowcount
        return deleted

    def _add_files(self, c: Connection, files: Sequence[FileRecord]) -> None:
        if not files:
            return
        latest = {(f.run_id, f.name): f for f in files}
        for (rid, _name), f in latest.items():
            c.execute(delete(t.run_files).where(t.run_files.c.run_id == rid,
                                                t.run_files.c.name == f.name))
        c.execute(insert(t.run_files), [{"run_id": f.run_id, "name": f.name, "size": f.size}
                                        for f in latest.values()])

    def add_files(self, files: Sequence[FileRecord]) -> None:
        with self._write() as c:
            self._add_files(c, files)

    def list_files(self, run_id: str) -> list[FileRecord]:
        with self._read() as c:
            rows = c.execute(select(t.run_files).where(t.run_files.c.run_id == run_id)
                             .order_by(t.run_files.c.name)).all()
        return [FileRecord(r.run_id, r.name, r.size) for r in rows]

    # -- environments ------------------------------------------------------------------------
    @staticmethod
    def _envrec(row: Any) -> EnvironmentRecord:
        return EnvironmentRecord(name=row.name, version=int(row.version),
                                 definition=dict(row.definition or {}),
                                 definition_hash=row.definition_hash, created_at=row.created_at)

    def register_environment(self, name: str, definition: dict[str, Any],
                             definition_hash: str) -> EnvironmentRecord:
        e = t.environments.c
        for _ in range(20):
            try:
                with self._write() as c:
                    latest = c.execute(select(t.environments).where(e.name == name)
                                       .order_by(e.version.desc()).limit(1)).first()
                    if latest is not None and latest.definition_hash == definition_hash:
                        return self._envrec(latest)
                    rec = EnvironmentRecord(name, (latest.version if latest else 0) + 1,
                                            definition, definition_hash, time.time())
                    c.execute(insert(t.environments).values(
                        name=rec.name, version=rec.version, definition=rec.definition,
                        definition_hash=rec.definition_hash, created_at=rec.created_at))
                    return rec
            except IntegrityError:
                continue  # another writer took that version number (PostgreSQL); look again
        raise InvalidParameter("name", f"could not register environment {name!r}: too many "
                               "concurrent registrations")

    def get_environment(self, name: str, version: int | None = None) -> EnvironmentRecord | None:
        e = t.environments.c
        q = select(t.environments).where(e.name == name)
        q = q.where(e.version == version) if version is not None else \
            q.order_by(e.version.desc()).limit(1)
        with self._read() as c:
            row = c.execute(q).first()
        return self._envrec(row) if row else None

    def list_environments(self) -> list[EnvironmentRecord]:
        e = t.environments.c
        with self._read() as c:
            rows = c.execute(select(t.environments).order_by(e.name, e.version)).all()
        return [self._envrec(r) for r in rows]

    # -- ingest ------------------------------------------------------------------------------
    def get_offsets(self, run_id: str) -> dict[str, int]:
        with self._read() as c:
            rows = c.execute(select(t.spool_offsets).where(t.spool_offsets.c.run_id == run_id))
            return {r.stream: int(r.offset) for r in rows}

    def _advance(self, c: Connection, run_id: str, stream: str, frm: int, to: int) -> None:
        o = t.spool_offsets.c
        if frm == 0:
            try:
                with c.begin_nested():
                    c.execute(insert(t.spool_offsets).values(run_id=run_id, stream=stream,
                                                             offset=to))
                return
            except IntegrityError:
                pass
        res = c.execute(update(t.spool_offsets).where(
            o.run_id == run_id, o.stream == stream, o.offset == frm).values(offset=to))
        if res.rowcount != 1:
            raise _StaleOffsets(stream)

    def apply_ingest(self, run_id: str, batch: IngestBatch) -> list[Transition]:
        applied: list[Transition] = []
        try:
            with self._write() as c:
                for stream, (frm, to) in batch.offsets.items():
                    self._advance(c, run_id, stream, frm, to)
                for child in batch.children:
                    present = c.execute(select(t.runs.c.id).where(t.runs.c.id == child.id)).first()
                    if not present:
                        self._create_run(c, child, "created by its parent")
                self._insert_series(c, batch.metric_series)
                for rid, tags in batch.tags:
                    self._set_tags(c, rid, tags)
                for rid, props in batch.properties:
                    try:
                        with c.begin_nested():
                            self._add_properties(c, rid, props)
                    except InvalidParameter:
                        pass  # the script was already told; the first value stays
                self._add_files(c, batch.files)
                for tr in batch.transitions:
                    if self._transition(c, tr):
                        applied.append(tr)
                if batch.rejected:
                    c.execute(update(t.runs).where(t.runs.c.id == run_id).values(
                        rejected_events=t.runs.c.rejected_events + len(batch.rejected)))
        except _StaleOffsets:
            return []
        batch.applied = True
        return applied
