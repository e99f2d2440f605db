"""The model registry: register, list, get, download, tag and delete model versions.

A model version's files are stored content-addressed in the workspace's snapshot store (the
same blobs as code snapshots: the same bytes are kept once, whoever stored them first), and
recorded as a manifest ``(path, blob, size)`` in the model's row. Registering hashes and copies
each file in one pass; registering unchanged files again reads nothing (the stat cache).

Bad input is refused before anything is recorded; a registration that fails after its bytes
were stored leaves only unreferenced blobs, which ``runyard gc`` removes. ``runyard gc`` keeps
every blob a model version refers to.

Deleting a version is refused while something refers to it: :func:`model_references` lists
those. Today nothing in a workspace refers to a model version (published pipelines and
deployments will plug in there), so every version can be deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from runyard.errors import AlreadyExists, InvalidParameter, NotFound
from runyard.naming import check_values
from runyard.store.model_record import ModelFile, ModelRecord

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext

#: Azure ML's rule for model names.
MODEL_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-\._]{0,254}$")

#: Functions naming what refers to a model version (``"pipeline p1"``): deletion is refused
#: while any returns something. Pipelines and deployments register theirs here.
REFERENCE_CHECKS: list[Callable[[WorkspaceContext, str, int], list[str]]] = []


def check_model_name(name: object) -> str:
    """``name`` if it follows Azure's rule, else InvalidParameter on ``model_name``."""
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise InvalidParameter(
            "model_name", f"{name!r} is not a valid model name: 1-255 characters, letters, "
            "digits, '-', '.' and '_', starting with a letter or digit")
    return name


def check_version(version: object) -> int | None:
    """A version number (an int >= 1, or a string of digits) or None for the latest."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int | str) \
            or not str(version).isdigit() or int(version) < 1:
        raise InvalidParameter("version", f"{version!r} is not a model version (an integer "
                               ">= 1, or None for the latest)")
    return int(version)


def _clean_rel(rel: str, field: str) -> str:
    """A relative posix path without ``..``, or InvalidParameter on ``field``."""
    p = PurePosixPath(rel.replace("\\", "/"))
    if not rel or p.is_absolute() or ".." in p.parts:
        raise InvalidParameter(field, f"{rel!r} must be a relative path inside the model "
                               "(no leading '/', no '..')")
    return str(p)


def _walk(folder: Path) -> list[str]:
    """Every regular file under ``folder`` (relative posix paths, sorted); links are refused."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            if full.is_symlink():
                raise InvalidParameter("model_path", f"{full} is a symbolic link; register "
                                       "the file it points to instead")
        out.extend(Path(dirpath, f).relative_to(folder).as_posix() for f in filenames)
    return sorted(out)


def _metadata(tags: Mapping[str, Any] | None, properties: Mapping[str, Any] | None
              ) -> tuple[dict[str, str], dict[str, str]]:
    clean_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    clean_props = {str(k): str(v) for k, v in (properties or {}).items()}
    check_values("tags", dict(clean_tags), allow_none=False)
    check_values("properties", dict(clean_props), allow_none=False)
    return clean_tags, clean_props


def _datasets(datasets: Any) -> list[dict[str, Any]]:
    """v1's ``datasets=[(scenario, dataset), ...]`` as ``[{"scenario", "id"}]``."""
    out: list[dict[str, Any]] = []
    for item in datasets or []:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidParameter("datasets", f"{item!r} is not a (scenario, dataset) pair, "
                                   "e.g. ('training', train_ds)")
        scenario, ds = item
        ds_id = getattr(ds, "id", None) or getattr(ds, "name", None) or str(ds)
        out.append({"scenario": str(scenario), "id": str(ds_id),
                    "name": getattr(ds, "name", None), "version": getattr(ds, "version", None)})
    return out


def _run_inputs(ctx: WorkspaceContext, run_id: str) -> list[dict[str, Any]]:
    """The registered datasets run ``run_id`` read (its ``inputDatasets``), linked to a
    model the run registers (scenario ``training``, as v1's run-linked lineage)."""
    run = ctx.store.get_run(run_id)
    out: list[dict[str, Any]] = []
    for item in (run.definition.get("inputDatasets") or []) if run is not None else []:
        d = item.get("dataset") or {}
        if d.get("id"):
            out.append({"scenario": "training", "id": str(d["id"]), "name": d.get("name"),
                        "version": d.get("version"),
                        "input": (item.get("consumptionDetails") or {}).get("inputName")})
    return out


def register_model(ctx: WorkspaceContext, model_path: str | os.PathLike[str], model_name: str,
                   *, tags: Mapping[str, Any] | None = None,
                   properties: Mapping[str, Any] | None = None,
                   description: str | None = None, datasets: Any = None,
                   model_framework: str | None = None,
                   model_framework_version: str | None = None,
                   child_paths: list[str] | None = None,
                   run_id: str | None = None, experiment: str | None = None) -> ModelRecord:
    """Register the local file or folder ``model_path`` as the next version of
    ``model_name`` (``child_paths``: only those files of the folder)."""
    check_model_name(model_name)
    clean_tags, clean_props = _metadata(tags, properties)
    ds = _datasets(datasets) if datasets is not None or run_id is None \
        else _run_inputs(ctx, run_id)
    path = Path(os.fspath(model_path))
    if not path.exists():
        raise InvalidParameter(
            "model_path", f'Error, provided model path "{os.fspath(model_path)}" cannot be '
            "found", details={"model_path": os.fspath(model_path)})
    path = path.resolve()
    root = path.name
    if path.is_dir():
        rels = _walk(path)
        if child_paths is not None:
            wanted = [_clean_rel(str(c), "child_paths") for c in child_paths]
            missing = [c for c in wanted if c not in set(rels)]
            if missing:
                raise InvalidParameter("child_paths", f"{missing[0]!r} is not a file in {path}")
            rels = wanted
        if not rels:
            raise InvalidParameter("model_path", f"the folder {path} holds no files")
        source, rels = path.parent, [f"{root}/{r}" for r in rels]
    elif path.is_file():
        source, rels = path.parent, [root]
    else:
        raise InvalidParameter("model_path", f"{path} is neither a file nor a folder")
    stored = ctx.snapshots.ingest_files(source, rels)
    files = tuple(ModelFile(rel, blob, size) for rel, (blob, size) in zip(rels, stored,
                                                                          strict=True))
    rec = ModelRecord(name=model_name, version=0, description=description,
                      framework=model_framework, framework_version=model_framework_version,
                      tags=clean_tags, properties=clean_props, run_id=run_id,
                      experiment=experiment, datasets=ds, root=root, files=files,
                      total_size=sum(f.size for f in files), created_at=time.time())
    return ctx.store.add_model_version(rec)


def register_run_model(ctx: WorkspaceContext, run_id: str, model_name: str,
                       model_path: str = "outputs/model.pkl", **kwargs: Any) -> ModelRecord:
    """Register the artifact file or folder ``model_path`` of run ``run_id`` (linking the
    run and its experiment)."""
    check_model_name(model_name)
    run = ctx.store.get_run(run_id)
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist")
    rel = _clean_rel(str(model_path).rstrip("/"), "model_path")
    names = {f.name for f in ctx.store.list_files(run_id)}
    local = ctx.artifacts.local_dir(run_id)
    if local is not None and (local / rel).exists():
        names |= {rel} if (local / rel).is_file() else {f"{rel}/{r}" for r in _walk(local / rel)}
    inside = sorted(n for n in names if n == rel or n.startswith(rel + "/"))
    if not inside:
        raise InvalidParameter(
            "model_path", f"run {run_id} has no artifact {rel!r}; its files: "
            f"{', '.join(sorted(names)[:10]) or 'none'} (see run.get_file_names())",
            details={"model_path": rel})
    if local is not None and (local / rel).exists():
        return register_model(ctx, local / rel, model_name, run_id=run_id,
                              experiment=run.experiment, **kwargs)
    with tempfile.TemporaryDirectory(prefix="runyard-model-") as tmp:  # remote artifacts
        for name in inside:
            ctx.artifacts.get_file(run_id, name, Path(tmp) / name)
        return register_model(ctx, Path(tmp) / rel, model_name, run_id=run_id,
                              experiment=run.experiment, **kwargs)


def get_model(ctx: WorkspaceContext, name: str, version: Any = None) -> ModelRecord:
    """A model version (default: the latest); NotFound naming name and version."""
    check_model_name(name)
    v = check_version(version)
    rec = ctx.store.get_model(name, v)
    if rec is None:
        what = f"version {v} of model {name!r}" if v else f"model {name!r}"
        known = [m.version for m in ctx.store.list_models(name)]
        hint = (f"its versions: {', '.join(map(str, known))}" if known
                else "no model of that name is registered (see Model.list)")
        raise NotFound(f"{what} not found in workspace {ctx.name!r}; {hint}",
                       details={"name": name, "version": v})
    return rec


def list_models(ctx: WorkspaceContext, name: str | None = None, *,
                tags: Mapping[str, str | None] | None = None,
                properties: Mapping[str, str | None] | None = None,
                run_id: str | None = None, latest: bool = False) -> list[ModelRecord]:
    """Model versions matching the filters (see ``WorkspaceStore.list_models``)."""
    return ctx.store.list_models(name, tags=tags, properties=properties, run_id=run_id,
                                 latest=latest)


def download_model(ctx: WorkspaceContext, name: str, version: Any, target_dir: str | Path,
                   *, exist_ok: bool = False) -> Path:
    """Write the model's files under ``target_dir``; returns ``target_dir/<root>``.

    Refuses (AlreadyExists) to replace existing files unless ``exist_ok``.
    """
    rec = get_model(ctx, name, version)
    dest = Path(target_dir)
    targets = [(f, dest / _clean_rel(f.path, "files")) for f in rec.files]
    if not exist_ok:
        there = [str(p) for _, p in targets if p.exists()]
        if there or (dest / rec.root).exists():
            raise AlreadyExists(f"{there[0] if there else dest / rec.root} already exists; "
                                "pass exist_ok=True to overwrite it")
    for f, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        blob = ctx.snapshots.blob_path(f.blob)
        if not blob.is_file():
            raise NotFound(f"model {rec.id}: the content of {f.path} ({f.blob}) is missing "
                           f"from the workspace's store at {blob}")
        shutil.copyfile(blob, target)
    return dest / rec.root


def update_model(ctx: WorkspaceContext, name: str, version: int, *,
                 tags: Mapping[str, Any] | None = None, remove_tags: list[str] | None = None,
                 properties: Mapping[str, Any] | None = None,
                 description: str | None = None) -> ModelRecord:
    """Add or remove tags, add properties (an existing property never changes), change the
    description."""
    rec = get_model(ctx, name, version)
    clean_tags, clean_props = _metadata(tags, properties)
    changed = [k for k, v in clean_props.items() if k in rec.properties
               and rec.properties[k] != v]
    if changed:
        raise InvalidParameter("properties", f"property {changed[0]!r} of model {rec.id} is "
                               f"already {rec.properties[changed[0]]!r}; properties cannot "
                               "change (use a tag for a mutable value)")
    return ctx.store.update_model(name, rec.version, tags=clean_tags,
                                  remove_tags=list(remove_tags or []), properties=clean_props,
                                  description=description)


def model_references(ctx: WorkspaceContext, name: str, version: int) -> list[str]:
    """What in the workspace refers to this model version (see :data:`REFERENCE_CHECKS`)."""
    return [ref for check in REFERENCE_CHECKS for ref in check(ctx, name, version)]


def delete_model(ctx: WorkspaceContext, name: str, version: Any) -> ModelRecord:
    """Delete one version (refused while :func:`model_references` names something); its
    blobs are left for ``runyard gc``."""
    v = check_version(version)
    if v is None:
        raise InvalidParameter("version", "name the version to delete (e.g. version=1)")
    rec = get_model(ctx, name, v)
    refs = model_references(ctx, name, v)
    if refs:
        raise InvalidParameter("version", f"model {rec.id} is still referenced by "
                               f"{', '.join(refs)}; remove those first",
                               details={"references": refs})
    ctx.store.delete_model(name, v)
    return rec
