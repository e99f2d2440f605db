"""Datasets inside a run: what ``Run.get_context().input_datasets`` holds, and the one tabular
reader (the SDK's ``TabularDataset.to_pandas_dataframe`` uses it too).

On the target the runner materializes each dataset input's files into a folder and writes an
inputs file (JSON) whose path it puts in the script's environment as ``RUNYARD_INPUTS_FILE``::

    {"version": 1,
     "inputs": {"<name>": {"kind": "file" | "tabular" | "reference",
                           "mode": "mount" | "download" | "direct",
                           "path": "/abs/path",
                           "dataset": {"id": "name:version" | null, "name": ..., "version": ...},
                           "options": {...}, "ops": [[...], ...],
                           "files": [["<datastore>:<path>", "/abs/local/path", size], ...]}}}

:func:`load_inputs` reads it: a mount/download input is its ``path`` (a string, as in Azure ML
v1); a direct input is an :class:`InputTabularDataset` or an :class:`InputFileDataset` that
reads the local files. The script may have changed the file, so every field is checked and a bad
one raises :class:`InputsFileError` naming the input.

``files`` of a tabular input are all of the dataset's files (its steps work on rows, so they are
applied when reading); those of a file input are the files its steps chose (the runner lays out
only those), so the recorded ``ops`` are not applied again: steps the script adds (``take``,
``skip``, ...) work on that list. A file's name in the input is its place under the input's
folder (the runner names it relative to the folder all of the dataset's files share, as the
SDK's ``to_path``).

Errors: the runtime imports nothing outside ``runyard.runtime`` (it ships alone), so a bad value
raises :class:`DatasetValueError` (a ``ValueError`` with the field, the stdlib-only twin of
``InvalidParameter``) and a missing package :class:`DatasetNeedsPackage`, both
:class:`DatasetError`; the SDK turns them into ``InvalidParameter`` / ``NotSupported``
with the same text. Standard library only (Python >= 3.8); pandas is imported only to read.
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["DatasetError", "DatasetNeedsPackage", "DatasetValueError", "InputFileDataset",
           "InputMountContext", "InputTabularDataset", "InputsFileError", "check_count",
           "check_fraction", "check_ops", "check_seed", "import_pandas", "load_inputs", "pick",
           "read_tabular"]

#: Version of the inputs file this runtime reads.
INPUTS_VERSION = 1
KINDS = ("file", "tabular", "reference")
MODES = ("mount", "download", "direct")

#: ``set_column_types`` names -> pandas dtypes.
COLUMN_TYPES = {"int": "int64", "float": "float64", "str": "string", "bool": "boolean",
                "datetime": "datetime64[ns]"}


class DatasetError(ValueError):
    """Root of the errors of dataset inputs inside a run (a ``ValueError``, as
    :class:`~runyard.runtime.context.TrackingError`; the context imports this module, so these
    cannot subclass it)."""


class DatasetValueError(DatasetError):
    """A dataset value is wrong (``field: reason``); the SDK raises it as ``InvalidParameter``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DatasetNeedsPackage(DatasetError):
    """Reading needs a package that is not installed; the SDK raises it as ``NotSupported``."""


class InputsFileError(DatasetError):
    """The inputs file (``RUNYARD_INPUTS_FILE``) is unreadable or has a bad entry."""


# -- steps (take / skip / split / sample) ----------------------------------------------------


def check_count(value: Any, field: str) -> int:
    """``value`` as a count (an int >= 0) or :class:`DatasetValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DatasetValueError(field, f"must be an integer >= 0, got {value!r}")
    return value


def check_fraction(value: Any, field: str) -> float:
    """``value`` as a number in [0, 1] or :class:`DatasetValueError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DatasetValueError(field, f"must be a number between 0 and 1, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int:
    """``seed`` as an int; None draws one (so the step is recorded reproducibly)."""
    if seed is None:
        return random.SystemRandom().randrange(2**31)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DatasetValueError("seed", f"must be an integer, got {seed!r}")
    return seed


def check_ops(ops: Any, field: str = "ops") -> list[list[Any]]:
    """The recorded steps, each checked: ``["take", n]``, ``["skip", n]``,
    ``["split", p, seed, 0|1]``, ``["sample", p, seed]``."""
    if not isinstance(ops, list):
        raise DatasetValueError(field, f"must be a list of steps, got {type(ops).__name__}")
    out: list[list[Any]] = []
    for i, op in enumerate(ops):
        where = f"{field}[{i}]"
        if not isinstance(op, list) or not op or not isinstance(op[0], str):
            raise DatasetValueError(where, f"must be a list starting with the step's name, "
                                    f"got {op!r}")
        kind, args = op[0], op[1:]
        size = {"take": 1, "skip": 1, "split": 3, "sample": 2}.get(kind)
        if size is None:
            raise DatasetValueError(where, f"unknown step {kind!r} (take, skip, split, sample)")
        if len(args) != size:
            raise DatasetValueError(where, f"{kind} takes {size} value(s), got {op!r}")
        if kind in ("take", "skip"):
            out.append([kind, check_count(args[0], f"{where} count")])
            continue
        p = check_fraction(args[0], f"{where} fraction")
        if isinstance(args[1], bool) or not isinstance(args[1], int):
            raise DatasetValueError(where, f"the seed must be an integer, got {args[1]!r}")
        if kind == "split" and (isinstance(args[2], bool) or args[2] not in (0, 1)):
            raise DatasetValueError(where, f"the part must be 0 or 1, got {args[2]!r}")
        out.append([kind, p, *args[1:]])
    return out


def pick(n: int, ops: Sequence[Sequence[Any]]) -> list[int]:
    """The indexes of ``n`` items kept by the recorded steps (files of a file dataset, rows of
    a tabular one); a split or sample with the same seed keeps the same items every time."""
    idx = list(range(n))
    for op in ops:
        kind = op[0]
        if kind == "take":
            idx = idx[:int(op[1])]
        elif kind == "skip":
            idx = idx[int(op[1]):]
        elif kind in ("split", "sample"):
            rng = random.Random(int(op[2]))
            draws = [rng.random() < float(op[1]) for _ in idx]
            keep = (not op[3]) if kind == "split" else True
            idx = [i for i, d in zip(idx, draws) if d == keep]  # noqa: B905 (runtime: 3.8)
    return idx


# -- tabular parsing -------------------------------------------------------------------------


def import_pandas(what: str) -> Any:
    """The pandas module, or :class:`DatasetNeedsPackage` saying ``what`` needs it."""
    try:
        import pandas  # noqa: PLC0415
    except ImportError as e:
        raise DatasetNeedsPackage(f"{what} needs pandas: pip install pandas") from e
    return pandas


def _read_one(pd: Any, where: str, local: str | os.PathLike[str],
              o: dict[str, Any]) -> Any:
    if o.get("format") == "parquet":
        try:
            df = pd.read_parquet(local)
        except ImportError as e:
            raise DatasetNeedsPackage(f"reading parquet ({where}) needs pyarrow: pip install "
                                      "pyarrow") from e
    else:
        kw: dict[str, Any] = {"sep": o.get("separator", ","),
                              "header": 0 if o.get("header", True) else None,
                              "encoding": o.get("encoding", "utf8")}
        if not o.get("infer_column_types", True):
            kw.update(dtype=str, keep_default_na=False)
        try:
            df = pd.read_csv(local, **kw)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, LookupError) as e:
            raise DatasetValueError("path", f"{where} does not parse as delimited text "
                                    f"(separator {kw['sep']!r}, encoding "
                                    f"{kw['encoding']!r}): {e}") from None
        if kw["header"] is None:
            df.columns = [f"Column{i + 1}" for i in range(len(df.columns))]
    for col, typ in (o.get("set_column_types") or {}).items():
        if col not in df.columns:
            raise DatasetValueError("set_column_types", f"{where} has no column {col!r} "
                                    f"(columns: {list(df.columns)})")
        if typ not in COLUMN_TYPES:
            raise DatasetValueError("set_column_types", f"column {col!r}: {typ!r} is not one "
                                    f"of {sorted(COLUMN_TYPES)}")
        try:
            df[col] = (pd.to_datetime(df[col]) if typ == "datetime"
                       else df[col].astype(COLUMN_TYPES[typ]))
        except (ValueError, TypeError) as e:
            raise DatasetValueError("set_column_types", f"column {col!r} of {where} is not "
                                    f"{typ}: {e}") from None
    if o.get("include_path"):
        df.insert(0, "Path", f"/{where.partition(':')[2]}")
    return df


def read_tabular(pd: Any, files: Sequence[tuple[str, str | os.PathLike[str]]],
                 options: dict[str, Any], ops: Sequence[Sequence[Any]] = ()) -> Any:
    """The rows of ``files`` (``(where, local path)`` pairs; ``where`` is
    ``datastore:path``, used in messages and for ``include_path``) as one DataFrame, parsed
    by the dataset's ``options`` (format, separator, header, encoding, infer_column_types,
    set_column_types, include_path), then the steps ``ops`` applied to the rows.

    A file that does not parse raises :class:`DatasetValueError` naming it; reading parquet
    without pyarrow :class:`DatasetNeedsPackage`.
    """
    frames = [_read_one(pd, where, local, options) for where, local in files]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not ops:
        return df
    return df.iloc[pick(len(df), ops)].reset_index(drop=True)


# -- what a script receives for a direct input ----------------------------------------------


class _InputDataset:
    """A direct input: the dataset's identity, its local files and its steps."""

    _kind = ""

    def __init__(self, input_name: str, dataset: dict[str, Any], options: dict[str, Any],
                 ops: list[list[Any]], files: list[tuple[str, str, int]], path: str) -> None:
        self.input_name = input_name
        self._dataset = dict(dataset)
        self._options = dict(options)
        self._ops = [list(o) for o in ops]
        self._files = list(files)
        self._path = path

    @property
    def name(self) -> str | None:
        """The registered name (None for an unregistered dataset)."""
        return self._dataset.get("name")

    @property
    def version(self) -> int | None:
        """The registered version (None for an unregistered dataset)."""
        return self._dataset.get("version")

    @property
    def id(self) -> str | None:
        """``name:version`` (None for an unregistered dataset)."""
        return self._dataset.get("id")

    def _with(self, op: list[Any]) -> Any:
        return type(self)(self.input_name, self._dataset, self._options, [*self._ops, op],
                          self._files, self._path)

    def _local(self, chosen: list[tuple[str, str, int]]) -> list[tuple[str, str]]:
        missing = [local for _, local, _ in chosen if not os.path.isfile(local)]
        if missing:
            raise DatasetError(f"input {self.input_name!r}: {len(missing)} file(s) are not "
                                f"where the inputs file says: {', '.join(missing[:5])}")
        return [(where, local) for where, local, _ in chosen]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input={self.input_name!r}, name={self.name!r}, "
                f"version={self.version!r}, files={len(self._files)}, ops={self._ops!r})")


class InputTabularDataset(_InputDataset):
    """A tabular dataset passed directly (``ds.as_named_input("x")``): steps work on rows."""

    _kind = "tabular"

    def to_pandas_dataframe(self, on_error: str = "null",
                            out_of_range_datetime: str = "null") -> Any:
        """The rows as a pandas DataFrame (needs ``pandas``; parquet also ``pyarrow``)."""
        pd = import_pandas("to_pandas_dataframe")
        return read_tabular(pd, self._local(self._files), self._options, self._ops)

    def take(self, count: int) -> InputTabularDataset:
        """The first ``count`` rows."""
        return self._with(["take", check_count(count, "count")])  # type: ignore[no-any-return]

    def skip(self, count: int) -> InputTabularDataset:
        """All rows but the first ``count``."""
        return self._with(["skip", check_count(count, "count")])  # type: ignore[no-any-return]

    def random_split(self, percentage: float, seed: int | None = None
                     ) -> tuple[InputTabularDataset, InputTabularDataset]:
        """Two datasets with about ``percentage`` and the rest of the rows (disjoint)."""
        p, s = check_fraction(percentage, "percentage"), check_seed(seed)
        return self._with(["split", p, s, 0]), self._with(["split", p, s, 1])

    def take_sample(self, probability: float, seed: int | None = None
                    ) -> InputTabularDataset:
        """Each row kept with ``probability`` (reproducible with a seed)."""
        return self._with(  # type: ignore[no-any-return]
            ["sample", check_fraction(probability, "probability"), check_seed(seed)])


def _rel_names(chosen: list[tuple[str, str, int]], every: list[tuple[str, str, int]],
               path: str) -> list[str]:
    """Each chosen file's place in the input: relative to the input's folder (``path``, or the
    folder of ``path`` when the input is a single file) where the runner put it there; else
    (a file outside that folder) relative to the folder every file shares on its datastore."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    prefix = folder.rstrip(os.sep) + os.sep
    if all(local.startswith(prefix) for _, local, _ in chosen):
        return [os.path.relpath(local, folder).replace(os.sep, "/") for _, local, _ in chosen]
    paths = [w.partition(":")[2] for w, _, _ in chosen]
    if len(every) == 1:
        return [p.rsplit("/", 1)[-1] for p in paths]
    common = os.path.commonpath([f"/{w.partition(':')[2]}" for w, _, _ in every]).strip("/")
    cut = len(common) + 1 if common else 0
    return [p[cut:] for p in paths]


class InputMountContext:
    """What :meth:`InputFileDataset.mount` returns: ``with`` it, or ``start()``/``stop()``.

    The files are already on this machine: with no steps added by the script and no mount point
    the mount point is the input's folder; otherwise the chosen files are linked into
    ``mount_point`` (a new temporary folder when None) and ``stop`` removes those links.
    """

    def __init__(self, dataset: InputFileDataset, mount_point: str | None) -> None:
        self._ds = dataset
        self._as_is = mount_point is None and not dataset._ops and os.path.isdir(dataset._path)
        self._own = mount_point is None and not self._as_is
        #: The folder the files appear in.
        self.mount_point = (dataset._path if self._as_is else
                            tempfile.mkdtemp(prefix="runyard-mount-") if mount_point is None
                            else os.fspath(mount_point))
        self._made: list[Path] = []

    def start(self) -> None:
        """Link the chosen files under :attr:`mount_point` (nothing to do for the input's own
        folder)."""
        if self._as_is:
            return
        root = Path(self.mount_point)
        root.mkdir(parents=True, exist_ok=True)
        for rel, (_, src) in self._ds._pairs():
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            try:
                os.link(src, dest)
            except OSError:  # another file system, or links not allowed: a symbolic link
                os.symlink(os.path.abspath(src), dest)
            self._made.append(dest)

    def stop(self) -> None:
        """Remove the links (the input's files stay)."""
        if self._own:
            shutil.rmtree(self.mount_point, ignore_errors=True)
        else:
            for p in self._made:
                if p.exists() or p.is_symlink():
                    p.unlink()
        self._made = []

    def __enter__(self) -> InputMountContext:
        self.start()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class InputFileDataset(_InputDataset):
    """A file dataset passed directly (``ds.as_named_input("x")``): steps work on files."""

    _kind = "file"

    def _chosen(self) -> list[tuple[str, str, int]]:
        return [self._files[i] for i in pick(len(self._files), self._ops)]

    def _pairs(self) -> list[tuple[str, tuple[str, str]]]:
        chosen = self._chosen()
        return list(zip(_rel_names(chosen, self._files, self._path),  # noqa: B905 (3.8)
                        self._local(chosen)))

    def to_path(self) -> list[str]:
        """The files' paths relative to their shared folder, each starting with ``/``."""
        return [f"/{r}" for r in _rel_names(self._chosen(), self._files, self._path)]

    def download(self, target_path: str | os.PathLike[str] | None = None,
                 overwrite: bool = False) -> list[str]:
        """Copy the files under ``target_path`` (None: a new temporary folder) and return
        their absolute paths. A different file already there is refused unless
        ``overwrite``."""
        root = Path(tempfile.mkdtemp(prefix="runyard-dataset-") if target_path is None
                    else target_path).resolve()
        pairs = [(root / rel, src) for rel, (_, src) in self._pairs()]
        if not overwrite:
            clash = [str(d) for d, src in pairs
                     if d.exists() and not (d.is_file() and filecmp.cmp(d, src, shallow=False))]
            if clash:
                raise DatasetValueError("overwrite", f"{len(clash)} file(s) already exist with "
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
              **kwargs: Any) -> InputMountContext:
        """An :class:`InputMountContext` (see there)."""
        return InputMountContext(self, None if mount_point is None else os.fspath(mount_point))

    def take(self, count: int) -> InputFileDataset:
        """The first ``count`` files."""
        return self._with(["take", check_count(count, "count")])  # type: ignore[no-any-return]

    def skip(self, count: int) -> InputFileDataset:
        """All files but the first ``count``."""
        return self._with(["skip", check_count(count, "count")])  # type: ignore[no-any-return]

    def random_split(self, percentage: float, seed: int | None = None
                     ) -> tuple[InputFileDataset, InputFileDataset]:
        """Two datasets with about ``percentage`` and the rest of the files."""
        p, s = check_fraction(percentage, "percentage"), check_seed(seed)
        return self._with(["split", p, s, 0]), self._with(["split", p, s, 1])


# -- the inputs file -------------------------------------------------------------------------


_OPTION_TYPES: dict[str, type] = {"format": str, "separator": str, "header": bool,
                                  "encoding": str, "infer_column_types": bool,
                                  "include_path": bool}


def _entry(source: str, name: str, e: Any) -> Any:
    def bad(what: str) -> InputsFileError:
        return InputsFileError(f"inputs file {source}: input {name!r}: {what} (the runner "
                               "wrote it; was it changed by the script?)")

    if not isinstance(e, dict):
        raise bad(f"expected an object, got {type(e).__name__}")
    kind, mode, path = e.get("kind"), e.get("mode"), e.get("path")
    if kind not in KINDS:
        raise bad(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if mode not in MODES:
        raise bad(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise bad(f"path must be an absolute path, got {path!r}")
    if mode != "direct" or kind == "reference":
        return path
    ds = e.get("dataset", {})
    if not isinstance(ds, dict):
        raise bad(f"dataset must be an object, got {type(ds).__name__}")
    for key, want in (("id", str), ("name", str), ("version", int)):
        v = ds.get(key)
        if v is not None and (not isinstance(v, want) or isinstance(v, bool)):
            raise bad(f"dataset.{key} must be a {want.__name__} or null, got {v!r}")
    options = e.get("options", {})
    if not isinstance(options, dict):
        raise bad(f"options must be an object, got {type(options).__name__}")
    for key, typ in _OPTION_TYPES.items():
        v = options.get(key)
        if v is not None and not isinstance(v, typ):
            raise bad(f"options.{key} must be a {typ.__name__}, got {v!r}")
    if options.get("format") not in (None, "delimited", "parquet"):
        raise bad(f"options.format must be 'delimited' or 'parquet', got "
                  f"{options.get('format')!r}")
    types = options.get("set_column_types") or {}
    if not isinstance(types, dict) or any(t not in COLUMN_TYPES for t in types.values()):
        raise bad(f"options.set_column_types must map columns to one of "
                  f"{sorted(COLUMN_TYPES)}, got {types!r}")
    try:
        ops = check_ops(e.get("ops", []))
    except DatasetValueError as err:
        raise bad(str(err)) from None
    raw = e.get("files")
    if not isinstance(raw, list):
        raise bad(f"files must be a list, got {type(raw).__name__}")
    files: list[tuple[str, str, int]] = []
    for i, f in enumerate(raw):
        ok = (isinstance(f, list) and len(f) == 3 and isinstance(f[0], str) and ":" in f[0]
              and isinstance(f[1], str) and os.path.isabs(f[1]) and isinstance(f[2], int)
              and not isinstance(f[2], bool) and f[2] >= 0)
        if not ok:
            raise bad(f"files[{i}] must be [\"datastore:path\", \"/abs/local/path\", size], "
                      f"got {f!r}")
        files.append((f[0], f[1], f[2]))
    if kind == "tabular":
        return InputTabularDataset(name, ds, options, ops, files, path)
    return InputFileDataset(name, ds, options, [], files, path)  # the files the steps chose


def load_inputs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The inputs of this run by name, from the inputs file at ``path``: a mount/download
    input (and any data reference) is its local path, a direct one an
    :class:`InputTabularDataset` / :class:`InputFileDataset`. A bad file raises
    :class:`InputsFileError` naming the input and the field."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as e:
        raise InputsFileError(f"inputs file {source}: cannot be read as JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != INPUTS_VERSION:
        got = doc.get("version") if isinstance(doc, dict) else type(doc).__name__
        raise InputsFileError(f"inputs file {source}: expected an object with version "
                              f"{INPUTS_VERSION}, got {got!r} (a runner of another runyard "
                              "version?)")
    inputs = doc.get("inputs")
    if not isinstance(inputs, dict):
        raise InputsFileError(f"inputs file {source}: 'inputs' must be an object of input "
                              f"name -> entry, got {type(inputs).__name__}")
    return {str(name): _entry(source, str(name), e) for name, e in inputs.items()}
