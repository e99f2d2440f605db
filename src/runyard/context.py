"""``WorkspaceContext``: what every layer below the SDK receives instead of the SDK Workspace.

It holds the workspace's folder and configuration and opens, on first use, its store (chosen by
the database URL's scheme), its snapshot store, its artifact store and its secret box. Compute
kinds, services and environments take a context; the SDK ``Workspace`` wraps one.

Opening a workspace (:func:`open_context`) never creates its database: a deleted database file
is a :class:`~runyard.errors.DatabaseMissing` naming the file and the fix. Only workspace
creation (:meth:`WorkspaceContext.create_store`) creates it.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard import settings
from runyard.errors import WorkspaceError

if TYPE_CHECKING:
    from runyard.artifacts import ArtifactStore
    from runyard.secrets import SecretBox
    from runyard.snapshots import SnapshotStore
    from runyard.store.base import WorkspaceStore


def read_config(file: Path) -> dict[str, Any]:
    """The JSON of a workspace config file, checked (``WorkspaceError`` says what is wrong)."""
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise WorkspaceError(f"workspace config {file} is missing") from exc
    except PermissionError as exc:
        raise WorkspaceError(f"workspace config {file} is not readable: {exc.strerror}; "
                             "fix its permissions") from exc
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"workspace config {file} is not valid JSON ({exc}); "
                             "repair it or run `runyard init` in a new folder") from exc
    if not isinstance(data, dict) or not data.get("workspace_name"):
        raise WorkspaceError(f"workspace config {file} has no 'workspace_name'")
    return data


def open_context(root: str | os.PathLike[str]) -> WorkspaceContext:
    """The context of the workspace whose ``.runyard/`` folder is in ``root``."""
    root = Path(root).resolve()
    cfg_dir = root / settings.CONFIG_DIR_NAME
    if not cfg_dir.is_dir():
        raise WorkspaceError(
            f"no runyard workspace in {root} (no {settings.CONFIG_DIR_NAME}/ folder); "
            "create one with `runyard init` or Workspace.create(name, path)")
    if not os.access(cfg_dir, os.R_OK | os.X_OK):
        raise WorkspaceError(f"the workspace folder {cfg_dir} is not readable; "
                             "fix its permissions")
    config = read_config(cfg_dir / settings.CONFIG_FILE_NAME)
    ctx = WorkspaceContext(config["workspace_name"], root, config, create_database=False)
    ctx.check_database()
    return ctx


class WorkspaceContext:
    """Store, snapshots, artifacts, secrets, paths and settings of one workspace."""

    def __init__(self, name: str, path: str | os.PathLike[str],
                 config: dict[str, Any] | None = None, *, create_database: bool = True) -> None:
        """``create_database``: whether :attr:`store` may create a missing database (an
        embedded SQLite file, or the schema of an empty PostgreSQL database). Opening an
        existing workspace passes False (:func:`open_context`, ``Workspace.get``)."""
        self.name = name
        #: The folder that holds ``.runyard/``.
        self.path = Path(path).resolve()
        self.config: dict[str, Any] = dict(config or {})
        self.create_database = create_database

    # -- paths and settings ------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """``<path>/.runyard``."""
        return self.path / settings.CONFIG_DIR_NAME

    def run_dir(self, run_id: str) -> Path:
        """Folder of one run: working copy, spool and artifacts (embedded targets)."""
        return self.data_dir / "runs" / run_id

    @property
    def database_url(self) -> str:
        """The store's URL: config, then RUNYARD_DATABASE_URL, then the embedded SQLite."""
        url = self.config.get("database_url") or settings.database_url_from_env()
        return str(url or f"sqlite:///{self.data_dir / settings.DB_FILE_NAME}")

    @property
    def max_concurrent_runs(self) -> int:
        """How many local runs may execute at once (the rest wait in Queued)."""
        return int(self.config.get("max_concurrent_runs")
                   or settings.default_max_concurrent_runs())

    @property
    def keep_run_folders(self) -> bool:
        """Whether a run's working copy of the code stays after the run ended (config key
        ``keep_run_folders``, for debugging; default False: it is removed once the run's
        outputs and logs are collected, the snapshot stays in the store)."""
        value = self.config.get("keep_run_folders", False)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)

    @property
    def snapshot_limits(self) -> tuple[int, int]:
        """(max bytes, max files) of a snapshot."""
        return (int(self.config.get("snapshot_max_bytes", settings.SNAPSHOT_MAX_BYTES)),
                int(self.config.get("snapshot_max_files", settings.SNAPSHOT_MAX_FILES)))

    @property
    def busy_timeout_seconds(self) -> float | None:
        """How long the store waits for a database another process holds (config key
        ``database_busy_timeout_seconds``; None: the store's default, 30 s)."""
        from runyard.store.sqlalchemy.guard import BUSY_TIMEOUT_KEY  # noqa: PLC0415

        value = self.config.get(BUSY_TIMEOUT_KEY)
        if value is None:
            return None
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = float("nan")
        if not seconds > 0 or seconds == float("inf"):
            raise WorkspaceError(f"{BUSY_TIMEOUT_KEY} in the workspace config of {self.path} "
                                 f"must be a positive number of seconds, not {value!r}")
        return seconds

    def check_database(self) -> None:
        """Raise :class:`~runyard.errors.DatabaseMissing` when the workspace's SQLite file is
        not there (a cheap ``os.stat``; other databases are checked when the store opens)."""
        from runyard.store.sqlalchemy.guard import missing_error, sqlite_file  # noqa: PLC0415

        if self.create_database:
            return
        file = sqlite_file(self.database_url) if self.database_url.startswith("sqlite") \
            else None
        if file is not None and not file.exists():
            raise missing_error(file)

    @property
    def env_cache_dir(self) -> Path:
        """The environment cache of targets on this machine."""
        return self.data_dir / "envs"

    @property
    def dataset_cache_dir(self) -> Path:
        """The content-addressed cache of dataset files (``<sha[:2]>/<sha>``), shared by every
        dataset read in this workspace and by runs on this machine."""
        return self.data_dir / "cache" / "datasets"

    # -- parts (opened on first use) ---------------------------------------------------------
    @cached_property
    def store(self) -> WorkspaceStore:
        """The workspace store; the URL's scheme picks the implementation."""
        from runyard.store.registry import open_store  # noqa: PLC0415

        return open_store(self.database_url, create=self.create_database,
                          busy_timeout_s=self.busy_timeout_seconds)

    def create_store(self) -> WorkspaceStore:
        """Open the store, creating the database if it is missing (workspace creation only)."""
        from runyard.store.registry import open_store  # noqa: PLC0415

        if "store" not in self.__dict__:
            self.__dict__["store"] = open_store(self.database_url, create=True,
                                                busy_timeout_s=self.busy_timeout_seconds)
        return self.store

    @cached_property
    def snapshots(self) -> SnapshotStore:
        """The content-addressed snapshot store."""
        from runyard.snapshots import SnapshotStore  # noqa: PLC0415

        return SnapshotStore(self.data_dir / "snapshots")

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """Run artifacts (a folder under the workspace)."""
        from runyard.artifacts import FolderArtifactStore  # noqa: PLC0415

        return FolderArtifactStore(self.data_dir / "runs")

    @cached_property
    def secrets(self) -> SecretBox:
        """Encrypts and decrypts the workspace's secrets (the key never leaves this process)."""
        from runyard.secrets import SecretBox  # noqa: PLC0415

        return SecretBox()

    def close(self) -> None:
        """Release the database connections."""
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]

    def __repr__(self) -> str:
        return f"WorkspaceContext(name={self.name!r}, path={str(self.path)!r})"
