"""``Workspace``: the folder (and database) that records every run."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard import settings
from runyard.client.local import LocalClient
from runyard.context import WorkspaceContext, open_context, read_config
from runyard.errors import (
    AlreadyExists,
    DiskFull,
    InvalidParameter,
    NotFound,
    WorkspaceError,
)
from runyard.naming import check_workspace_name

if TYPE_CHECKING:
    from runyard.client.base import WorkspaceClient
    from runyard.computetarget import ComputeTarget
    from runyard.datastore import Datastore
    from runyard.environment import Environment
    from runyard.experiment import Experiment
    from runyard.run import Run
    from runyard.snapshots import SnapshotStore
    from runyard.store.base import WorkspaceStore

_AZURE_ONLY = ("auth", "sku", "cloud")
#: Azure identity fields a workspace stores (``Workspace(subscription_id, resource_group,
#: name)``, ``ws.location``); a workspace that never got them reads ``DEFAULT_AZURE_FIELD``.
AZURE_FIELDS = ("subscription_id", "resource_group", "location")
DEFAULT_AZURE_FIELD = "local"
#: Where Azure ML v1 kept ``config.json``, in the order ``from_config`` looks at each folder.
AZURE_CONFIG_DIRS = (".azureml", "aml_config", "")


_read_config = read_config


def _holds_password(text: str) -> bool:
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    try:
        url = json.loads(text).get("database_url")
        return bool(url) and make_url(str(url)).password is not None
    except (ValueError, AttributeError, TypeError):
        return False
    except Exception:  # noqa: BLE001  (an unparsable URL: keep it private to be safe)
        return True


def _publish(target: Path, text: str, *, replace: bool) -> bool:
    """Write ``text`` to ``target`` atomically: a uniquely named temp file next to it, synced,
    then moved in place (``replace``) or linked in place only if ``target`` does not exist yet.
    Returns False when ``target`` existed (and ``replace`` is False)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # a config holding a credential (a database URL with a password) is the owner's only
        os.chmod(tmp, 0o600 if _holds_password(text) else 0o644)
        if replace:
            os.replace(tmp, target)
            return True
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError as exc:  # a file system without hard links: replace if still absent
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if target.exists():
                return False
            os.replace(tmp, target)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _os_error(exc: OSError, what: str, path: Path) -> WorkspaceError:
    """A clear error for a failed file operation of the workspace (a full disk says so)."""
    if exc.errno == errno.ENOSPC:
        return DiskFull(f"{what}: the disk holding {path} is full; free disk space there, "
                        "then run the command again", details={"file": str(path)})
    return WorkspaceError(f"{what}: {exc.strerror or exc}", details={"file": str(path)})


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
        #: What the layers below the SDK receive: store, snapshots, artifacts, settings.
        #: Opening never creates the database; only :meth:`create` does.
        self.context = WorkspaceContext(name, self.path, self._config, create_database=False)
        #: How this SDK object talks to the workspace (in-process services here).
        self.client: WorkspaceClient = LocalClient(self.context)

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
        """Create a workspace in ``path`` (Azure-only arguments are accepted and ignored).

        The only call (with ``runyard init``) that creates the database. Safe to run from many
        processes at once: the database is created and migrated under a lock, then the config
        is published atomically by the first process; with ``exist_ok=True`` every process
        ends up with that same workspace, without it the others get ``AlreadyExists``.
        ``subscription_id``, ``resource_group`` and ``location`` are stored (see
        :attr:`subscription_id`); the other Azure-only arguments are recorded by name only.
        """
        return cls._create(name, path, exist_ok, database_url, max_concurrent_runs,
                           **azure_kwargs)

    @classmethod
    def _create(cls, name: str, path: str | os.PathLike[str] = ".", exist_ok: bool = False,
                database_url: str | None = None, max_concurrent_runs: int | None = None,
                **azure_kwargs: Any) -> Workspace:
        check_workspace_name(name)
        root = Path(path).resolve()
        if root.exists() and not root.is_dir():
            raise InvalidParameter("path", f"{root} is not a directory")
        cfg_file = root / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME
        if cfg_file.exists():
            return cls._open_existing(root, cfg_file, name, exist_ok)
        if max_concurrent_runs is not None and int(max_concurrent_runs) < 1:
            raise InvalidParameter("max_concurrent_runs", "must be 1 or more")
        config: dict[str, Any] = {"workspace_name": name, "version": 1}
        if database_url:
            config["database_url"] = database_url
        if max_concurrent_runs is not None:
            config["max_concurrent_runs"] = int(max_concurrent_runs)
        for key in AZURE_FIELDS:
            value = azure_kwargs.get(key)
            if value is not None:
                if not isinstance(value, str) or not value.strip():
                    raise InvalidParameter(key, f"must be a non-empty string, got {value!r}")
                config[key] = value
        ignored = sorted(k for k in azure_kwargs if k in _AZURE_ONLY)
        if ignored:
            config["ignored_azure_arguments"] = ignored
        try:
            cfg_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, f"cannot create the workspace folder in {root}",
                            cfg_file.parent) from exc
        # The database first (created and migrated under its lock), then the config, published
        # only if no other process published one meanwhile: a config on disk always names a
        # database that exists, and concurrent creators all end up with the same workspace.
        ws = cls._make(name, root, config)
        try:
            ws.context.create_store()
            try:
                published = _publish(cfg_file, json.dumps(config, indent=2), replace=False)
            except OSError as exc:
                raise _os_error(exc, f"cannot write the workspace config {cfg_file}",
                                cfg_file) from exc
        except BaseException:
            ws.close()
            raise
        if published:
            return ws
        ws.close()  # another process created the workspace first: open (or refuse) that one
        return cls._open_existing(root, cfg_file, name, exist_ok)

    @classmethod
    def _open_existing(cls, root: Path, cfg_file: Path, name: str, exist_ok: bool) -> Workspace:
        existing = _read_config(cfg_file)
        if not exist_ok:
            raise AlreadyExists(
                f"a workspace ({existing['workspace_name']!r}) already exists in {root}; "
                "pass exist_ok=True to open it")
        if existing["workspace_name"] != name:
            raise AlreadyExists(f"{root} holds workspace {existing['workspace_name']!r}, "
                                f"not {name!r}")
        ws = cls._open(root)
        _ = ws.store  # fail now (a deleted database) rather than on first use
        return ws

    @classmethod
    def _open(cls, root: str | os.PathLike[str]) -> Workspace:
        ctx = open_context(root)
        return cls._make(ctx.name, ctx.path, ctx.config)

    @classmethod
    def get(cls, name: str, path: str | os.PathLike[str] = ".", **azure_kwargs: Any) -> Workspace:
        """Open the workspace ``name`` stored in ``path``.

        Never creates the database: a missing one is a ``DatabaseMissing`` naming the file.
        """
        return cls._get_in(name, path)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None,
                    **azure_kwargs: Any) -> Workspace:
        """Find the workspace's config from ``path`` (default: cwd) upwards and open it.

        In each folder, from ``path`` up to ``/``: runyard's own ``.runyard/config.json``
        first, then Azure ML v1's ``config.json`` in ``.azureml/``, ``aml_config/`` and the
        folder itself (keys ``subscription_id``, ``resource_group``, ``workspace_name``). An
        Azure config maps to the runyard workspace in the folder that holds ``.azureml/``
        (``aml_config/``, or the file): opened if it exists, else created there on first use
        (said once on stderr) with the config's subscription id and resource group stored.
        ``path`` may also name a config file. Never creates the database of a workspace
        that exists (like :meth:`get`).
        """
        start = Path(path or ".").resolve()
        if start.is_file():
            if start.parent.name == settings.CONFIG_DIR_NAME:
                return cls._from_config_file(start)
            found = cls._from_azure_config(start, required=True)
            assert found is not None
            return found
        for folder in (start, *start.parents):
            f = folder / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME
            if f.is_file():
                return cls._from_config_file(f)
            for sub in AZURE_CONFIG_DIRS:
                az = folder / sub / "config.json" if sub else folder / "config.json"
                if az.is_file():
                    ws = cls._from_azure_config(az, required=bool(sub))
                    if ws is not None:
                        return ws
        raise NotFound(
            f"no {settings.CONFIG_DIR_NAME}/{settings.CONFIG_FILE_NAME} (nor an Azure ML "
            f"config.json in .azureml/, aml_config/ or the folder) found in {start} or its "
            "parents; run `runyard init` or Workspace.create(name, path) first")

    @classmethod
    def _from_config_file(cls, file: Path) -> Workspace:
        cfg = _read_config(file)
        root = Path(cfg.get("workspace_path") or file.parent.parent)
        return cls._get_in(cfg["workspace_name"], root)

    @classmethod
    def _get_in(cls, name: str, root: str | os.PathLike[str]) -> Workspace:
        ws = cls._open(root)
        if ws.name != name:
            ws.close()
            raise NotFound(f"the workspace in {ws.path} is {ws.name!r}, not {name!r}")
        return ws

    @classmethod
    def _from_azure_config(cls, file: Path, *, required: bool) -> Workspace | None:
        """The runyard workspace an Azure ML ``config.json`` maps to (created on first use).

        A ``config.json`` directly in a folder (not in ``.azureml/`` or ``aml_config/``) that
        has none of the Azure keys is someone else's file: None (keep looking)."""
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            if not required:
                return None
            raise InvalidParameter("config.json", f"{file} is not a readable JSON object "
                                   f"({exc}); fix it or delete it") from exc
        keys = ("subscription_id", "resource_group", "workspace_name")
        if not isinstance(data, dict) or not any(k in data for k in keys):
            if not required:
                return None
            raise InvalidParameter("workspace_name", f"{file} is not an Azure ML config "
                                   "(no subscription_id, resource_group or workspace_name); "
                                   'write {"workspace_name": "<name>"} in it')
        name = data.get("workspace_name")
        if not isinstance(name, str) or not name:
            raise InvalidParameter("workspace_name", f"the Azure ML config {file} has no "
                                   "'workspace_name'; add the workspace's name to it")
        base = file.parent.parent if file.parent.name in AZURE_CONFIG_DIRS else file.parent
        azure = {k: data[k] for k in AZURE_FIELDS
                 if isinstance(data.get(k), str) and data[k]}
        if (base / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME).is_file():
            ws = cls._get_in(name, base)
        else:
            ws = cls._create(name, base, exist_ok=True, **azure)
            print(f"runyard: created workspace {name!r} at {ws.path} for Azure config {file}",
                  file=sys.stderr, flush=True)
        ws._check_azure_identity(azure, where=str(file))
        return ws

    def _check_azure_identity(self, given: dict[str, Any], where: str) -> None:
        """Refuse a subscription id / resource group that differs from the stored one (a
        workspace that never stored one accepts any)."""
        for key in ("subscription_id", "resource_group"):
            value, stored = given.get(key), self._config.get(key)
            if value is not None and stored is not None and value != stored:
                self.close()
                raise NotFound(f"workspace {self.name!r} in {self.path} has {key} "
                               f"{stored!r}, but {where} asks for {value!r}")

    def write_config(self, path: str | os.PathLike[str] | None = None,
                     file_name: str | None = None) -> Path:
        """Write ``<path>/.runyard/config.json`` that ``from_config`` resolves to this workspace."""
        folder = Path(path or ".").resolve() / settings.CONFIG_DIR_NAME
        target = folder / (file_name or settings.CONFIG_FILE_NAME)
        if folder.parent == self.path and target.name == settings.CONFIG_FILE_NAME:
            return target  # the workspace's own config
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _publish(target, json.dumps({"workspace_name": self.name,
                                         "workspace_path": str(self.path)}, indent=2),
                     replace=True)
        except OSError as exc:
            raise _os_error(exc, f"cannot write {target}", target) from exc
        return target

    # -- parts -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """``<path>/.runyard``."""
        return self.context.data_dir

    @property
    def database_url(self) -> str:
        """The store's URL: config, then RUNYARD_DATABASE_URL, then the embedded SQLite."""
        return self.context.database_url

    @property
    def max_concurrent_runs(self) -> int:
        """How many local runs may execute at once (the rest wait in Queued)."""
        return self.context.max_concurrent_runs

    @property
    def snapshot_limits(self) -> tuple[int, int]:
        """(max bytes, max files) of a snapshot."""
        return self.context.snapshot_limits

    @property
    def store(self) -> WorkspaceStore:
        """The workspace store (embedded workspaces; low-level access)."""
        return self.context.store

    @property
    def snapshots(self) -> SnapshotStore:
        """The content-addressed snapshot store (embedded workspaces)."""
        return self.context.snapshots

    def run_dir(self, run_id: str) -> Path:
        """Folder of one run: working copy, spool and artifacts."""
        return self.context.run_dir(run_id)

    def get_target(self, name: str) -> ComputeTarget:
        """The compute target ``name`` (``local`` always exists)."""
        from runyard.computetarget import ComputeTarget  # noqa: PLC0415

        return ComputeTarget(self, name)

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        """Compute targets by name (``local`` first)."""
        from runyard.computetarget import ComputeTarget  # noqa: PLC0415

        return {t.name: t for t in ComputeTarget.list(self)}

    @property
    def datastores(self) -> dict[str, Datastore]:
        """Registered datastores by name (``workspaceblobstore`` included)."""
        from runyard.datastore import Datastore  # noqa: PLC0415

        return {r.name: Datastore._from_record(self, r) for r in self.client.list_datastores()}

    @property
    def datasets(self) -> dict[str, Any]:
        """The latest version of every registered dataset, by name."""
        from runyard.dataset import Dataset  # noqa: PLC0415

        return Dataset.get_all(self)

    def get_default_datastore(self) -> Datastore:
        """The default datastore (``workspaceblobstore`` unless another was made default)."""
        from runyard.datastore import Datastore  # noqa: PLC0415

        return Datastore(self)

    def set_default_datastore(self, name: str) -> None:
        """Make the datastore ``name`` the default."""
        self.client.set_default_datastore(name)

    def _experiment(self, name: str) -> Experiment:
        from runyard.experiment import Experiment  # noqa: PLC0415

        return Experiment(self, name)

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Experiments by name."""
        from runyard.experiment import Experiment  # noqa: PLC0415

        return {e.name: Experiment(self, e.name) for e in self.client.list_experiments()}

    @property
    def environments(self) -> dict[str, Environment]:
        """Registered environments by name (latest version of each)."""
        from runyard.environment import Environment  # noqa: PLC0415

        return Environment.list(self)

    @property
    def subscription_id(self) -> str:
        """The Azure subscription id stored with the workspace (``"local"`` when none)."""
        return str(self._config.get("subscription_id") or DEFAULT_AZURE_FIELD)

    @property
    def resource_group(self) -> str:
        """The Azure resource group stored with the workspace (``"local"`` when none)."""
        return str(self._config.get("resource_group") or DEFAULT_AZURE_FIELD)

    @property
    def location(self) -> str:
        """The Azure region stored with the workspace (``"local"`` when none)."""
        return str(self._config.get("location") or DEFAULT_AZURE_FIELD)

    def get_details(self) -> dict[str, Any]:
        """The workspace in Azure ML v1's keys (``id``, ``name``, ``location``, ``type``,
        ``workspaceid``, ``subscriptionId``, ``resourceGroup``, ``friendlyName``, ``sku``,
        ``tags``) plus runyard's (``path``, ``database`` without password,
        ``max_concurrent_runs``). No secrets."""
        import hashlib  # noqa: PLC0415

        from sqlalchemy.engine import make_url  # noqa: PLC0415

        arm_id = (f"/subscriptions/{self.subscription_id}/resourceGroups/"
                  f"{self.resource_group}/providers/Microsoft.MachineLearningServices/"
                  f"workspaces/{self.name}")
        return {"id": arm_id, "name": self.name, "location": self.location,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "workspaceid": hashlib.sha256(str(self.path).encode()).hexdigest()[:32],
                "subscriptionId": self.subscription_id, "resourceGroup": self.resource_group,
                "friendlyName": self.name, "description": "", "sku": "basic", "tags": {},
                "path": str(self.path),
                "database": make_url(self.database_url).render_as_string(hide_password=True),
                "max_concurrent_runs": self.max_concurrent_runs}

    def get_run(self, run_id: str) -> Run:
        """The run ``run_id`` of any experiment of this workspace (``NotFound`` if none)."""
        from runyard.run import Run  # noqa: PLC0415

        return Run.get(self, run_id)

    def close(self) -> None:
        """Release the database connections."""
        self.client.close()

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, path={str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
