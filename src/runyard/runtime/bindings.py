"""A run's data on the target: lay out its named inputs, render their tokens, stage outputs.

The job (``inputs``, ``outputs``, ``input_blobs``; see :mod:`runyard.runtime.jobwire`) lists
each input's files as ``[name in the input's folder, sha256, size, "datastore:path"]``. The
target has put every blob in its per-host cache, at ``input_blobs`` formatted with ``sha``,
``sha2`` (its first two hex digits) and ``rest`` (the other 62). Here each input becomes a
folder of the run: ``mount`` and ``direct`` link the cached files (read-only, nothing is
copied), ``download`` copies them (the script may write its copy). A cached file whose size is
not the recorded one fails the run before the script starts.

Tokens in the command (``DatasetConsumptionConfig:<name>``, ``$AZUREML_DATAREFERENCE_<name>``,
``DatasetOutputConfig:<name>``) become the input's path (the file itself when the input has
exactly one), a direct input's dataset id, or the output's empty folder. The script finds the
same in ``Run.get_context().input_datasets`` (the file named by ``RUNYARD_INPUTS_FILE``) and in
``AZUREML_DATAREFERENCE_<name>``. When the script ends with code 0 the runner moves each output
folder's regular files (links are never followed) to ``<artifacts>/.runyard-outputs/<name>/``,
from where the workspace uploads them to their datastore.

Standard library only (Python >= 3.8).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from runyard.runtime.jobwire import ENV_INPUTS_FILE

#: Under the run's artifacts: the output folders staged for the workspace to upload.
OUTPUTS_STAGING = ".runyard-outputs"
TOKEN = re.compile(r"DatasetConsumptionConfig:([A-Za-z_][A-Za-z0-9_]*)"
                   r"|DatasetOutputConfig:([A-Za-z_][A-Za-z0-9_]*)"
                   r"|\$AZUREML_DATAREFERENCE_([A-Za-z0-9_]+)")
_NAME = re.compile(r"[A-Za-z0-9_]{1,128}")
_SHA = re.compile(r"[0-9a-f]{64}")


class BindingError(Exception):
    """An input that cannot be laid out (the run fails with this message)."""


def _safe_rel(rel: Any, what: str) -> str:
    if (not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/")
            or any(p in ("", ".", "..") for p in rel.split("/"))):
        raise BindingError(f"{what}: {rel!r} is not a relative path inside the input")
    return rel


def blob_path(template: str, sha: str) -> str:
    """Where the target's cache keeps the blob ``sha``."""
    return template.format(sha=sha, sha2=sha[:2], rest=sha[2:])


def _place(src: str, dest: str, copy: bool) -> str:
    """Link (or copy) one cached file; returns "linked" or "copied"."""
    if os.path.lexists(dest):
        os.unlink(dest)
    if not copy:
        try:
            os.link(src, dest)
            return "linked"
        except OSError:  # another file system, or links not allowed: copy read-only
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o444)
            return "copied"
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o644)
    return "copied"


class Prepared:
    """What :func:`prepare` made: token values, script variables, the inputs file, counts."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.inputs: dict[str, Any] = {}
        self.linked = 0
        self.copied = 0
        self.reused = 0
        #: Linked files to check when the script has ended: (path in the input, cached blob,
        #: size, mtime_ns, ctime_ns, the shared view holding it or "").
        self.watch: list[tuple[str, str, int, int, int, str]] = []
        self.seconds = 0.0
        self.folders: list[str] = []

    def summary(self) -> str:
        return (f"[runyard] inputs ready: {len(self.inputs)} input(s), "
                f"{self.linked + self.copied + self.reused} file(s) ({self.reused} in views "
                f"already on this host, {self.linked} linked from the host cache, "
                f"{self.copied} copied) in {self.seconds:.3f} s")


def _dest(inp: dict[str, Any], run_dir: Path, workdir: Path, name: str) -> Path:
    poc = inp.get("path_on_compute")
    if poc:
        p = Path(str(poc))
        return p if p.is_absolute() else workdir / p
    return run_dir / "inputs" / name


def _lay_out(inp: dict[str, Any], name: str, template: str, dest: Path, copy: bool,
             out: Prepared, view: str = "") -> list[list[Any]]:
    """Link (or copy) every file of an input under ``dest``; returns the placed rows."""
    made: set[str] = set()
    placed: list[list[Any]] = []
    for row in inp.get("files") or []:
        rel, sha, size, where = _safe_rel(row[0], f"input {name!r}"), str(row[1]), \
            int(row[2]), str(row[3])
        if not _SHA.fullmatch(sha):
            raise BindingError(f"input {name!r}: {where}: bad sha256 {sha!r}")
        src = blob_path(template, sha)
        try:
            st = os.stat(src)
        except OSError:
            raise BindingError(f"input {name!r}: {where} (sha256 {sha[:12]}...) is not in "
                               "this host's data cache") from None
        if st.st_size != size:
            raise BindingError(f"input {name!r}: the cached copy of {where} has "
                               f"{st.st_size} bytes, not the recorded {size}: the host's "
                               "data cache was changed; remove that file from it and run "
                               "again")
        target = dest / rel
        parent = str(target.parent)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        how = _place(src, str(target), copy=copy)
        if how == "linked" and st.st_mode & 0o222:
            os.chmod(target, 0o444)  # the cached blob itself: read-only from now on
        if how == "linked":
            out.linked += 1
            now = os.stat(target)
            out.watch.append((str(target), src, size, now.st_mtime_ns, now.st_ctime_ns, view))
        else:
            out.copied += 1
        placed.append([where, str(target), size])
    return placed


def _read_only_tree(root: Path) -> None:
    """Folders of a shared view become read-only (files are read-only cache links)."""
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.chmod(dirpath, 0o555)


def _shared_view(inp: dict[str, Any], name: str, template: str, views: str,
                 out: Prepared) -> tuple[Path, list[list[Any]]]:
    """The read-only view of an input's files shared by every run on this host that reads the
    same files under the same names (keyed by the manifest's sha256): built once, then reused
    as it is (a second run lays out nothing)."""
    key = str(inp.get("manifest_sha256") or "")
    if not _SHA.fullmatch(key):
        raise BindingError(f"input {name!r}: bad manifest hash {key!r}")
    final = Path(views) / key
    rows = inp.get("files") or []
    if final.is_dir():  # views are published whole (a rename of a complete folder)
        placed = _check_view(rows, name, template, final, out)
        if placed is not None:
            out.reused += len(rows)
            return final, placed
        _remove_view(str(final))  # a blob was fetched again since: build the view anew
    tmp = Path(views) / f".tmp-{key[:16]}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    placed = _lay_out(inp, name, template, tmp, False, out, view=str(final))
    _read_only_tree(tmp)
    try:
        os.rename(tmp, final)
    except OSError:  # another run published the same view first
        for dirpath, _dirs, _files in os.walk(tmp):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise BindingError(f"input {name!r}: could not publish its view in {views}"
                               ) from None
    prefix = str(tmp)
    out.watch = [(str(final) + w[0][len(prefix):], *w[1:]) if w[0].startswith(prefix + "/")
                 else w for w in out.watch]
    return final, [[w, str(final) + p[len(prefix):], size] for w, p, size in placed]


def _remove_view(view: str) -> None:
    with contextlib.suppress(OSError):
        os.chmod(view, 0o755)
    for dirpath, _dirs, _files in os.walk(view):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(view, ignore_errors=True)


def _check_view(rows: list[Any], name: str, template: str, final: Path, out: Prepared
                ) -> list[list[Any]] | None:
    """The placed rows of an existing view when each of its files is still the cached blob
    (same inode) of the recorded size; None when a blob was replaced (the view must be built
    again); ``BindingError`` when a cached blob is missing or has the wrong size."""
    placed: list[list[Any]] = []
    for r in rows:
        rel, sha, size, where = _safe_rel(r[0], f"input {name!r}"), str(r[1]), int(r[2]), \
            str(r[3])
        if not _SHA.fullmatch(sha):
            raise BindingError(f"input {name!r}: {where}: bad sha256 {sha!r}")
        src = blob_path(template, sha)
        path = str(final / rel)
        try:
            blob = os.stat(src)
        except OSError:
            return None  # gone from the cache: the layout names it
        if blob.st_size != size:
            raise BindingError(f"input {name!r}: the cached copy of {where} has "
                               f"{blob.st_size} bytes, not the recorded {size}: the host's "
                               "data cache was changed; remove that file from it and run "
                               "again")
        try:
            mine = os.stat(path)
        except OSError:
            return None
        if (mine.st_ino, mine.st_dev) != (blob.st_ino, blob.st_dev):
            return None
        out.watch.append((path, src, size, mine.st_mtime_ns, mine.st_ctime_ns, str(final)))
        placed.append([where, path, size])
    return placed


def check_after(prepared: Prepared) -> list[str]:
    """After the script ended: every linked input file it changed (written through the
    read-only bits, as root can, or touched) is removed from this host's cache with its
    shared view, so later runs fetch the recorded bytes again. Returns the changed paths."""
    changed: list[str] = []
    for path, blob, size, mtime, ctime, view in prepared.watch:
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (size, mtime,
                                                                                ctime):
            continue
        changed.append(path)
        with contextlib.suppress(OSError):
            os.unlink(blob)
        if view:
            _remove_view(view)
    return changed


def prepare(job: dict[str, Any], workdir: Path) -> Prepared:
    """Lay out every input and make every output folder (see the module docs)."""
    started = time.monotonic()
    out = Prepared()
    run_dir = workdir.parent
    template = str(job.get("input_blobs") or "")
    views = str(job.get("input_views") or "")
    for inp in job.get("inputs") or []:
        name = str(inp.get("name", ""))
        if not _NAME.fullmatch(name):
            raise BindingError(f"input name {name!r} is not valid")
        mode = str(inp.get("mode", "mount"))
        kind = str(inp.get("kind", "file"))
        if not template:
            raise BindingError(f"input {name!r}: this target gave no data cache")
        if mode != "download" and views and not inp.get("path_on_compute"):
            dest, placed = _shared_view(inp, name, template, views, out)
        else:
            dest = _dest(inp, run_dir, workdir, name)
            placed = _lay_out(inp, name, template, dest, mode == "download", out)
            if not inp.get("path_on_compute"):
                out.folders.append(str(dest))
        if not placed:
            os.makedirs(dest, exist_ok=True)
        single = len(placed) == 1 and kind != "tabular" and mode != "direct"
        path = placed[0][1] if single else str(dest)
        dataset = inp.get("dataset") or {}
        value = path if mode != "direct" else str(dataset.get("id") or name)
        out.values[str(inp.get("token", ""))] = value
        out.env[f"AZUREML_DATAREFERENCE_{name}"] = path
        out.inputs[name] = {"kind": kind, "mode": mode, "path": path, "dataset": dataset,
                            "options": inp.get("options") or {}, "ops": inp.get("ops") or [],
                            "files": placed}
    for o in job.get("outputs") or []:
        name = str(o.get("name", ""))
        if not _NAME.fullmatch(name):
            raise BindingError(f"output name {name!r} is not valid")
        folder = run_dir / "outputs_data" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        out.values[str(o.get("token", ""))] = str(folder)
        out.env[f"AZUREML_DATAREFERENCE_{name}"] = str(folder)
    if out.inputs:
        inputs_file = run_dir / "inputs.json"
        inputs_file.write_text(json.dumps({"version": 1, "inputs": out.inputs}))
        out.env[ENV_INPUTS_FILE] = str(inputs_file)
    out.seconds = time.monotonic() - started
    return out


def render(command: list[str], values: dict[str, str]) -> list[str]:
    """``command`` with every known token replaced (unknown ones are left as they are)."""
    return [TOKEN.sub(lambda m: values.get(m.group(0), m.group(0)), str(c)) for c in command]


def stage_outputs(job: dict[str, Any], workdir: Path, artifacts: Path
                  ) -> list[tuple[str, int]]:
    """Move each output folder's regular files under ``<artifacts>/.runyard-outputs/<name>/``
    (links are skipped); returns (staged name, size) pairs."""
    staged: list[tuple[str, int]] = []
    for o in job.get("outputs") or []:
        name = str(o.get("name", ""))
        if not _NAME.fullmatch(name):
            continue
        src = workdir.parent / "outputs_data" / name
        if not src.is_dir() or src.is_symlink():
            continue
        dest_root = artifacts / OUTPUTS_STAGING / name
        for dirpath, dirs, files in os.walk(src):
            here = Path(dirpath)
            dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
            for fname in files:
                full = here / fname
                if full.is_symlink() or not full.is_file():
                    continue
                rel = full.relative_to(src).as_posix()
                dest = dest_root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                size = full.stat().st_size
                shutil.move(str(full), str(dest))
                staged.append((f"{name}/{rel}", size))
    return staged


def remove(job: dict[str, Any], workdir: Path, folders: list[str]) -> None:
    """Remove the run's input folders and output folders (the host cache stays)."""
    for folder in [*folders, str(workdir.parent / "inputs")]:
        shutil.rmtree(folder, ignore_errors=True)
    if job.get("outputs"):
        shutil.rmtree(workdir.parent / "outputs_data", ignore_errors=True)
