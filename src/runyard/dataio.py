"""Data a run reads and writes: ``DatasetConsumptionConfig`` (a dataset as a named run input)
and ``OutputFileDatasetConfig`` (a folder the run fills, uploaded to a datastore at its end),
after Azure ML v1's ``azureml.data`` classes.

Both go into ``ScriptRunConfig(arguments=[...])``. On the target an input renders as a path
(``as_mount()`` / ``as_download()``: the folder of the dataset's files, or the file when there
is one) or, for a direct input, as the dataset's id; an output renders as an empty folder the
script writes into. Inside the script ``Run.get_context().input_datasets[name]`` is that path,
or the dataset object for a direct input.

Each object gives the submit path a plain description through ``_run_binding()`` (the files
with their sizes and sha256, the destination), so nothing below the SDK needs these classes.
"""

from __future__ import annotations

import uuid
from typing import Any

from runyard.dataset import DatasetConsumptionConfig
from runyard.errors import InvalidParameter
from runyard.naming import check_binding_name

__all__ = ["DatasetConsumptionConfig", "OutputFileDatasetConfig"]

#: Placeholders a destination path may hold (v1: only these two).
DESTINATION_PLACEHOLDERS = ("{run-id}", "{output-name}")


class OutputFileDatasetConfig:
    """A folder the run writes; uploaded to ``destination`` when the script ends with code 0
    (v1's ``as_upload`` semantics; nothing is uploaded from a failed run).

    ``destination``: ``(datastore, "path/{run-id}")`` (placeholders ``{run-id}`` and
    ``{output-name}``); default: the workspace's default datastore,
    ``dataset/{run-id}/{output-name}``. ``register_on_complete(name)`` registers the uploaded
    files as a new version of a file dataset ``name`` once they are on the datastore.
    """

    def __init__(self, name: str | None = None, destination: Any = None,
                 source: str | None = None, partition_format: str | None = None) -> None:
        self.name = check_binding_name(name if name is not None
                                       else f"output_{uuid.uuid4().hex[:8]}")
        self.destination = self._check_destination(destination)
        if source is not None:
            raise InvalidParameter("source", "runyard gives the script an empty folder for "
                                   "each output; leave source unset and write into the path "
                                   "the argument renders as")
        if partition_format is not None:
            raise InvalidParameter("partition_format", "partitioned outputs are not "
                                   "supported; leave partition_format unset")
        self.mode = "upload"
        self.overwrite = False
        self._register: dict[str, Any] | None = None

    @staticmethod
    def _check_destination(destination: Any) -> tuple[Any, str] | None:
        if destination is None:
            return None
        from runyard.datastore import Datastore  # noqa: PLC0415

        if not (isinstance(destination, tuple) and len(destination) == 2
                and isinstance(destination[0], Datastore) and isinstance(destination[1], str)):
            raise InvalidParameter("destination", f"{destination!r} is not a destination; "
                                   "give (datastore, 'path/{run-id}')")
        path = destination[1]
        rest = path
        for p in DESTINATION_PLACEHOLDERS:
            rest = rest.replace(p, "x")
        if "{" in rest or "}" in rest:
            raise InvalidParameter("destination", f"{path!r}: only the placeholders "
                                   "{run-id} and {output-name} are supported")
        from runyard.datastores.base import clean_relpath  # noqa: PLC0415

        clean_relpath(rest, "destination")
        return destination[0], path

    def _copy(self) -> OutputFileDatasetConfig:
        out = OutputFileDatasetConfig(self.name, self.destination)
        out.mode, out.overwrite = self.mode, self.overwrite
        out._register = dict(self._register) if self._register else None
        return out

    def as_upload(self, overwrite: bool = False, source_globs: Any = None
                  ) -> OutputFileDatasetConfig:
        """Upload the folder when the script ends (the behaviour of every output here)."""
        if source_globs is not None:
            raise InvalidParameter("source_globs", "not supported; write only what should be "
                                   "uploaded into the output folder")
        out = self._copy()
        out.overwrite = bool(overwrite)
        return out

    def as_mount(self) -> OutputFileDatasetConfig:
        """v1 mounted the destination; here the folder is uploaded when the script ends."""
        return self._copy()

    def register_on_complete(self, name: str, description: str | None = None,
                             tags: dict[str, str] | None = None) -> OutputFileDatasetConfig:
        """Register the uploaded files as a new version of file dataset ``name``."""
        from runyard.services.datasets import check_dataset_name  # noqa: PLC0415

        out = self._copy()
        out._register = {"name": check_dataset_name(name), "description": description,
                         "tags": {str(k): str(v) for k, v in (tags or {}).items()}}
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """Copies of a run configuration share this object (it holds the workspace and the
        dataset's file list; it is never changed in place)."""
        return self

    def __str__(self) -> str:
        return f"DatasetOutputConfig:{self.name}"

    def __repr__(self) -> str:
        return f"OutputFileDatasetConfig(name={self.name!r}, destination={self.destination!r})"

    def _run_binding(self) -> dict[str, Any]:
        ds, path = self.destination if self.destination else (None, "")
        return {"role": "output", "name": self.name, "token": str(self),
                "datastore": ds.name if ds is not None else None,
                "path": path or "dataset/{run-id}/{output-name}",
                "overwrite": self.overwrite, "register": self._register}
