"""Integrity of the database under the SQLAlchemy store: the file, its lock, clear errors.

* :class:`DatabaseFile` remembers which file (``st_dev``, ``st_ino``) an embedded SQLite store
  opened; :meth:`DatabaseFile.check` (one ``os.stat``) refuses to go on once that file was
  deleted or replaced, so a process never reports success for writes that went to a file
  nobody will read again.
* :func:`file_lock` is the lock next to a SQLite file that serialises creating and migrating it.
* :func:`translate` turns the driver's "database is locked", "database or disk is full",
  "disk I/O error", "unable to open database file" (SQLite) and disk-full / lock-timeout
  (PostgreSQL) into :class:`~runyard.errors.RunyardError` subclasses that name the database and
  the fix.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from runyard.errors import DatabaseBusy, DatabaseMissing, DiskFull, RunyardError, WorkspaceError

#: The workspace config key that sets how long a store waits for a busy database (seconds).
BUSY_TIMEOUT_KEY = "database_busy_timeout_seconds"

# SQLite's primary result codes (fixed by its C API; ``sqlite3.SQLITE_BUSY`` and friends and
# the exceptions' ``sqlite_errorcode`` exist only on Python >= 3.11: older ones match the text).
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_SQLITE_FULL = 13
_SQLITE_IOERR = 10
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26
_SQLITE_READONLY = 8
_PG_DISK_FULL = "53100"
_PG_LOCK_TIMEOUT = "55P03"


def sqlite_file(url: str) -> Path | None:
    """The absolute database file of a ``sqlite:///`` URL; None for other databases, for an
    in-memory database and for SQLite ``file:`` URIs (which carry their own open mode)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    db = u.database
    if not db or db == ":memory:" or db.startswith("file:") or u.query.get("uri"):
        return None
    return Path(os.path.abspath(db))


def missing_error(file: Path) -> DatabaseMissing:
    """The error for a workspace database file that is not there."""
    return DatabaseMissing(
        f"the workspace database {file} is missing (deleted or moved?); runyard never creates "
        f"it when opening a workspace: restore it from a backup, or start over by moving "
        f"{file.parent} aside and running `runyard init`", details={"file": str(file)})


class DatabaseFile:
    """The SQLite file a store opened, checked before each transaction (one ``os.stat``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def record(self) -> None:
        """Remember the file now at :attr:`path` as the store's database."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise missing_error(self.path) from exc
        self.identity = (st.st_dev, st.st_ino)

    def check(self) -> None:
        """Raise :class:`DatabaseMissing` when the file was deleted or replaced since opened."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise DatabaseMissing(
                f"the workspace database {self.path} was deleted while this process was using "
                "it; nothing more is written: restore it from a backup, or start over by moving "
                f"{self.path.parent} aside and running `runyard init`",
                details={"file": str(self.path)}) from None
        except OSError as exc:
            raise WorkspaceError(f"cannot check the workspace database {self.path}: "
                                 f"{exc.strerror}", details={"file": str(self.path)}) from exc
        if self.identity is not None and (st.st_dev, st.st_ino) != self.identity:
            raise DatabaseMissing(
                f"the workspace database {self.path} was replaced by another file while this "
                "process was using it; nothing more is written to either: run the command again "
                "to use the file that is there now, or restore the right one from a backup",
                details={"file": str(self.path)})


def disk_full_error(path: Path, what: str = "the workspace database") -> DiskFull:
    """The error for a full disk under ``path`` (with the space that is left, when known)."""
    free = ""
    with suppress(OSError):
        free = f", {shutil.disk_usage(path.parent).free // 1024} KiB free"
    return DiskFull(f"the disk holding {what} {path} is full{free}: free disk space there, "
                    "then run the command again", details={"file": str(path)})


def busy_error(label: str, timeout_s: float, *, during: str = "") -> DatabaseBusy:
    """The error for a database another process held longer than ``timeout_s``."""
    return DatabaseBusy(
        f"the workspace database {label} is busy: another process held it for more than "
        f"{timeout_s:g} s{during} (the busy timeout); run the command again, stop that process "
        f"if it is stuck, or wait longer by setting \"{BUSY_TIMEOUT_KEY}\" in the workspace's "
        ".runyard/config.json", details={"database": label, "timeout_seconds": timeout_s})


@contextmanager
def file_lock(path: Path, timeout_s: float, label: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed), waiting at most
    ``timeout_s`` (then :class:`DatabaseBusy`)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise disk_full_error(path, "the workspace lock file") from exc
        raise WorkspaceError(f"cannot create the database lock file {path}: {exc.strerror}; "
                             "check the folder's permissions", details={"file": str(path)}
                             ) from exc
    try:
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy_error(label, timeout_s,
                                     during=f" while creating or migrating it (lock {path})"
                                     ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def _sqlite_code(orig: BaseException) -> int | None:
    code = getattr(orig, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says another connection holds the database (SQLite busy/locked)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = _sqlite_code(orig) if orig is not None else None
    if code is not None:
        return code in _SQLITE_BUSY
    return "database is locked" in str(orig) or "database table is locked" in str(orig)


def translate(exc: DBAPIError, label: str, file: DatabaseFile | None,
              busy_timeout_s: float) -> RunyardError | None:
    """The clear error for a driver error, or None when it is none of the known faults.

    ``label`` names the database (the file, or the URL without its password); ``file`` is the
    SQLite file the store opened (its identity is checked first: a deleted file explains many
    errors).
    """
    orig = exc.orig
    text = str(orig)
    if file is not None:
        try:
            file.check()
        except DatabaseMissing as gone:
            return gone
        except WorkspaceError:
            pass
    code = _sqlite_code(orig) if orig is not None else None
    sqlstate = getattr(orig, "sqlstate", None)
    path = file.path if file is not None else None
    if is_busy(exc) or sqlstate == _PG_LOCK_TIMEOUT:
        return busy_error(label, busy_timeout_s)
    if code == _SQLITE_FULL or "database or disk is full" in text or sqlstate == _PG_DISK_FULL:
        return disk_full_error(path) if path is not None else DiskFull(
            f"the disk of the workspace database {label} is full: free disk space on the "
            "database server, then run the command again", details={"database": label})
    if code == _SQLITE_IOERR or "disk I/O error" in text:
        if path is not None:
            try:
                if shutil.disk_usage(path.parent).free < 1024 * 1024:
                    return disk_full_error(path)
            except OSError:
                pass
        return WorkspaceError(f"disk I/O error on the workspace database {label}: check the "
                              "disk (free space, `dmesg`), then run the command again",
                              details={"database": label})
    if code == _SQLITE_CANTOPEN or "unable to open database file" in text:
        if path is not None and not path.exists():
            return missing_error(path)
        return WorkspaceError(f"cannot open the workspace database {label}: check the "
                              "permissions of the file and of its folder",
                              details={"database": label})
    if code == _SQLITE_NOTADB or "file is not a database" in text:
        return DatabaseMissing(f"{label} is not a runyard database (replaced or damaged?): "
                               "restore it from a backup", details={"database": label})
    if code == _SQLITE_READONLY or "readonly database" in text:
        return WorkspaceError(f"the workspace database {label} is read-only: check the "
                              "permissions of the file and of its folder",
                              details={"database": label})
    return None
