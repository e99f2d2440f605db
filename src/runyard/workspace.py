"""``Workspace``: the folder (and database) that records every run."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard import settings
from runyard.errors import AlreadyExists, InvalidParameter, NotFound, WorkspaceError
from runyard.naming import check_workspace_name

if TYPE_CHECKING:
    from runyard.compute.base import ComputeTarget
    from runyard.environment import Environment
    from runyard.experiment import Experiment
    from runyard.snapshots import SnapshotStore
    from runyard.store.base import WorkspaceStore

_AZURE_ONLY = ("subscription_id", "resource_group", "auth", "location", "sku", "cloud")


def _read_config(file: Path) -> dict[str, Any]:
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


class Workspace:
    """A runyard workspace: ``<path>/.runyard/`` holding the database, snapshots and runs.

    The embedded default keeps everything in that folder (SQLite). A team workspace names a
    PostgreSQL database in its config (``database_url``) or through ``RUNYARD_DATABASE_URL``.
    """

    def __init__(self, name: str, path: str | os.PathLike[str], *,
                 config: dict[str, Any] | None = None) -> None:
        self.name = name
        #: The folder that holds ``.runyard/``.
        self.path = Path(path).resolve()
        self._config = dict(config or {})

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def _make(cls, name: str, root: Path, config: dict[str, Any]) -> Workspace:
        """Build an instance without calling a subclass's own ``__init__`` (compat layer)."""
        ws = cls.__new__(cls)
        Workspace.__init__(ws, name, root, config=config)
        return ws

    @classmethod
    def create(cls, name: str, path: str | os.PathLike[str] = ".", exist_ok: bool = False,
               database_url: str | None = None, max_concurrent_runs: int | None = None,
               **azure_kwargs: Any) -> Workspace:
        """Create a workspace in ``path`` (Azure-only arguments are accepted and ignored)."""
        check_workspace_name(name)
        root = Path(path).resolve()
        if root.exists() and not root.is_dir():
            raise InvalidParameter("path", f"{root} is not a directory")
        cfg_file = root / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME
        if cfg_file.exists():
            existing = _read_config(cfg_file)
            if not exist_ok:
                raise AlreadyExists(
                    f"a workspace ({existing['workspace_name']!r}) already exists in {root}; "
                    "pass exist_ok=True to open it")
            if existing["workspace_name"] != name:
                raise AlreadyExists(f"{root} holds workspace {existing['workspace_name']!r}, "
                                    f"not {name!r}")
            return cls._open(root)
        if max_concurrent_runs is not None and int(max_concurrent_runs) < 1:
            raise InvalidParameter("max_concurrent_runs", "must be 1 or more")
        config: dict[str, Any] = {"workspace_name": name, "version": 1}
        if database_url:
            config["database_url"] = database_url
        if max_concurrent_runs is not None:
            config["max_concurrent_runs"] = int(max_concurrent_runs)
        ignored = sorted(k for k in azure_kwargs if k in _AZURE_ONLY)
        if ignored:
            config["ignored_azure_arguments"] = ignored
        try:
            cfg_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cfg_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(config, indent=2))
            os.replace(tmp, cfg_file)
        except OSError as exc:
            raise WorkspaceError(f"cannot create the workspace folder in {root}: "
                                 f"{exc.strerror}") from exc
        ws = cls._make(name, root, config)
        _ = ws.store  # create the schema now
        return ws

    @classmethod
    def _open(cls, root: str | os.PathLike[str]) -> Workspace:
        root = Path(root).resolve()
        cfg_dir = root / settings.CONFIG_DIR_NAME
        if not cfg_dir.is_dir():
            raise WorkspaceError(
                f"no runyard workspace in {root} (no {settings.CONFIG_DIR_NAME}/ folder); "
                "create one with `runyard init` or Workspace.create(name, path)")
        if not os.access(cfg_dir, os.R_OK | os.X_OK):
            raise WorkspaceError(f"the workspace folder {cfg_dir} is not readable; "
                                 "fix its permissions")
        config = _read_config(cfg_dir / settings.CONFIG_FILE_NAME)
        return cls._make(config["workspace_name"], root, config)

    @classmethod
    def get(cls, name: str, path: str | os.PathLike[str] = ".", **azure_kwargs: Any) -> Workspace:
        """Open the workspace ``name`` stored in ``path``."""
        ws = cls._open(path)
        if ws.name != name:
            raise NotFound(f"the workspace in {ws.path} is {ws.name!r}, not {name!r}")
        return ws

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None,
                    **azure_kwargs: Any) -> Workspace:
        """Find ``.runyard/config.json`` from ``path`` (default: cwd) upwards and open it."""
        start = Path(path or ".").resolve()
        if start.is_file():
            return cls._from_config_file(start)
        for folder in (start, *start.parents):
            f = folder / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME
            if f.is_file():
                return cls._from_config_file(f)
        raise NotFound(
            f"no {settings.CONFIG_DIR_NAME}/{settings.CONFIG_FILE_NAME} found in {start} or its "
            "parents; run `runyard init` or Workspace.create(name, path) first")

    @classmethod
    def _from_config_file(cls, file: Path) -> Workspace:
        cfg = _read_config(file)
        root = Path(cfg.get("workspace_path") or file.parent.parent)
        return cls.get(cfg["workspace_name"], root)

    def write_config(self, path: str | os.PathLike[str] | None = None,
                     file_name: str | None = None) -> Path:
        """Write ``<path>/.runyard/config.json`` that ``from_config`` resolves to this workspace."""
        folder = Path(path or ".").resolve() / settings.CONFIG_DIR_NAME
        target = folder / (file_name or settings.CONFIG_FILE_NAME)
        if folder.parent == self.path and target.name == settings.CONFIG_FILE_NAME:
            return target  # the workspace's own config
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"workspace_name": self.name,
                                      "workspace_path": str(self.path)}, indent=2))
        return target

    # -- parts -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """``<path>/.runyard``."""
        return self.path / settings.CONFIG_DIR_NAME

    @property
    def database_url(self) -> str:
        """The store's URL: config, then RUNYARD_DATABASE_URL, then the embedded SQLite."""
        url = self._config.get("database_url") or settings.database_url_from_env()
        return str(url or f"sqlite:///{self.data_dir / settings.DB_FILE_NAME}")

    @property
    def max_concurrent_runs(self) -> int:
        """How many local runs may execute at once (the rest wait in Queued)."""
        return int(self._config.get("max_concurrent_runs")
                   or settings.default_max_concurrent_runs())

    @property
    def snapshot_limits(self) -> tuple[int, int]:
        """(max bytes, max files) of a snapshot."""
        return (int(self._config.get("snapshot_max_bytes", settings.SNAPSHOT_MAX_BYTES)),
                int(self._config.get("snapshot_max_files", settings.SNAPSHOT_MAX_FILES)))

    @cached_property
    def store(self) -> WorkspaceStore:
        """The workspace store (opened on first use)."""
        from runyard.store.sqlalchemy.store import SqlWorkspaceStore  # noqa: PLC0415

        return SqlWorkspaceStore(self.database_url)

    @cached_property
    def snapshots(self) -> SnapshotStore:
        """The content-addressed snapshot store."""
        from runyard.snapshots import SnapshotStore  # noqa: PLC0415

        return SnapshotStore(self.data_dir / "snapshots")

    def run_dir(self, run_id: str) -> Path:
        """Folder of one run: working copy, spool and artifacts."""
        return self.data_dir / "runs" / run_id

    def get_target(self, name: str) -> ComputeTarget:
        """The compute target ``name`` (``local`` always exists)."""
        from runyard.compute.resource import target_class  # noqa: PLC0415

        return target_class(self, name)(self, name)

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        """Compute targets by name (``local`` first)."""
        from runyard.compute.resource import list_targets  # noqa: PLC0415

        return {t.name: t for t in list_targets(self)}

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Experiments by name."""
        from runyard.experiment import Experiment  # noqa: PLC0415

        return {e.name: Experiment(self, e.name) for e in self.store.list_experiments()}

    @property
    def environments(self) -> dict[str, Environment]:
        """Registered environments by name (latest version of each)."""
        from runyard.environments.registry import list_environments  # noqa: PLC0415

        return list_environments(self)

    def get_details(self) -> dict[str, Any]:
        """Name, folder and database of the workspace (no secrets)."""
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        return {"name": self.name, "path": str(self.path),
                "database": make_url(self.database_url).render_as_string(hide_password=True),
                "max_concurrent_runs": self.max_concurrent_runs}

    def close(self) -> None:
        """Release the database connections."""
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, path={str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
