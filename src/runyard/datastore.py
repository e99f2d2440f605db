"""``Datastore``: where a workspace keeps data, after Azure ML v1's ``azureml.core.Datastore``.

Kinds: the runyard-managed ``workspaceblobstore`` (a folder in the workspace, the default),
local folders (``register_local_folder``, a runyard extension) and Azure Blob containers
(``register_azure_blob_container``, needs ``pip install 'runyard[blob]'``). Credentials are kept
encrypted in the workspace's secret store and never shown: unlike v1, a datastore object has no
``account_key`` / ``sas_token`` attribute.

``upload`` / ``upload_files`` skip files already there with the same size and sha256; a file
there with other content is kept unless ``overwrite=True`` (as in v1). ``download`` does the
same in the other direction and returns the number of files it fetched (as v1).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.datastores import KINDS
from runyard.errors import InvalidParameter

if TYPE_CHECKING:
    from runyard.datastores.base import TransferReport
    from runyard.sdktypes import WorkspaceLike as Workspace
    from runyard.store.base import DatastoreRecord

__all__ = ["DataReference", "Datastore"]

_REF_NAME = re.compile(r"[A-Za-z0-9_]{1,128}")


class DataReference:
    """A path on a datastore (what v1's ``upload`` and ``path()`` return).

    ``str(ref)`` is ``$AZUREML_DATAREFERENCE_<data_reference_name>`` as in v1. After an upload,
    :attr:`report` says which files were sent, unchanged or kept (a runyard extension).
    """

    def __init__(self, datastore: Datastore, path_on_datastore: str | None = None,
                 data_reference_name: str | None = None, mode: str = "mount",
                 path_on_compute: str | None = None) -> None:
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.data_reference_name = data_reference_name or (
            uuid.uuid4().hex if path_on_datastore else datastore.name)
        self.mode = mode
        self.path_on_compute = path_on_compute
        #: The transfer that made this reference (upload only).
        self.report: TransferReport | None = None

    def as_mount(self) -> DataReference:
        """This path, mounted on the target (mode ``mount``)."""
        return DataReference(self.datastore, self.path_on_datastore, self.data_reference_name,
                             "mount")

    def as_download(self, path_on_compute: str | None = None) -> DataReference:
        """This path, downloaded to the target (mode ``download``)."""
        return DataReference(self.datastore, self.path_on_datastore, self.data_reference_name,
                             "download", path_on_compute)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """Copies of a run configuration share this object (it holds the workspace and the
        dataset's file list; it is never changed in place)."""
        return self

    def __str__(self) -> str:
        return f"$AZUREML_DATAREFERENCE_{self.data_reference_name}"

    def _run_binding(self) -> dict[str, Any]:
        """What a run needs of this reference as an input: the files under its path, with
        their sizes and sha256 (resolved now)."""
        name = self.data_reference_name
        if not isinstance(name, str) or not _REF_NAME.fullmatch(name):
            raise InvalidParameter("data_reference_name", f"{name!r} cannot name a run input: "
                                   "use letters, digits and '_' (at most 128)")
        if self.mode not in ("mount", "download"):
            raise InvalidParameter("mode", f"data reference {name!r}: mode {self.mode!r} is "
                                   "not supported as a run input; use mount or download "
                                   "(for data a run writes, use OutputFileDatasetConfig)")
        path = self.path_on_datastore or ""
        files = self.datastore.workspace.client.resolve_dataset_files([(self.datastore.name,
                                                                       path)])
        return {"role": "input", "name": name, "token": str(self), "kind": "reference",
                "mode": self.mode, "path_on_compute": self.path_on_compute,
                "dataset": {"id": None, "name": None, "version": None},
                "options": {}, "ops": [], "base": path,
                "files": [[f.datastore, f.path, f.size, f.sha256] for f in files],
                "chosen": [[f.datastore, f.path] for f in files]}


    def __repr__(self) -> str:
        return (f"DataReference(datastore={self.datastore.name!r}, "
                f"path_on_datastore={self.path_on_datastore!r}, mode={self.mode!r})")


class Datastore:
    """A registered datastore of a workspace (``Datastore(ws, name=None)``: None = default)."""

    def __init__(self, workspace: Workspace, name: str | None = None) -> None:
        rec = workspace.client.get_datastore(name)
        self._set(workspace, rec)

    def _set(self, workspace: Workspace, rec: DatastoreRecord) -> None:
        self.workspace = workspace
        #: The datastore's name.
        self.name = rec.name
        #: ``workspace``, ``local`` or ``azure_blob``.
        self.kind = rec.kind
        #: ``AzureBlob``, ``LocalFolder`` or ``WorkspaceFolder``.
        self.datastore_type = KINDS.get(rec.kind, rec.kind)
        self._config = dict(rec.config)
        self.is_default = rec.is_default

    @classmethod
    def _from_record(cls, workspace: Workspace, rec: DatastoreRecord) -> Datastore:
        ds = cls.__new__(cls)
        ds._set(workspace, rec)
        return ds

    # -- v1 attributes -----------------------------------------------------------------------
    @property
    def container_name(self) -> str | None:
        """The blob container (Azure Blob datastores)."""
        return self._config.get("container_name")

    @property
    def account_name(self) -> str | None:
        """The storage account (Azure Blob datastores)."""
        return self._config.get("account_name")

    @property
    def protocol(self) -> str | None:
        """``https`` or ``http`` (Azure Blob datastores)."""
        return self._config.get("protocol")

    @property
    def endpoint(self) -> str | None:
        """The endpoint suffix or URL (Azure Blob datastores)."""
        return self._config.get("endpoint")

    @property
    def path_on_disk(self) -> str | None:
        """The folder of a local-folder datastore (a runyard extension)."""
        return self._config.get("path")

    def to_dict(self) -> dict[str, Any]:
        """Name, type and non-secret settings (never a credential)."""
        return {"name": self.name, "datastore_type": self.datastore_type,
                "is_default": self.is_default, **self._config}

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r}, datastore_type={self.datastore_type!r})"

    # -- registration ------------------------------------------------------------------------
    @classmethod
    def get(cls, workspace: Workspace, datastore_name: str) -> Datastore:
        """The datastore ``datastore_name`` (``NotFound`` when it is not registered)."""
        return cls(workspace, datastore_name)

    @classmethod
    def get_default(cls, workspace: Workspace) -> Datastore:
        """The workspace's default datastore."""
        return cls(workspace)

    @classmethod
    def register_local_folder(cls, workspace: Workspace, datastore_name: str,
                              path: str | os.PathLike[str], overwrite: bool = False) -> Datastore:
        """Register a folder readable by the workspace as a datastore (a runyard extension)."""
        rec = workspace.client.register_datastore("local", datastore_name,
                                                  {"path": os.fspath(path)},
                                                  overwrite=overwrite)
        return cls._from_record(workspace, rec)

    @classmethod
    def register_azure_blob_container(
            cls, workspace: Workspace, datastore_name: str, container_name: str,
            account_name: str, sas_token: str | None = None, account_key: str | None = None,
            protocol: str | None = None, endpoint: str | None = None, overwrite: bool = False,
            create_if_not_exists: bool = False, skip_validation: bool = False,
            blob_cache_timeout: int | None = None, grant_workspace_access: bool = False,
            subscription_id: str | None = None, resource_group: str | None = None,
            ) -> Datastore:
        """Register an Azure Blob container (v1 signature).

        The credentials and the container are checked against the storage service before
        anything is stored (``skip_validation=True`` skips that). ``endpoint`` is the DNS
        suffix (default ``core.windows.net``) or, a runyard extension, a full account URL such
        as an emulator's ``http://127.0.0.1:10000/devstoreaccount1``. ``blob_cache_timeout``,
        ``grant_workspace_access``, ``subscription_id`` and ``resource_group`` are accepted and
        ignored.
        """
        from runyard.secrets import Secret  # noqa: PLC0415

        opts: dict[str, Any] = {
            "container_name": container_name, "account_name": account_name,
            "account_key": Secret(account_key) if account_key else None,
            "sas_token": Secret(sas_token) if sas_token else None, "protocol": protocol,
            "endpoint": endpoint, "create_if_not_exists": create_if_not_exists,
            "skip_validation": skip_validation}
        rec = workspace.client.register_datastore("azure_blob", datastore_name, opts,
                                                  overwrite=overwrite)
        return cls._from_record(workspace, rec)

    def set_as_default(self) -> None:
        """Make this the workspace's default datastore."""
        self.workspace.client.set_default_datastore(self.name)
        self.is_default = True

    def unregister(self) -> None:
        """Forget this datastore and its credentials (the data stays where it is)."""
        self.workspace.client.unregister_datastore(self.name)

    # -- data --------------------------------------------------------------------------------
    def path(self, path: str | None = None, data_reference_name: str | None = None
             ) -> DataReference:
        """A reference to ``path`` on this datastore."""
        from runyard.datastores.base import clean_relpath  # noqa: PLC0415

        return DataReference(self, clean_relpath(path, "path") if path else None,
                             data_reference_name)

    def as_mount(self) -> DataReference:
        """The whole datastore, mounted on the target."""
        return DataReference(self).as_mount()

    def as_download(self, path_on_compute: str | None = None) -> DataReference:
        """The whole datastore, downloaded to the target."""
        return DataReference(self).as_download(path_on_compute)

    def upload(self, src_dir: str | os.PathLike[str], target_path: str | None = None,
               overwrite: bool = False, show_progress: bool = True) -> DataReference:
        """Upload every file under ``src_dir`` to ``target_path`` (None: the root).

        Returns a :class:`DataReference` to ``target_path``; its ``report`` lists what was sent.
        """
        from runyard.datastores.base import clean_relpath, source_files  # noqa: PLC0415

        src = Path(src_dir)
        if not src.is_dir():
            raise InvalidParameter("src_dir", f"{src} is not an existing folder")
        target = clean_relpath(target_path, "target_path")
        files = source_files(src)
        backend = self.workspace.client.open_datastore(self.name)
        report = backend.upload(files, target, overwrite=overwrite, show_progress=show_progress,
                                source_root=src)
        ref = DataReference(self, target or None)
        ref.report = report
        return ref

    def upload_files(self, files: list[str | os.PathLike[str]],
                     relative_root: str | os.PathLike[str] | None = None,
                     target_path: str | None = None, overwrite: bool = False,
                     show_progress: bool = True) -> DataReference:
        """Upload ``files``, named relative to ``relative_root`` (default: their common
        folder), under ``target_path``."""
        from runyard.datastores.base import clean_relpath  # noqa: PLC0415

        if not files:
            raise InvalidParameter("files", "give at least one file")
        paths = [Path(f).resolve() for f in files]
        for p in paths:
            if not p.is_file():
                raise InvalidParameter("files", f"{p} is not an existing file")
        root = Path(relative_root).resolve() if relative_root is not None else Path(
            os.path.commonpath([str(p.parent) for p in paths]))
        pairs = []
        for p in paths:
            if not p.is_relative_to(root):
                raise InvalidParameter("relative_root", f"{p} is not under {root}; give a "
                                       "relative_root that holds every file")
            pairs.append((p, p.relative_to(root).as_posix()))
        target = clean_relpath(target_path, "target_path")
        backend = self.workspace.client.open_datastore(self.name)
        report = backend.upload(pairs, target, overwrite=overwrite, show_progress=show_progress,
                                source_root=root)
        ref = DataReference(self, target or None)
        ref.report = report
        return ref

    def download(self, target_path: str | os.PathLike[str], prefix: str | None = None,
                 overwrite: bool = False, show_progress: bool = True) -> int:
        """Download the files under ``prefix`` (None: all) into ``target_path``; returns how
        many files were fetched (unchanged files are not fetched again)."""
        target = Path(target_path)
        target.mkdir(parents=True, exist_ok=True)
        backend = self.workspace.client.open_datastore(self.name)
        report = backend.download(target, prefix, overwrite=overwrite,
                                  show_progress=show_progress)
        return len(report.transferred)
