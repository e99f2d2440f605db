"""``Dataset``: named, versioned references to files on datastores, after Azure ML v1's
``azureml.core.Dataset`` (``Dataset.File`` and ``Dataset.Tabular``).

A dataset is defined by datastore paths or globs (``(datastore, "data/**/*.csv")``, a list of
them, or ``datastore.path("data")``) plus, for tabular data, parse options; ``take``, ``skip``,
``random_split`` and ``take_sample`` add reproducible steps (a split records its seed). The
files a definition names are resolved when the dataset is made (with their size and sha256);
a registered version stores that file list, so it means exactly those bytes. Reading goes
through a content-addressed cache per workspace (keyed by the recorded sha256): a file already
cached is served from it, a file that must be fetched is checked against its recorded hash,
and a changed one raises :class:`~runyard.errors.DatasetChanged` naming it (the recorded
bytes cannot be read any more). ``data_changed_since_registration()`` compares the datastore
with the record without reading into the cache.

Differences from v1: there is no FUSE mount. :meth:`FileDataset.mount` downloads the files into
a content-addressed cache per workspace (shared by every dataset and call, keyed by sha256) and
links them read-only under the mount point, so a second mount of the same data fetches nothing.
A dataset id is ``name:version``. Datasets reach runs as named inputs (``as_named_input``; see
:mod:`runyard.dataio`). Reading tabular data needs ``pandas`` (and ``pyarrow`` for parquet files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.errors import InvalidParameter, NotSupported
from runyard.naming import check_binding_name
from runyard.runtime.datasets import (
    COLUMN_TYPES,
    DatasetNeedsPackage,
    DatasetValueError,
    check_count,
    check_fraction,
    check_seed,
    import_pandas,
    pick,
    read_tabular,
)

if TYPE_CHECKING:
    from types import TracebackType

    from runyard.sdktypes import WorkspaceLike as Workspace
    from runyard.store.dataset_record import DatasetFile, DatasetRecord

__all__ = ["DataPath", "Dataset", "DatasetConsumptionConfig", "FileDataset", "MountContext",
           "TabularDataset"]

_TYPES = COLUMN_TYPES


class DataPath:
    """A path on a datastore (v1's ``azureml.data.datapath.DataPath``)."""

    def __init__(self, datastore: Any = None, path_on_datastore: str | None = None,
                 name: str | None = None) -> None:
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.name = name

    def __repr__(self) -> str:
        ds = getattr(self.datastore, "name", self.datastore)
        return f"DataPath(datastore={ds!r}, path_on_datastore={self.path_on_datastore!r})"


def _one_path(item: Any) -> tuple[Any, str]:
    from runyard.datastore import DataReference, Datastore  # noqa: PLC0415

    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Datastore):
        return item[0], str(item[1])
    if isinstance(item, DataPath) and isinstance(item.datastore, Datastore):
        return item.datastore, item.path_on_datastore or ""
    if isinstance(item, DataReference):
        return item.datastore, item.path_on_datastore or ""
    if isinstance(item, Datastore):
        return item, ""
    if isinstance(item, (str, os.PathLike)):
        raise InvalidParameter("path", f"{os.fspath(item)!r} is a local path; register its "
                               "folder as a datastore (Datastore.register_local_folder) and "
                               "give (datastore, 'relative/glob') instead")
    raise InvalidParameter("path", f"{item!r} is not a datastore path: give (datastore, "
                           "'folder/**/*.csv'), datastore.path('x') or a list of them")


def _paths(path: Any) -> tuple[Workspace, list[tuple[str, str]]]:
    items = path if isinstance(path, list) else [path]
    if not items:
        raise InvalidParameter("path", "give at least one datastore path")
    pairs = [_one_path(i) for i in items]
    ws = pairs[0][0].workspace
    return ws, [(ds.name, p) for ds, p in pairs]


def _pick(n: int, ops: list[list[Any]]) -> list[int]:
    """The indexes of ``n`` items kept by the recorded steps (:func:`runyard.runtime.datasets.pick`:
    one implementation for the SDK and for scripts reading their inputs)."""
    return pick(n, ops)


@contextmanager
def _as_sdk_errors() -> Iterator[None]:
    """The runtime's stdlib-only errors as the SDK's (same text)."""
    try:
        yield
    except DatasetValueError as e:
        raise InvalidParameter(e.field, e.reason) from None
    except DatasetNeedsPackage as e:
        raise NotSupported(str(e)) from e.__cause__


def _count(value: Any, field: str) -> int:
    with _as_sdk_errors():
        return check_count(value, field)


def _fraction(value: Any, field: str) -> float:
    with _as_sdk_errors():
        return check_fraction(value, field)


def _seed(seed: Any) -> int:
    with _as_sdk_errors():
        return check_seed(seed)


class _BaseDataset:
    """What file and tabular datasets share: definition, files, registration."""

    _kind = ""

    def __init__(self, workspace: Workspace, paths: list[tuple[str, str]],
                 options: dict[str, Any] | None = None, ops: list[list[Any]] | None = None,
                 files: list[DatasetFile] | None = None,
                 record: DatasetRecord | None = None) -> None:
        self._ws = workspace
        self._paths = paths
        self._options = dict(options or {})
        self._ops = list(ops or [])
        self._files = files
        self._rec = record

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """The registered name (None before registration)."""
        return self._rec.name if self._rec else None

    @property
    def version(self) -> int | None:
        """The registered version (None before registration)."""
        return self._rec.version if self._rec else None

    @property
    def id(self) -> str | None:
        """``name:version`` (None before registration)."""
        return self._rec.id if self._rec else None

    @property
    def description(self) -> str | None:
        """The registered description."""
        return self._rec.description if self._rec else None

    @property
    def tags(self) -> dict[str, str]:
        """The registered tags."""
        return dict(self._rec.tags) if self._rec else {}

    @property
    def files(self) -> list[DatasetFile]:
        """Every file the definition resolved to (datastore, path, size, sha256), before
        ``take``/``skip``/split steps (a runyard extension)."""
        if self._files is None:
            self._files = self._ws.client.resolve_dataset_files(self._paths)
        return list(self._files)

    def _definition(self) -> dict[str, Any]:
        return {"paths": [list(p) for p in self._paths], "options": dict(self._options),
                "ops": [list(o) for o in self._ops]}

    def _with(self, op: list[Any]) -> Any:
        return type(self)(self._ws, self._paths, self._options, [*self._ops, op], self._files)

    def __repr__(self) -> str:
        who = f"name={self.name!r}, version={self.version}, " if self._rec else ""
        return f"{type(self).__name__}({who}paths={self._paths!r})"

    # -- registration ------------------------------------------------------------------------
    def register(self, workspace: Workspace, name: str, description: str | None = None,
                 tags: dict[str, str] | None = None, create_new_version: bool = False) -> Any:
        """Record this definition and its resolved files as a version of ``name``.

        An existing name without ``create_new_version``: the latest version is returned when
        it is identical, else ``AlreadyExists`` (as v1).
        """
        rec = workspace.client.register_dataset(
            name, self._kind, self._definition(), self.files, description=description,
            tags=tags, create_new_version=create_new_version)
        return _from_record(workspace, rec)

    def data_changed_since_registration(self) -> list[str]:
        """``datastore:path`` of every recorded file whose bytes changed or that is gone
        (empty: the data is as recorded); nothing is downloaded."""
        return self._ws.client.changed_dataset_files(self.files)

    def _local_files(self) -> tuple[list[DatasetFile], list[Path], int]:
        chosen = self._chosen()
        cached, fetched = self._ws.client.fetch_dataset_files(chosen)
        return chosen, cached, fetched

    def _chosen(self) -> list[DatasetFile]:
        return self.files

    def as_named_input(self, name: str) -> Any:
        """This dataset as run input ``name`` (``DatasetConsumptionConfig``, mode direct): put
        it in ``ScriptRunConfig(arguments=[...])``; ``.as_mount()`` / ``.as_download()`` give
        a file dataset as a path on the target instead."""
        return DatasetConsumptionConfig(name, self)  # type: ignore[arg-type]


def _rel_names(files: list[DatasetFile], every: list[DatasetFile]) -> list[str]:
    """Paths of ``files`` relative to the folder all of ``every`` (the dataset's resolved
    files) share: v1's ``to_path`` strips that prefix; a single file keeps its name."""
    if len(every) == 1:
        return [f.path.rsplit("/", 1)[-1] for f in files]
    common = os.path.commonpath([f"/{f.path}" for f in every]).strip("/")
    cut = len(common) + 1 if common else 0
    return [f.path[cut:] for f in files]


class MountContext:
    """What :meth:`FileDataset.mount` returns: ``with`` it, or call ``start()``/``stop()``.

    No FUSE: ``start`` fetches the files into the workspace's content-addressed cache (files
    already cached are not fetched) and links them read-only under :attr:`mount_point`.
    """

    def __init__(self, dataset: FileDataset, mount_point: str | os.PathLike[str] | None) -> None:
        self._ds = dataset
        self._own = mount_point is None
        #: The folder the files appear in.
        self.mount_point = (tempfile.mkdtemp(prefix="runyard-mount-") if mount_point is None
                            else os.fspath(mount_point))
        #: How many files the last ``start`` had to fetch (0: all were cached).
        self.fetched = 0

    def start(self) -> None:
        """Fetch what is not cached and link the files under :attr:`mount_point`."""
        files, cached, self.fetched = self._ds._local_files()
        root = Path(self.mount_point)
        root.mkdir(parents=True, exist_ok=True)
        for rel, src in zip(_rel_names(files, self._ds.files), cached, strict=True):
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            try:
                os.link(src, dest)
            except OSError:  # another file system: copy
                shutil.copyfile(src, dest)
                os.chmod(dest, 0o444)

    def stop(self) -> None:
        """Remove the linked files (the cache keeps them)."""
        root = Path(self.mount_point)
        if self._own:
            shutil.rmtree(root, ignore_errors=True)
            return
        for rel in _rel_names(self._ds._chosen(), self._ds.files):
            (root / rel).unlink(missing_ok=True)

    def __enter__(self) -> MountContext:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class FileDataset(_BaseDataset):
    """References to files (v1's ``FileDataset``); steps work on files."""

    _kind = "file"

    def _chosen(self) -> list[DatasetFile]:
        files = self.files
        return [files[i] for i in _pick(len(files), self._ops)]

    def to_path(self) -> list[str]:
        """The files' paths relative to their shared folder, each starting with ``/``."""
        return [f"/{r}" for r in _rel_names(self._chosen(), self.files)]

    def download(self, target_path: str | os.PathLike[str] | None = None,
                 overwrite: bool = False) -> list[str]:
        """Write the files under ``target_path`` (None: a new temporary folder) and return
        their absolute paths. A different file already there is refused unless
        ``overwrite``."""
        files, cached, _ = self._local_files()
        root = Path(tempfile.mkdtemp(prefix="runyard-dataset-") if target_path is None
                    else target_path).resolve()
        names = _rel_names(files, self.files)
        pairs = [(root / rel, src) for rel, src in zip(names, cached, strict=True)]
        if not overwrite:
            clash = [str(d) for d, src in pairs if d.exists() and not _same_file(d, src)]
            if clash:
                raise InvalidParameter("overwrite", f"{len(clash)} file(s) already exist with "
                                       f"other content: {', '.join(clash[:5])}; pass "
                                       "overwrite=True or choose another target_path")
        out: list[str] = []
        for dest, src in pairs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
            out.append(str(dest))
        return out

    def mount(self, mount_point: str | os.PathLike[str] | None = None,
              **kwargs: Any) -> MountContext:
        """A :class:`MountContext` (cache-backed, read-only; see the module docs)."""
        return MountContext(self, mount_point)

    def take(self, count: int) -> FileDataset:
        """The first ``count`` files."""
        return self._with(["take", _count(count, "count")])  # type: ignore[no-any-return]

    def skip(self, count: int) -> FileDataset:
        """All files but the first ``count``."""
        return self._with(["skip", _count(count, "count")])  # type: ignore[no-any-return]

    def random_split(self, percentage: float, seed: int | None = None
                     ) -> tuple[FileDataset, FileDataset]:
        """Two datasets with about ``percentage`` and the rest of the files (reproducible:
        the seed is recorded)."""
        p, s = _fraction(percentage, "percentage"), _seed(seed)
        return self._with(["split", p, s, 0]), self._with(["split", p, s, 1])


def _same_file(a: Path, b: Path) -> bool:
    from runyard.datastores.base import sha256_file  # noqa: PLC0415

    return a.is_file() and a.stat().st_size == b.stat().st_size and sha256_file(a) == \
        sha256_file(b)


class TabularDataset(_BaseDataset):
    """Rows parsed from delimited or parquet files (v1's ``TabularDataset``); steps work on
    rows."""

    _kind = "tabular"

    def to_pandas_dataframe(self, on_error: str = "null",
                            out_of_range_datetime: str = "null") -> Any:
        """The rows as a pandas DataFrame (needs ``pandas``; parquet also ``pyarrow``). A file
        that does not parse raises ``InvalidParameter`` naming it and the line."""
        with _as_sdk_errors():
            pd = import_pandas("to_pandas_dataframe")
        files, cached, _ = self._local_files()
        pairs = [(f"{f.datastore}:{f.path}", p) for f, p in zip(files, cached, strict=True)]
        with _as_sdk_errors():
            return read_tabular(pd, pairs, self._options, self._ops)

    def _read(self, pd: Any, f: DatasetFile, local: Path) -> Any:
        """One file's rows (:func:`runyard.runtime.datasets.read_tabular`)."""
        with _as_sdk_errors():
            return read_tabular(pd, [(f"{f.datastore}:{f.path}", local)], self._options)

    def _validate(self) -> None:
        """Parse the first file now (when pandas is installed)."""
        try:
            import pandas as pd  # noqa: PLC0415
        except ImportError:
            return  # nothing to parse with; reading will say pandas is needed
        first = self.files[:1]
        cached, _ = self._ws.client.fetch_dataset_files(first)
        for f, p in zip(first, cached, strict=True):
            self._read(pd, f, p)

    def take(self, count: int) -> TabularDataset:
        """The first ``count`` rows."""
        return self._with(["take", _count(count, "count")])  # type: ignore[no-any-return]

    def skip(self, count: int) -> TabularDataset:
        """All rows but the first ``count``."""
        return self._with(["skip", _count(count, "count")])  # type: ignore[no-any-return]

    def random_split(self, percentage: float, seed: int | None = None
                     ) -> tuple[TabularDataset, TabularDataset]:
        """Two datasets with about ``percentage`` and the rest of the rows (disjoint, together
        all rows; reproducible: the seed is recorded)."""
        p, s = _fraction(percentage, "percentage"), _seed(seed)
        return self._with(["split", p, s, 0]), self._with(["split", p, s, 1])

    def take_sample(self, probability: float, seed: int | None = None) -> TabularDataset:
        """Each row kept with ``probability`` (reproducible: the seed is recorded)."""
        return self._with(  # type: ignore[no-any-return]
            ["sample", _fraction(probability, "probability"), _seed(seed)])


def _column_types(types: dict[str, Any] | None) -> dict[str, str]:
    names = {int: "int", float: "float", str: "str", bool: "bool"}
    out: dict[str, str] = {}
    for col, typ in (types or {}).items():
        name = names.get(typ) if isinstance(typ, type) else str(typ).lower()
        if name not in _TYPES:
            raise InvalidParameter("set_column_types", f"column {col!r}: {typ!r} is not one of "
                                   f"{sorted(_TYPES)} (or int, float, str, bool)")
        out[str(col)] = name
    return out


def _from_record(workspace: Workspace, rec: DatasetRecord) -> Any:
    d = rec.definition
    cls = TabularDataset if rec.kind == "tabular" else FileDataset
    return cls(workspace, [(str(a), str(b)) for a, b in d.get("paths", [])],
               d.get("options", {}), d.get("ops", []), list(rec.files), rec)


class FileDatasetFactory:
    """``Dataset.File``: makes :class:`FileDataset` objects."""

    @staticmethod
    def from_files(path: Any, validate: bool = True) -> FileDataset:
        """Files named by datastore paths or globs; the files are resolved (with hashes) now,
        so a glob that matches nothing fails here naming the pattern and the datastore."""
        ws, pairs = _paths(path)
        return FileDataset(ws, pairs, {}, [], ws.client.resolve_dataset_files(pairs))


class TabularDatasetFactory:
    """``Dataset.Tabular``: makes :class:`TabularDataset` objects."""

    @staticmethod
    def from_delimited_files(path: Any, validate: bool = True, include_path: bool = False,
                             infer_column_types: bool = True,
                             set_column_types: dict[str, Any] | None = None,
                             separator: str = ",", header: bool = True,
                             partition_format: str | None = None,
                             support_multi_line: bool = False, empty_as_string: bool = False,
                             encoding: str = "utf8") -> TabularDataset:
        """Rows of delimited text files. ``validate`` parses the first file now (a file that
        does not parse fails naming it and the line). ``partition_format`` is not supported;
        ``support_multi_line`` (quoted newlines are always read) and ``empty_as_string`` are
        accepted and ignored."""
        if partition_format is not None:
            raise NotSupported("partition_format is not supported by runyard datasets")
        if not isinstance(separator, str) or not separator:
            raise InvalidParameter("separator", f"must be a non-empty string, got {separator!r}")
        if not isinstance(header, bool):
            raise InvalidParameter("header", "must be True or False (the header line is "
                                   "read from each file)")
        ws, pairs = _paths(path)
        opts = {"format": "delimited", "separator": separator, "header": header,
                "encoding": encoding, "infer_column_types": bool(infer_column_types),
                "include_path": bool(include_path),
                "set_column_types": _column_types(set_column_types)}
        ds = TabularDataset(ws, pairs, opts, [], ws.client.resolve_dataset_files(pairs))
        if validate:
            ds._validate()
        return ds

    @staticmethod
    def from_parquet_files(path: Any, validate: bool = True, include_path: bool = False,
                           set_column_types: dict[str, Any] | None = None,
                           partition_format: str | None = None) -> TabularDataset:
        """Rows of parquet files (reading them needs ``pyarrow``)."""
        if partition_format is not None:
            raise NotSupported("partition_format is not supported by runyard datasets")
        ws, pairs = _paths(path)
        opts = {"format": "parquet", "include_path": bool(include_path),
                "set_column_types": _column_types(set_column_types)}
        return TabularDataset(ws, pairs, opts, [], ws.client.resolve_dataset_files(pairs))


class Dataset:
    """v1's ``Dataset``: ``Dataset.File`` / ``Dataset.Tabular`` factories and the registry."""

    File = FileDatasetFactory
    Tabular = TabularDatasetFactory

    @staticmethod
    def get_by_name(workspace: Workspace, name: str, version: int | str = "latest") -> Any:
        """A registered version (``"latest"`` or a number); ``NotFound`` when absent."""
        if version in ("latest", None):
            v: int | None = None
        else:
            try:
                v = int(version)
            except (TypeError, ValueError):
                raise InvalidParameter("version", f"{version!r} is not 'latest' or a "
                                       "version number") from None
        return _from_record(workspace, workspace.client.get_dataset(name, v))

    @staticmethod
    def get_by_id(workspace: Workspace, id: str) -> Any:  # noqa: A002
        """A registered version by id (``name:version``)."""
        name, sep, ver = str(id).rpartition(":")
        if not sep or not ver.isdigit():
            raise InvalidParameter("id", f"{id!r} is not a dataset id ('name:version')")
        return Dataset.get_by_name(workspace, name, int(ver))

    @staticmethod
    def get_all(workspace: Workspace) -> dict[str, Any]:
        """The latest version of every registered dataset, by name."""
        return {r.name: _from_record(workspace, r)
                for r in workspace.client.list_datasets(latest=True)}


#: How a run may consume a dataset.
CONSUMPTION_MODES = ("direct", "mount", "download")


def _files(dataset: Any) -> list[list[Any]]:
    return [[f.datastore, f.path, f.size, f.sha256] for f in dataset.files]


class DatasetConsumptionConfig:
    """How a run consumes a dataset: ``ds.as_named_input("train")`` (direct), then
    ``.as_mount()`` or ``.as_download()`` for a file dataset.

    ``path_on_compute``: where the files appear on the target (relative paths are relative to
    the run's working directory; default: a folder of the run).
    """

    def __init__(self, name: str, dataset: FileDataset | TabularDataset, mode: str = "direct",
                 path_on_compute: str | None = None) -> None:
        self.name = check_binding_name(name)
        if not isinstance(dataset, FileDataset | TabularDataset):
            raise InvalidParameter("dataset", f"{dataset!r} is not a dataset; give a "
                                   "Dataset.File or Dataset.Tabular object")
        if mode not in CONSUMPTION_MODES:
            raise InvalidParameter("mode", f"{mode!r} is not a consumption mode; use one of "
                                   f"{', '.join(CONSUMPTION_MODES)}")
        if mode != "direct" and isinstance(dataset, TabularDataset):
            raise InvalidParameter("mode", f"TabularDataset cannot be consumed as {mode}. "
                                   "Only FileDataset supports mount and download; pass the "
                                   "tabular dataset directly (as_named_input(name))")
        if path_on_compute is not None and (not isinstance(path_on_compute, str)
                                            or not path_on_compute.strip()
                                            or "\x00" in path_on_compute):
            raise InvalidParameter("path_on_compute", f"{path_on_compute!r} is not a path")
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files as a read-only folder on the target (see the docs: a cache, not FUSE)."""
        return DatasetConsumptionConfig(self.name, self.dataset, "mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files copied to a folder on the target the script may write into."""
        return DatasetConsumptionConfig(self.name, self.dataset, "download", path_on_compute)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """Copies of a run configuration share this object (it holds the workspace and the
        dataset's file list; it is never changed in place)."""
        return self

    def __str__(self) -> str:
        return f"DatasetConsumptionConfig:{self.name}"

    def __repr__(self) -> str:
        return (f"DatasetConsumptionConfig(name={self.name!r}, dataset={self.dataset!r}, "
                f"mode={self.mode!r})")

    def _run_binding(self) -> dict[str, Any]:
        ds = self.dataset
        return {"role": "input", "name": self.name, "token": str(self),
                "kind": ds._kind, "mode": self.mode, "path_on_compute": self.path_on_compute,
                "dataset": {"id": ds.id, "name": ds.name, "version": ds.version},
                "options": dict(ds._options), "ops": [list(o) for o in ds._ops],
                "files": _files(ds), "chosen": [[f.datastore, f.path] for f in ds._chosen()]}
