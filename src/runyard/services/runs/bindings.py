"""The data a run reads and writes: named inputs (datasets, data references) and output folders.

At submit (:func:`collect`, :func:`prepare`), before anything is recorded, every input's files
are fetched into the workspace's content-addressed dataset cache (only files not cached yet
travel) and checked against their recorded sha256: a file changed on its datastore since the
dataset was defined fails the submit with ``DatasetChanged`` naming it (runyard reads the
recorded bytes or nothing). The job then carries, per input, the files as
``[relative name, sha256, size, "datastore:path"]`` rows; each target places the blobs in its
own per-host cache keyed by sha256 and the runner links (mount, direct) or copies (download)
them into a folder of the run. Outputs are folders the script fills; when its runner reports
Completed, :func:`finish_outputs` uploads them to their datastore (and registers a dataset
version where asked) before the run is recorded Completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from typing import TYPE_CHECKING, Any

from runyard.datastores.base import clean_relpath, source_files
from runyard.errors import InvalidParameter, RunyardError
from runyard.runtime.bindings import OUTPUTS_STAGING
from runyard.services import datasets as dsets
from runyard.services import datastores as ds_svc
from runyard.store.dataset_record import DatasetFile

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext
    from runyard.runconfig import RunConfiguration

__all__ = ["OUTPUTS_STAGING", "collect", "finish_outputs", "input_details", "prepare",
           "resolve_destinations"]



def collect(rc: RunConfiguration) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input and output bindings in the run's arguments (and command list), each once.

    Two different bindings under one name are refused naming it.
    """
    items: list[Any] = list(rc.arguments)
    if isinstance(rc.command, list | tuple):
        items.extend(rc.command)
    seen: dict[str, dict[str, Any]] = {}
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for item in items:
        fn = getattr(item, "_run_binding", None)
        if not callable(fn):
            continue
        binding: dict[str, Any] = fn()
        name = binding["name"]
        if name in seen:
            if seen[name] != binding:
                raise InvalidParameter("arguments", f"two different run inputs or outputs are "
                                       f"named {name!r}; give each its own name")
            continue
        seen[name] = binding
        (inputs if binding["role"] == "input" else outputs).append(binding)
    return inputs, outputs


def _rel_names(chosen: list[tuple[str, str]], every: list[tuple[str, str]],
               base: str | None) -> list[str]:
    """Names of the chosen files inside the input's folder: relative to the reference's
    path, or to the folder all of the dataset's files share (a single file keeps its name)."""
    if base is not None:
        cut = len(base.rstrip("/")) + 1 if base.strip("/") else 0
        return [p[cut:] if p != base else p.rsplit("/", 1)[-1] for _, p in chosen]
    if len(every) == 1:
        return [p.rsplit("/", 1)[-1] for _, p in chosen]
    folders = [p.split("/")[:-1] for _, p in every]
    lo, hi = min(folders), max(folders)  # what these two share, every path shares
    n = 0
    while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
        n += 1
    common = "/".join(lo[:n])
    cut = len(common) + 1 if common else 0
    return [p[cut:] for _, p in chosen]


def _manifest_sha(rows: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def prepare(ctx: WorkspaceContext, inputs: list[dict[str, Any]],
            outputs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The job rows of the inputs (their files fetched into the workspace cache and checked)
    and of the outputs (their datastores checked). Raises before anything is recorded."""
    job_inputs: list[dict[str, Any]] = []
    cache = os.fspath(ctx.dataset_cache_dir)
    for b in inputs:
        every: dict[tuple[str, str], list[Any]] = {(str(r[0]), str(r[1])): r
                                                   for r in b["files"]}
        direct_tabular = b["kind"] == "tabular"
        chosen_keys = (list(every) if direct_tabular
                       else [(str(a), str(p)) for a, p in b["chosen"] if (a, p) in every])
        base = b.get("base") if b["kind"] == "reference" else None
        names = _rel_names(chosen_keys, list(every), base)
        if len(set(names)) != len(names):
            raise InvalidParameter(b["name"], "two files of this input have the same path "
                                   "on different datastores; use one datastore per input")
        rows = []
        missing: list[DatasetFile] = []
        for n, key in zip(names, chosen_keys, strict=True):
            _ds, _path, size, sha = every[key]
            rows.append([n, str(sha), int(size), f"{key[0]}:{key[1]}"])
            if not os.path.isfile(f"{cache}/{str(sha)[:2]}/{sha}"):
                missing.append(DatasetFile(key[0], key[1], int(size), str(sha)))
        dsets.fetch_files(ctx, missing)  # DatasetChanged names every changed file
        job_inputs.append({k: b[k] for k in ("name", "token", "kind", "mode",
                                              "path_on_compute", "dataset", "options", "ops")}
                          | {"files": rows, "manifest_sha256": _manifest_sha(rows)})
    job_outputs: list[dict[str, Any]] = []
    for b in outputs:
        store = b["datastore"] or ds_svc.get_default(ctx).name
        ds_svc.get_datastore(ctx, store)  # NotFound names it
        job_outputs.append({"name": b["name"], "token": b["token"], "datastore": store,
                            "path": b["path"], "overwrite": bool(b["overwrite"]),
                            "register": b["register"]})
    return job_inputs, job_outputs


def resolve_destinations(outputs: list[dict[str, Any]], run_id: str) -> None:
    """Fill the ``{run-id}`` and ``{output-name}`` placeholders (in place) and check the
    resulting path stays inside its datastore."""
    for o in outputs:
        path = str(o["path"]).replace("{run-id}", run_id).replace("{output-name}", o["name"])
        o["path"] = clean_relpath(path, "destination")


def input_details(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``get_details()["inputDatasets"]`` entries: which dataset version (and exactly which
    bytes: file count, total size, manifest hash) each input used."""
    return [{"dataset": dict(i["dataset"]),
             "consumptionDetails": {"type": "RunInput", "inputName": i["name"],
                                    "mechanism": str(i["mode"]).capitalize(),
                                    "kind": i["kind"]},
             "files": len(i["files"]), "bytes": sum(int(r[2]) for r in i["files"]),
             "manifestSha256": i["manifest_sha256"]} for i in inputs]


def finish_outputs(ctx: WorkspaceContext, run_id: str, outputs: list[dict[str, Any]]) -> None:
    """Upload each output folder the runner staged under the run's artifacts to its datastore
    and register the dataset versions asked for; record them as run properties
    (``runyard.output.<name>`` = ``datastore:path``, ``runyard.output.<name>.dataset`` =
    ``name:version``). Idempotent: a repeat uploads nothing unchanged and registers once.
    Raises ``RunyardError`` on a failure (the caller fails the run with it)."""
    art = ctx.artifacts.local_dir(run_id)
    if art is None:
        raise RunyardError("output datasets need a folder artifact store")
    run = ctx.store.get_run(run_id)
    props = dict(run.properties) if run is not None else {}
    for o in outputs:
        name = o["name"]
        folder = art / OUTPUTS_STAGING / name
        files = source_files(folder) if folder.is_dir() else []
        backend = ds_svc.open_datastore(ctx, o["datastore"])
        if files:
            report = backend.upload(files, o["path"], overwrite=bool(o["overwrite"]),
                                    show_progress=False)
            if report.kept:
                raise RunyardError(
                    f"output {name!r}: {len(report.kept)} file(s) already exist on datastore "
                    f"{o['datastore']!r} with other content ({', '.join(report.kept[:3])}); "
                    "use a destination with {run-id}, or .as_upload(overwrite=True)")
        new = {f"runyard.output.{name}": f"{o['datastore']}:{o['path']}"}
        reg = o.get("register")
        key = f"runyard.output.{name}.dataset"
        if reg and files and key not in props:
            found = dsets.resolve_files(ctx, [(o["datastore"], o["path"])])
            rec = dsets.register_dataset(
                ctx, reg["name"], "file",
                {"paths": [[o["datastore"], o["path"]]], "options": {}, "ops": []}, found,
                description=reg.get("description"), tags=reg.get("tags") or {},
                create_new_version=True)
            new[key] = rec.id
        ctx.store.add_properties(run_id, {k: v for k, v in new.items() if k not in props})
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        (art / OUTPUTS_STAGING).rmdir()  # once empty
