"""``Model``: the workspace's model registry, with Azure ML v1's API (``azureml.core.Model``).

Each registration of a name is a new version (1, 2, ...); ``id`` is ``<name>:<version>``.
Files are stored content-addressed in the workspace (the same bytes are kept once). Tags are
mutable, properties can only be added.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from runyard.errors import InvalidParameter, NotFound
from runyard.sdktypes import kv_filter

if TYPE_CHECKING:
    from runyard.client.base import WorkspaceClient
    from runyard.store.model_record import ModelRecord


def _default_client() -> WorkspaceClient:
    """The workspace found from the current folder upwards (a local run's working copy lies
    inside its workspace)."""
    from runyard import settings  # noqa: PLC0415
    from runyard.client.local import LocalClient  # noqa: PLC0415
    from runyard.context import open_context, read_config  # noqa: PLC0415

    start = Path.cwd()
    for folder in (start, *start.parents):
        cfg = folder / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME
        if cfg.is_file():
            root = read_config(cfg).get("workspace_path") or folder
            return LocalClient(open_context(root))
    raise NotFound(f"no runyard workspace found from {start} upwards; pass _workspace=ws")


def _filter(value: Any, field: str) -> dict[str, str | None] | None:
    """v1's model filter ``["key", ["key2", "value"]]``, or a key, or a dict."""
    if isinstance(value, list | tuple):
        out: dict[str, str | None] = {}
        for item in value:
            if isinstance(item, str):
                out[item] = None
            elif isinstance(item, list | tuple) and len(item) == 2:
                out[str(item[0])] = str(item[1])
            else:
                raise InvalidParameter(field, f"{item!r}: give keys or [key, value] pairs, "
                                       'e.g. ["stage", ["area", "vision"]]')
        return out
    return kv_filter(value, field)


class Model:
    """A registered model version (v1: ``azureml.core.Model``)."""

    #: Where :meth:`get_model_path` downloads to (the compat layer uses ``azureml-models``).
    MODELS_DIR: ClassVar[str] = "runyard-models"

    def __init__(self, workspace: Any, name: str | None = None, id: str | None = None,  # noqa: A002
                 version: int | None = None, **_kwargs: Any) -> None:
        if id is not None:
            name, _, v = id.partition(":")
            version = int(v) if v else version
        if name is None:
            raise InvalidParameter("name", "give the model's name (or id='name:version')")
        self._init(workspace, workspace.client.get_model(name, version))

    def _init(self, workspace: Any, record: ModelRecord) -> None:
        self.workspace = workspace
        self._record = record

    @classmethod
    def _from_record(cls, workspace: Any, record: ModelRecord) -> Model:
        model = cls.__new__(cls)
        model._init(workspace, record)
        return model

    # -- attributes -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The model's name."""
        return self._record.name

    @property
    def version(self) -> int:
        """This version's number."""
        return self._record.version

    @property
    def id(self) -> str:
        """``<name>:<version>``."""
        return self._record.id

    @property
    def tags(self) -> dict[str, str]:
        """Mutable tags."""
        return dict(self._record.tags)

    @property
    def properties(self) -> dict[str, str]:
        """Immutable properties (new keys may be added)."""
        return dict(self._record.properties)

    @property
    def description(self) -> str | None:
        """The description given at registration."""
        return self._record.description

    @property
    def run_id(self) -> str | None:
        """The run that made the model (``run.register_model``), else None."""
        return self._record.run_id

    @property
    def experiment_name(self) -> str | None:
        """The experiment of :attr:`run_id`."""
        return self._record.experiment

    @property
    def created_time(self) -> datetime:
        """When this version was registered (UTC)."""
        return datetime.fromtimestamp(self._record.created_at, tz=timezone.utc)

    @property
    def model_framework(self) -> str | None:
        """The framework given at registration (``model_framework``)."""
        return self._record.framework

    framework = model_framework

    @property
    def model_framework_version(self) -> str | None:
        """The framework version given at registration."""
        return self._record.framework_version

    @property
    def datasets(self) -> dict[str, list[str]]:
        """Datasets by scenario (``{"training": [id, ...]}``)."""
        out: dict[str, list[str]] = {}
        for d in self._record.datasets:
            out.setdefault(d["scenario"], []).append(d["id"])
        return out

    @property
    def size(self) -> int:
        """Total bytes of the model's files."""
        return self._record.total_size

    def serialize(self) -> dict[str, Any]:
        """The model as a JSON-ready dict (v1's keys)."""
        r = self._record
        return {"id": r.id, "name": r.name, "version": r.version, "description": r.description,
                "tags": dict(r.tags), "properties": dict(r.properties),
                "createdTime": self.created_time.isoformat(), "runId": r.run_id,
                "experimentName": r.experiment, "framework": r.framework,
                "frameworkVersion": r.framework_version, "datasets": list(r.datasets),
                "root": r.root, "sizeBytes": r.total_size,
                "files": [f.to_json() for f in r.files]}

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version}, id={self.id!r})"

    # -- registration -----------------------------------------------------------------------
    @classmethod
    def register(cls, workspace: Any, model_path: str | os.PathLike[str], model_name: str,
                 tags: Mapping[str, Any] | None = None,
                 properties: Mapping[str, Any] | None = None, description: str | None = None,
                 datasets: Any = None, model_framework: str | None = None,
                 model_framework_version: str | None = None,
                 child_paths: list[str] | None = None, **_kwargs: Any) -> Model:
        """Register a local file or folder as the next version of ``model_name``."""
        print(f"Registering model {model_name}")
        rec = workspace.client.register_model(
            Path(os.fspath(model_path)), model_name, tags=tags, properties=properties,
            description=description, datasets=datasets, model_framework=model_framework,
            model_framework_version=model_framework_version, child_paths=child_paths)
        return cls._from_record(workspace, rec)

    @classmethod
    def list(cls, workspace: Any, name: str | None = None, tags: Any = None,
             properties: Any = None, run_id: str | None = None, latest: bool = False,
             **_kwargs: Any) -> list[Model]:
        """Registered versions; ``tags``/``properties`` as v1 (``["k", ["k2", "v"]]`` or a
        dict); ``latest``: only the newest version of each name."""
        recs = workspace.client.list_models(
            name, tags=_filter(tags, "tags"), properties=_filter(properties, "properties"),
            run_id=run_id, latest=latest)
        return [cls._from_record(workspace, r) for r in recs]

    # -- files --------------------------------------------------------------------------------
    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False,
                 **_kwargs: Any) -> str:
        """Write the model's file or folder into ``target_dir``; returns its path. Refuses to
        overwrite unless ``exist_ok``."""
        return str(self.workspace.client.download_model(
            self.name, self.version, Path(os.fspath(target_dir)), exist_ok=exist_ok))

    @classmethod
    def get_model_path(cls, model_name: str, version: int | None = None,
                       _workspace: Any = None) -> str:
        """The local path of a registered model, downloaded (once) to
        ``./<MODELS_DIR>/<name>/<version>/<file or folder>`` (default: latest version)."""
        client = _workspace.client if _workspace is not None else _default_client()
        rec = client.get_model(model_name, version)
        target = Path(cls.MODELS_DIR) / rec.name / str(rec.version)
        path = target / rec.root
        if not path.exists():
            client.download_model(rec.name, rec.version, target, exist_ok=True)
        return str(path)

    # -- metadata -----------------------------------------------------------------------------
    def add_tags(self, tags: Mapping[str, Any]) -> None:
        """Add or change tags."""
        self._record = self.workspace.client.update_model(self.name, self.version,
                                                          tags=dict(tags))

    def remove_tags(self, tags: Iterable[str]) -> None:
        """Remove tags by key."""
        self._record = self.workspace.client.update_model(self.name, self.version,
                                                          remove_tags=list(tags))

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Add properties (an existing one cannot change)."""
        self._record = self.workspace.client.update_model(self.name, self.version,
                                                          properties=dict(properties))

    def update(self, tags: Mapping[str, Any] | None = None, description: str | None = None,
               **_kwargs: Any) -> None:
        """Replace-style update of v1: set tags and/or the description."""
        self._record = self.workspace.client.update_model(self.name, self.version,
                                                          tags=dict(tags or {}),
                                                          description=description)

    def delete(self) -> None:
        """Delete this version (refused, naming them, while something refers to it)."""
        self.workspace.client.delete_model(self.name, self.version)
