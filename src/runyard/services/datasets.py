"""Datasets as workspace resources: resolve datastore paths/globs, register versions, get,
list, and fetch the recorded bytes through a content-addressed cache.

A registered version records the files its definition resolved to (datastore, path, size,
sha256), so a reader can say exactly which bytes it read. Fetching goes through a cache per
workspace (``<data dir>/cache/datasets/<sha[:2]>/<sha>``) shared by every dataset and call: a
file already in the cache is not fetched again. A fetched file whose sha256 differs from the
recorded one is refused with :class:`~runyard.errors.DatasetChanged` naming it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.datastores.base import clean_relpath, sha256_file
from runyard.errors import AlreadyExists, DatasetChanged, InvalidParameter, NotFound
from runyard.services import datastores as ds_svc
from runyard.store.dataset_record import DatasetFile, DatasetRecord

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

__all__ = ["cache_dir", "changed_files", "check_dataset_name", "fetch_files", "get_dataset",
           "list_datasets", "register_dataset", "resolve_files"]

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 _.-]{0,253}[A-Za-z0-9_.-])?$")
_GLOB = re.compile(r"[*?\[]")
KINDS = ("file", "tabular")


def check_dataset_name(name: object) -> str:
    """``name`` when it is a valid dataset name, else :class:`InvalidParameter`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter("name", f"{name!r} is not a valid dataset name: use letters, "
                               "digits, spaces, '_', '.' and '-', starting with a letter or "
                               "digit, at most 255 characters")
    return name


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a datastore glob: ``*`` and ``?`` stay within a folder, ``**`` spans
    folders (``a/**/*.csv`` matches ``a/x.csv`` and ``a/b/c/x.csv``)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1:j].replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _static_prefix(pattern: str) -> str:
    parts = pattern.split("/")
    keep: list[str] = []
    for p in parts[:-1]:
        if _GLOB.search(p):
            break
        keep.append(p)
    return "/".join(keep)


def resolve_files(ctx: WorkspaceContext, paths: list[tuple[str, str]]) -> list[DatasetFile]:
    """The files that (datastore, path-or-glob) pairs name, with size and sha256, sorted.

    A plain path names a file or every file under a folder. Refused (nothing stored): an
    unknown datastore (``NotFound``), a path leaving the datastore and a pattern that matches
    nothing (``InvalidParameter`` naming the pattern and the datastore).
    """
    if not paths:
        raise InvalidParameter("path", "give at least one (datastore, path) pair")
    out: dict[tuple[str, str], DatasetFile] = {}
    for ds_name, raw in paths:
        pattern = clean_relpath(raw, "path")
        backend = ds_svc.open_datastore(ctx, ds_name)
        if _GLOB.search(pattern):
            rx = glob_regex(pattern)
            listing = backend.listing(_static_prefix(pattern))
            hits = {n: e for n, e in listing.items() if rx.match(n)}
        else:
            listing = backend.listing(pattern)
            hits = {n: e for n, e in listing.items()
                    if not pattern or n == pattern or n.startswith(pattern + "/")}
        if not hits:
            raise InvalidParameter("path", f"{raw!r} matches no file on datastore {ds_name!r}; "
                                   "check the path or glob (e.g. 'data/**/*.csv') and that "
                                   "the files were uploaded")
        for n, e in hits.items():
            sha = e.sha256 or backend.remote_sha256(n)
            out[(ds_name, n)] = DatasetFile(ds_name, n, e.size, sha)
    return [out[k] for k in sorted(out)]


def register_dataset(ctx: WorkspaceContext, name: str, kind: str, definition: dict[str, Any],
                     files: list[DatasetFile], *, description: str | None = None,
                     tags: dict[str, str] | None = None,
                     create_new_version: bool = False) -> DatasetRecord:
    """Record a new version of ``name`` (see v1's ``register``).

    An existing name without ``create_new_version``: the latest version is returned when its
    definition and files are identical, else ``AlreadyExists``.
    """
    check_dataset_name(name)
    if kind not in KINDS:
        raise InvalidParameter("kind", f"{kind!r} is not a dataset kind (file or tabular)")
    clean_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    latest = ctx.store.get_dataset(name)
    if latest is not None and not create_new_version:
        if (latest.kind == kind and latest.definition == definition
                and list(latest.files) == list(files)):
            return latest
        raise AlreadyExists(f'There is already a dataset registered under name "{name}" '
                            f"(version {latest.version}) with another definition or other "
                            "files. Specify `create_new_version=True` to register a new "
                            "version.", details={"name": name})
    rec = DatasetRecord(name=name, version=0, kind=kind, description=description,
                        tags=clean_tags, definition=dict(definition), files=tuple(files),
                        total_size=sum(f.size for f in files), created_at=time.time())
    return ctx.store.add_dataset_version(rec)


def get_dataset(ctx: WorkspaceContext, name: str, version: int | None = None
                ) -> DatasetRecord:
    """A version of ``name`` (None: the latest); ``NotFound`` names what is missing."""
    rec = ctx.store.get_dataset(name, version)
    if rec is None:
        if version is not None and ctx.store.get_dataset(name) is not None:
            raise NotFound(f"dataset {name!r} has no version {version}; see "
                           f"'runyard dataset show {name}' for its versions",
                           details={"name": name, "version": version})
        raise NotFound(f'Dataset with name "{name}" is not registered in the workspace',
                       details={"name": name})
    return rec


def list_datasets(ctx: WorkspaceContext, name: str | None = None, *, latest: bool = False
                  ) -> list[DatasetRecord]:
    """Registered dataset versions (by name, newest first)."""
    return ctx.store.list_datasets(name, latest=latest)


def cache_dir(ctx: WorkspaceContext) -> Path:
    """The workspace's content-addressed cache of dataset files."""
    return ctx.dataset_cache_dir


def fetch_files(ctx: WorkspaceContext, files: list[DatasetFile]) -> tuple[list[Path], int]:
    """The cached copy of each file (fetching those not cached yet) and how many were fetched.

    A fetched file whose bytes are not the recorded ones raises ``DatasetChanged`` naming
    every such file (and nothing is added to the cache for them).
    """
    root = cache_dir(ctx)
    out: list[Path] = []
    changed: list[str] = []
    fetched = 0
    backends: dict[str, Any] = {}
    for f in files:
        dest = root / f.sha256[:2] / f.sha256
        if not dest.is_file():
            backend = backends.get(f.datastore) or ds_svc.open_datastore(ctx, f.datastore)
            backends[f.datastore] = backend
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            try:
                backend.get(f.path, tmp)
            except Exception:
                if f.path in backend.listing(f.path):
                    raise  # the file is there: a real failure, not a change
                changed.append(f"{f.datastore}:{f.path} (gone)")
                continue
            if sha256_file(tmp) != f.sha256:
                tmp.unlink()
                changed.append(f"{f.datastore}:{f.path}")
                continue
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
            fetched += 1
        out.append(dest)
    if changed:
        raise DatasetChanged(
            f"the bytes of {len(changed)} file(s) changed on the datastore since the dataset "
            f"was defined or registered: {', '.join(changed)}; the recorded bytes cannot be "
            "read any more: register a new version (create_new_version=True) to use the "
            "current files", details={"changed": changed})
    return out, fetched


def changed_files(ctx: WorkspaceContext, files: list[DatasetFile]) -> list[str]:
    """``datastore:path`` of each file whose current size or sha256 differs from the record
    (or that is gone), without fetching anything into the cache."""
    by_ds: dict[str, list[DatasetFile]] = {}
    for f in files:
        by_ds.setdefault(f.datastore, []).append(f)
    out: list[str] = []
    for ds_name, group in by_ds.items():
        backend = ds_svc.open_datastore(ctx, ds_name)
        listing = backend.listing("")
        for f in group:
            e = listing.get(f.path)
            if e is None or e.size != f.size or (e.sha256 or backend.remote_sha256(f.path)
                                                 ) != f.sha256:
                out.append(f"{ds_name}:{f.path}")
    return out
