"""Engine creation and schema migration for the SQLAlchemy store.

An embedded SQLite file is opened read-write only (``mode=rw``): a connection never creates the
file, so a deleted database is an error instead of a silently empty new one. Only
:func:`migrate` with ``create=True`` (workspace creation) creates it. Creating and migrating run
under a lock: a file lock next to the SQLite file (``<file>.lock``), a transaction-level
advisory lock (``pg_advisory_xact_lock``) on PostgreSQL, so many processes creating or opening
the same new workspace at once end up with one database migrated once.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from runyard.errors import DatabaseMissing, WorkspaceError
from runyard.store.sqlalchemy.guard import (
    DatabaseFile,
    file_lock,
    missing_error,
    sqlite_file,
    translate,
)

#: The newest Alembic revision; a test checks it equals the migration scripts' head.
HEAD_REVISION = "0006_datasets"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long a store waits for a database another process holds (seconds), unless configured.
DEFAULT_BUSY_TIMEOUT_S = SQLITE_BUSY_TIMEOUT_MS / 1000
WRITE_OPTION = "runyard_write"
#: Key of the PostgreSQL advisory lock that serialises migrations ("runyard" in ASCII).
PG_MIGRATION_LOCK_KEY = 0x72756E79617264


def make_engine(url: str, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writes.

    A SQLite file is opened with ``mode=rw``: the engine never creates it (see :func:`migrate`).
    """
    if url.startswith("sqlite"):
        file = sqlite_file(url)
        if file is not None:
            uri = f"file:{urllib.parse.quote(str(file))}?mode=rw"

            def _connect() -> sqlite3.Connection:
                return sqlite3.connect(uri, uri=True, timeout=busy_timeout_s,
                                       check_same_thread=False)

            engine = create_engine(url, creator=_connect)
        else:
            engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
        _configure_sqlite(engine, int(busy_timeout_s * 1000))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _label(engine: Engine, file: Path | None) -> str:
    return str(file) if file is not None else \
        engine.url.render_as_string(hide_password=True)


def _create_sqlite_file(file: Path) -> None:
    """Create an empty SQLite database at ``file`` (its folder must exist)."""
    try:
        sqlite3.connect(f"file:{urllib.parse.quote(str(file))}?mode=rwc", uri=True).close()
    except sqlite3.Error as exc:
        if file.parent.is_dir() and not file.exists():
            raise WorkspaceError(f"cannot create the workspace database {file}: {exc}; check "
                                 "the folder's permissions and free space",
                                 details={"file": str(file)}) from exc
        raise WorkspaceError(f"cannot create the workspace database {file}: {exc}",
                             details={"file": str(file)}) from exc


def migrate(engine: Engine, *, create: bool = True,
            busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> DatabaseFile | None:
    """Bring the schema to the head revision, under the migration lock.

    ``create``: whether the database may be created (the SQLite file, or the schema in an empty
    PostgreSQL database); otherwise a missing file or a database without runyard's schema is a
    :class:`DatabaseMissing`. Returns the SQLite file (identity recorded) the engine uses, None
    for other databases. Already at head, this costs one query (and, on SQLite, the file lock).
    """
    file = sqlite_file(str(engine.url)) if engine.dialect.name == "sqlite" else None
    label = _label(engine, file)
    try:
        if file is not None:
            return _migrate_sqlite(engine, file, label, create, busy_timeout_s)
        with engine.connect() as conn:
            rev = _revision(conn)
            conn.rollback()
            if rev == HEAD_REVISION:
                return None
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    ms = int(busy_timeout_s * 1000)
                    conn.execute(text(f"SET LOCAL lock_timeout = '{ms}ms'"))
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                 {"k": PG_MIGRATION_LOCK_KEY})
                    rev = _revision(conn)  # as another process may have left it
                if rev != HEAD_REVISION:
                    _upgrade(conn, label, rev, create)
        return None
    except DBAPIError as exc:
        clear = translate(exc, label, DatabaseFile(file) if file is not None else None,
                          busy_timeout_s)
        if clear is not None:
            raise clear from exc
        raise WorkspaceError(f"cannot open the workspace database {label}: {exc.orig}",
                             details={"database": label}) from exc
    except SQLAlchemyError as exc:
        raise WorkspaceError(f"cannot open the workspace database {label}: {exc}",
                             details={"database": label}) from exc


def _migrate_sqlite(engine: Engine, file: Path, label: str, create: bool,
                    busy_timeout_s: float) -> DatabaseFile:
    guard = DatabaseFile(file)
    with file_lock(file.with_name(file.name + ".lock"), busy_timeout_s, label):
        if not file.exists():
            if not create:
                raise missing_error(file)
            _create_sqlite_file(file)
        guard.record()
        with engine.connect() as conn:
            rev = _revision(conn)
            conn.rollback()
            if rev != HEAD_REVISION:
                conn.execution_options(**{WRITE_OPTION: True})  # BEGIN IMMEDIATE
                with conn.begin():
                    _upgrade(conn, label, _revision(conn), create)
        guard.check()
    return guard


def _revision(conn: Connection) -> str | None:
    """The schema's Alembic revision; None when the database has no runyard schema."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(rev) if rev is not None else None


def _upgrade(conn: Connection, label: str, rev: str | None, create: bool) -> None:
    """Run the migrations from ``rev`` up to head inside ``conn``'s transaction."""
    if rev is None and not create:
        raise DatabaseMissing(
            f"the workspace database {label} holds no runyard schema (emptied or replaced?): "
            "restore it from a backup, or start over with `runyard init` in a new folder",
            details={"database": label})
    from alembic import command  # noqa: PLC0415  (slow import, only when migrating)
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
