"""Datastores as workspace resources: register, get, list, set default, unregister, open.

Every workspace has ``workspaceblobstore``, a runyard-managed folder under the workspace data
dir (``<data dir>/datastores/workspaceblobstore``): recorded on first use (any call here), the
default unless another datastore was made default. Credentials (an account key or SAS token)
are encrypted into the secret box under the scope ``datastore/<name>``; the ``config`` column
holds only non-secret settings. A registration is checked (folder exists, credentials and
container accepted by the storage service) before anything is stored.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.datastores import KINDS
from runyard.datastores.base import DatastoreBackend
from runyard.errors import AlreadyExists, InvalidParameter, NotFound
from runyard.store.base import DatastoreRecord

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext
    from runyard.secrets import Secret

__all__ = ["WORKSPACE_DATASTORE", "check_datastore_name", "get_datastore", "get_default",
           "list_datastores", "open_datastore", "register_blob", "register_local",
           "set_default", "unregister"]

WORKSPACE_DATASTORE = "workspaceblobstore"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_SECRET_NAMES = ("account_key", "sas_token")


def check_datastore_name(name: object) -> str:
    """``name`` when it is a valid datastore name, else :class:`InvalidParameter`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter("datastore_name", f"{name!r} is not a valid datastore name: use "
                               "letters, digits, '_' and '-', starting with a letter or digit, "
                               "at most 255 characters")
    return name


def workspace_folder(ctx: WorkspaceContext) -> Path:
    """The folder of the managed ``workspaceblobstore``."""
    return ctx.data_dir / "datastores" / WORKSPACE_DATASTORE


def _ensure_workspace_store(ctx: WorkspaceContext) -> None:
    if ctx.store.get_datastore(WORKSPACE_DATASTORE) is not None:
        return
    workspace_folder(ctx).mkdir(parents=True, exist_ok=True)
    now = time.time()
    is_default = not any(r.is_default for r in ctx.store.list_datastores())
    with contextlib.suppress(AlreadyExists):  # another process recorded it first
        ctx.store.create_datastore(DatastoreRecord(
            WORKSPACE_DATASTORE, "workspace", {}, is_default, now, now))


def _store(ctx: WorkspaceContext, rec: DatastoreRecord, secrets: dict[str, Secret],
           overwrite: bool) -> DatastoreRecord:
    _ensure_workspace_store(ctx)
    existing = ctx.store.get_datastore(rec.name)
    if existing is not None and not overwrite:
        raise AlreadyExists(f"a datastore named {rec.name!r} already exists in this workspace; "
                            "choose another name, pass overwrite=True, or unregister it first")
    if existing is not None and existing.kind == "workspace":
        raise InvalidParameter("datastore_name", f"{rec.name!r} is the workspace's managed "
                               "datastore and cannot be replaced; choose another name")
    enc = {k: ctx.secrets.encrypt(v) for k, v in secrets.items()}
    ctx.store.create_datastore(rec, enc or None, replace=overwrite)
    got = ctx.store.get_datastore(rec.name)
    assert got is not None
    return got


def register_local(ctx: WorkspaceContext, name: str, path: str, *,
                   overwrite: bool = False) -> DatastoreRecord:
    """Register a folder on this machine as datastore ``name``."""
    from runyard.datastores.folder import check_folder  # noqa: PLC0415

    check_datastore_name(name)
    root = check_folder(path)
    now = time.time()
    return _store(ctx, DatastoreRecord(name, "local", {"path": str(root)}, False, now, now),
                  {}, overwrite)


def register_blob(ctx: WorkspaceContext, name: str, *, container_name: str, account_name: str,
                  account_key: Secret | None = None, sas_token: Secret | None = None,
                  protocol: str | None = None, endpoint: str | None = None,
                  overwrite: bool = False, create_if_not_exists: bool = False,
                  skip_validation: bool = False) -> DatastoreRecord:
    """Register an Azure Blob container (credentials checked unless ``skip_validation``)."""
    from runyard.datastores.blob import account_url, validate  # noqa: PLC0415

    check_datastore_name(name)
    for fld, value in (("container_name", container_name), ("account_name", account_name)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameter(fld, "must be a non-empty string")
    if protocol not in (None, "http", "https"):
        raise InvalidParameter("protocol", f"must be 'https' or 'http', got {protocol!r}")
    if account_key is None and sas_token is None:
        raise InvalidParameter("account_key", "give account_key or sas_token (runyard reads and "
                               "writes the container itself, so it needs one of them)")
    if ctx.store.get_datastore(name) is not None and not overwrite:
        raise AlreadyExists(f"a datastore named {name!r} already exists in this workspace; "
                            "choose another name, pass overwrite=True, or unregister it first")
    url = account_url(account_name, protocol, endpoint)
    if not skip_validation:
        validate(account_name=account_name, container_name=container_name, url=url,
                 account_key=account_key, sas_token=sas_token,
                 create_if_not_exists=create_if_not_exists)
    config: dict[str, Any] = {"container_name": container_name, "account_name": account_name,
                              "protocol": url.split("://", 1)[0], "endpoint": endpoint
                              or "core.windows.net", "account_url": url}
    secrets: dict[str, Secret] = {}
    if account_key is not None:
        secrets["account_key"] = account_key
    if sas_token is not None:
        secrets["sas_token"] = sas_token
    now = time.time()
    return _store(ctx, DatastoreRecord(name, "azure_blob", config, False, now, now), secrets,
                  overwrite)


def get_datastore(ctx: WorkspaceContext, name: str) -> DatastoreRecord:
    """The datastore ``name`` or :class:`NotFound`."""
    _ensure_workspace_store(ctx)
    rec = ctx.store.get_datastore(name)
    if rec is None:
        names = ", ".join(r.name for r in ctx.store.list_datastores())
        raise NotFound(f"datastore {name!r} is not registered in this workspace (registered: "
                       f"{names})")
    return rec


def list_datastores(ctx: WorkspaceContext) -> list[DatastoreRecord]:
    """Every datastore, by name (``workspaceblobstore`` included)."""
    _ensure_workspace_store(ctx)
    return ctx.store.list_datastores()


def get_default(ctx: WorkspaceContext) -> DatastoreRecord:
    """The default datastore (``workspaceblobstore`` unless another was made default)."""
    recs = list_datastores(ctx)
    for r in recs:
        if r.is_default:
            return r
    ctx.store.set_default_datastore(WORKSPACE_DATASTORE)
    return get_datastore(ctx, WORKSPACE_DATASTORE)


def set_default(ctx: WorkspaceContext, name: str) -> DatastoreRecord:
    """Make ``name`` the one default datastore."""
    get_datastore(ctx, name)
    ctx.store.set_default_datastore(name)
    return get_datastore(ctx, name)


def unregister(ctx: WorkspaceContext, name: str) -> None:
    """Forget a datastore and its credentials (its data is left where it is).

    The managed ``workspaceblobstore`` and the current default cannot be unregistered.
    """
    rec = get_datastore(ctx, name)
    if rec.kind == "workspace":
        raise InvalidParameter("datastore_name", f"{name!r} is the workspace's managed datastore "
                               "and cannot be unregistered")
    if rec.is_default:
        raise InvalidParameter("datastore_name", f"{name!r} is the default datastore; make "
                               "another one the default first (set_default_datastore)")
    ctx.store.delete_datastore(name)


def open_datastore(ctx: WorkspaceContext, name: str) -> DatastoreBackend:
    """The storage of datastore ``name``, ready for upload and download (with a stat cache of
    upload sources in ``<data dir>/cache/datastore-hashes``)."""
    backend = _open(ctx, name)
    backend.hash_cache_dir = ctx.data_dir / "cache" / "datastore-hashes"
    return backend


def _open(ctx: WorkspaceContext, name: str) -> DatastoreBackend:
    rec = get_datastore(ctx, name)
    if rec.kind == "workspace":
        from runyard.datastores.folder import FolderBackend  # noqa: PLC0415

        folder = workspace_folder(ctx)
        folder.mkdir(parents=True, exist_ok=True)
        return FolderBackend(name, folder)
    if rec.kind == "local":
        from runyard.datastores.folder import FolderBackend, check_folder  # noqa: PLC0415

        return FolderBackend(name, check_folder(rec.config["path"]))
    if rec.kind == "azure_blob":
        from runyard.datastores.blob import BlobBackend  # noqa: PLC0415

        secrets = {k: ctx.secrets.decrypt(v) for k, v in
                   ctx.store.get_secrets(f"datastore/{name}").items() if k in _SECRET_NAMES}
        return BlobBackend(name, account_name=rec.config["account_name"],
                           container_name=rec.config["container_name"],
                           url=rec.config["account_url"],
                           account_key=secrets.get("account_key"),
                           sas_token=secrets.get("sas_token"))
    raise NotFound(f"datastore {name!r} has kind {rec.kind!r}, unknown to this runyard "
                   f"(known: {', '.join(KINDS)})")
