"""The run context seen from inside a script: ``Run.get_context()``.

``LiveRun`` writes tracking events to the run's spool (see :mod:`runyard.runtime.spool`);
``OfflineRun`` is what a script gets when it runs outside runyard: it prints what it would log.
Standard library only.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import shutil
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

from runyard.runtime.jobwire import (
    ENV_ARTIFACTS_DIR,
    ENV_ATTEMPT,
    ENV_EXPERIMENT,
    ENV_INPUTS_FILE,
    ENV_PROPERTIES,
    ENV_RUN_ID,
    ENV_SPOOL_DIR,
    ENV_TAGS,
    ENV_WORKSPACE_NAME,
)
from runyard.runtime.spool import SpoolWriter

ENV_WORKSPACE = ENV_WORKSPACE_NAME
__all__ = ["ENV_ARTIFACTS_DIR", "ENV_ATTEMPT", "ENV_EXPERIMENT", "ENV_PROPERTIES", "ENV_RUN_ID",
           "ENV_SPOOL_DIR", "ENV_TAGS", "ENV_WORKSPACE", "ExperimentInfo", "LiveRun",
           "OfflineRun", "TrackingError", "check_artifact_name", "get_context",
           "start_interactive"]

_FLUSH_ROWS = 20_000
_RUN_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,400}$", re.ASCII)
_FLUSH_SECONDS = 0.5


class TrackingError(ValueError):
    """A tracking call was given bad input (stdlib-only twin of ``InvalidParameter``)."""


#: Tag and property values longer than this are cut (the workspace applies the same cap).
MAX_VALUE_CHARS = 4096


def _cap(value: str) -> str:
    if len(value) <= MAX_VALUE_CHARS:
        return value
    keep = MAX_VALUE_CHARS - 40
    return value[:keep] + f"…[truncated {len(value) - keep} chars]"


def check_artifact_name(name: str) -> str:
    """Return ``name`` as a clean relative posix path or raise ``TrackingError``."""
    if not isinstance(name, str) or not name.strip():
        raise TrackingError("name: an artifact name must be a non-empty relative path")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise TrackingError(
            f"name: {name!r} must be a relative path inside the run (no leading '/', no '..')"
        )
    return str(p)


def _metric_value(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return value
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        try:
            return _metric_value(name, value.item())
        except ValueError as exc:
            raise TrackingError(f"value of metric {name!r}: expected a single number, got "
                                f"{type(value).__name__} ({exc}); use log_list for several "
                                "values") from exc
    raise TrackingError(f"value of metric {name!r}: expected int, float, bool or str, "
                        f"got {type(value).__name__}")


class _Tracker:
    """Shared tracking machinery: batches metric rows and writes events to a spool."""

    def __init__(self, writer: SpoolWriter) -> None:
        self.writer = writer
        # (run id, metric name, kind) -> [steps, values, times]: column-wise, cheap to encode
        self._series: dict[tuple[str, str, str], tuple[list[int], list[Any], list[float]]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flusher, name="runyard-flush", daemon=True)
        self._thread.start()

    def add_row(self, run_id: str, name: str, kind: str, step: int, value: Any) -> None:
        with self._lock:
            cols = self._series.get((run_id, name, kind))
            if cols is None:
                cols = self._series[(run_id, name, kind)] = ([], [], [])
            cols[0].append(step)
            cols[1].append(value)
            cols[2].append(time.time())
            self._count += 1
            full = self._count >= _FLUSH_ROWS
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            series, self._series = self._series, {}
            self._count = 0
        for (run_id, name, kind), (steps, values, times) in series.items():
            self.writer.emit("metrics", run_id=run_id, name=name, kind=kind, steps=steps,
                             values=values, times=times)

    def _flusher(self) -> None:
        while not self._stop.wait(_FLUSH_SECONDS):
            if self._count:
                self.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.flush()


class _TrackingMixin:
    """The Azure-ML-v1 logging API, shared by live, child and offline runs."""

    id: str

    def _emit_metric(self, name: str, kind: str, value: Any, step: int | None) -> None:
        raise NotImplementedError

    def _next_step(self, name: str, step: int | None) -> int:
        steps: dict[str, int] = self.__dict__.setdefault("_steps", {})
        s = steps.get(name, 0) if step is None else int(step)
        steps[name] = s + 1
        return s

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a scalar; logging the same name again builds a series."""
        self._emit_metric(name, "scalar", _metric_value(name, value), step)

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log a list of values as one metric."""
        self._emit_metric(name, "list", [_metric_value(name, v) for v in value], None)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one row of a table metric; repeated calls append rows."""
        row = {k: _metric_value(name, v) for k, v in kwargs.items()}
        self._emit_metric(name, "row", row, None)

    def log_table(self, name: str, value: Mapping[str, Iterable[Any]],
                  description: str = "") -> None:
        """Log a table given as a dict of column name to list of values."""
        if not isinstance(value, Mapping):
            raise TrackingError(f"value of table {name!r}: expected a dict of column -> list")
        table = {str(k): [_metric_value(name, x) for x in v] for k, v in value.items()}
        self._emit_metric(name, "table", table, None)

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        """Log a JSON-serializable structured metric."""
        self._emit_metric(name, "json", json.loads(json.dumps(value)), None)

    log_confusion_matrix = log_accuracy_table
    log_predictions = log_accuracy_table
    log_residuals = log_accuracy_table


class OfflineRun(_TrackingMixin):
    """What ``Run.get_context()`` returns outside runyard: prints instead of recording."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.id = f"OfflineRun_{uuid.uuid4()}"
        self._out = out
        self.tags: dict[str, Any] = {}
        self.properties: dict[str, Any] = {}
        self.parent: OfflineRun | None = None

    def _print(self, msg: str) -> None:
        print(f"[runyard offline] {msg}", file=self._out or sys.stdout)

    def _emit_metric(self, name: str, kind: str, value: Any, step: int | None) -> None:
        self._print(f"{name} = {value!r}" if kind == "scalar" else f"{name} ({kind}) = {value!r}")

    def log_image(self, name: str, path: str | None = None, plot: Any = None,
                  description: str = "") -> None:
        """Print where the image would be logged from."""
        self._print(f"image {name} from {path or 'plot'}")

    def tag(self, key: str, value: Any = None) -> None:
        """Record a tag locally."""
        self.tags[key] = value
        self._print(f"tag {key} = {value!r}")

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Record several tags locally."""
        for k, v in tags.items():
            self.tag(k, v)

    def get_tags(self) -> dict[str, Any]:
        """Tags set so far."""
        return dict(self.tags)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Record immutable properties locally."""
        _check_props(self.properties, properties)
        self.properties.update({k: str(v) for k, v in properties.items()})

    def get_properties(self) -> dict[str, Any]:
        """Properties set so far."""
        return dict(self.properties)

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        """Print the upload that would happen."""
        self._print(f"upload {check_artifact_name(name)}")

    def upload_folder(self, name: str, path: str) -> None:
        """Print the upload that would happen."""
        self._print(f"upload folder {path} as {check_artifact_name(name)}")

    def child_run(self, name: str | None = None, run_id: str | None = None,
                  outputs: str | None = None) -> OfflineRun:
        """An offline child."""
        child = OfflineRun(self._out)
        child.parent = self
        return child

    def create_children(self, count: int | None = None, tag_key: str | None = None,
                        tag_values: Iterable[str] | None = None) -> list[OfflineRun]:
        """Offline children."""
        return [self.child_run() for _ in range(_child_count(count, tag_values))]

    def flush(self) -> None:
        """Nothing to flush offline."""

    def complete(self) -> None:
        """Nothing to complete offline."""

    def fail(self, error_details: Any = None, **kwargs: Any) -> None:
        """Nothing to fail offline."""

    def get_status(self) -> str:
        """Always Running."""
        return "Running"

    @property
    def input_datasets(self) -> dict[str, Any]:
        """No inputs outside runyard: ``{}``."""
        return {}

    def __enter__(self) -> OfflineRun:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __repr__(self) -> str:
        return f"OfflineRun(id={self.id!r})"


def _check_props(existing: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    for k, v in new.items():
        if k in existing and existing[k] != str(v):
            raise TrackingError(
                f"properties[{k!r}]: properties are immutable; it is already "
                f"{existing[k]!r}, cannot set it to {str(v)!r} (use a tag for mutable values)"
            )


def _child_count(count: int | None, tag_values: Iterable[str] | None) -> int:
    if count is None and tag_values is None:
        raise TrackingError("count: give count or tag_values")
    return int(count) if count is not None else len(list(tag_values or []))


class ExperimentInfo:
    """What a script knows of its experiment: names only (``run.experiment.name``)."""

    def __init__(self, name: str, workspace_name: str = "") -> None:
        self.name = name
        self.workspace_name = workspace_name

    @property
    def workspace(self) -> Any:
        """Not available inside a run: the script never opens the workspace."""
        raise TrackingError(
            "run.experiment.workspace: a script running under runyard does not open the "
            "workspace (it may run on a host that cannot reach it); pass what the script needs "
            "as arguments, or use run.experiment.name / run.experiment.workspace_name")

    def __repr__(self) -> str:
        return f"ExperimentInfo(name={self.name!r}, workspace_name={self.workspace_name!r})"


class LiveRun(_TrackingMixin):
    """A run recorded by runyard, seen from inside the process that tracks it.

    Used for submitted scripts (via environment variables set by the runner) and for
    interactive runs (``Experiment.start_logging``). Children share the parent's tracker.
    """

    def __init__(self, run_id: str, tracker: _Tracker, artifacts_dir: Path, *,
                 experiment_name: str = "", parent: LiveRun | None = None,
                 properties: Mapping[str, str] | None = None,
                 tags: Mapping[str, Any] | None = None, workspace_name: str = "") -> None:
        self.id = run_id
        self._tracker = tracker
        #: Where this run's artifacts live: ``<runs root>/<run id>/artifacts``.
        self.artifacts_dir = artifacts_dir
        self.experiment_name = experiment_name
        self.parent = parent
        self._properties: dict[str, str] = dict(properties or {})
        self._tags: dict[str, Any] = dict(tags or {})
        self._workspace_name = workspace_name
        self._finished = False
        #: The inputs file of a submitted script (``RUNYARD_INPUTS_FILE``); None: no inputs.
        self._inputs_file: str | None = None
        self._inputs: dict[str, Any] | None = None

    # -- metrics -----------------------------------------------------------------------------
    def _emit_metric(self, name: str, kind: str, value: Any, step: int | None) -> None:
        if not isinstance(name, str) or not name:
            raise TrackingError("name: a metric name must be a non-empty string")
        self._tracker.add_row(self.id, name, kind, self._next_step(name, step), value)

    def log_image(self, name: str, path: str | os.PathLike[str] | None = None, plot: Any = None,
                  description: str = "") -> None:
        """Log an image from a file ``path`` or a matplotlib figure / ``pyplot`` (``plot``)."""
        if (path is None) == (plot is None):
            raise TrackingError("path/plot: give exactly one of path or plot")
        safe = check_artifact_name(name).replace("/", "_")
        if path is not None:
            suffix = Path(path).suffix or ".png"
            artifact = f"images/{safe}{suffix}"
            self.upload_file(artifact, path)
        else:
            artifact = f"images/{safe}.png"
            dest = self.artifacts_dir / artifact
            dest.parent.mkdir(parents=True, exist_ok=True)
            plot.savefig(str(dest), format="png")
            self._tracker.writer.emit("files", run_id=self.id,
                                      files=[[artifact, dest.stat().st_size]])
        self._emit_metric(name, "image", {"artifact": artifact}, None)

    def flush(self) -> None:
        """Write buffered metrics to the spool now."""
        self._tracker.flush()

    # -- tags & properties -------------------------------------------------------------------
    def tag(self, key: str, value: Any = None) -> None:
        """Set a (mutable) tag; ``value`` None stores the key alone."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        clean = {str(k): (None if v is None else _cap(str(v))) for k, v in tags.items()}
        self._tags.update(clean)
        self._tracker.writer.emit("tags", run_id=self.id, tags=clean)

    def get_tags(self) -> dict[str, Any]:
        """The tags this process knows of."""
        return dict(self._tags)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Add immutable properties; re-adding a key with another value raises."""
        _check_props(self._properties, properties)
        clean = {str(k): str(v) for k, v in properties.items()}
        self._properties.update(clean)
        self._tracker.writer.emit("properties", run_id=self.id, properties=clean)

    def get_properties(self) -> dict[str, str]:
        """The properties this process knows of."""
        return dict(self._properties)

    # -- files -------------------------------------------------------------------------------
    def upload_file(self, name: str, path_or_stream: Any) -> None:
        """Store a file (a path or a binary stream) as artifact ``name``."""
        artifact = check_artifact_name(name)
        dest = self.artifacts_dir / artifact
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(path_or_stream, (str, os.PathLike)):
            src = Path(path_or_stream)
            if not src.is_file():
                raise TrackingError(f"path_or_stream: {str(src)!r} is not a file")
            if src.resolve() != dest.resolve():
                shutil.copyfile(src, dest)
        else:
            with open(dest, "wb") as fh:
                shutil.copyfileobj(path_or_stream, fh)
        self._tracker.writer.emit("files", run_id=self.id, files=[[artifact, dest.stat().st_size]])

    def upload_files(self, names: Iterable[str], paths: Iterable[str]) -> None:
        """Upload several files (``names`` and ``paths`` must have the same length)."""
        names, paths = list(names), list(paths)
        if len(names) != len(paths):
            raise TrackingError(f"names/paths: {len(names)} names for {len(paths)} paths; "
                                "give one name per path")
        for n, p in zip(names, paths):  # noqa: B905 (strict= needs 3.10; runtime: 3.8)
            self.upload_file(n, p)

    def upload_folder(self, name: str, path: str | os.PathLike[str]) -> None:
        """Upload every file under ``path`` as ``name/<relative path>``."""
        root = Path(path)
        if not root.is_dir():
            raise TrackingError(f"path: {str(root)!r} is not a directory")
        prefix = check_artifact_name(name)
        for f in sorted(root.rglob("*")):
            if f.is_file():
                self.upload_file(f"{prefix}/{f.relative_to(root).as_posix()}", f)

    # -- children ----------------------------------------------------------------------------
    def child_run(self, name: str | None = None, run_id: str | None = None,
                  outputs: str | None = None) -> LiveRun:
        """Start a child run (usable as a context manager).

        Child ids live under their parent's: ``<parent id>_<suffix>``; a ``run_id`` given here
        becomes the suffix unless it already starts with ``<parent id>_`` (the workspace
        refuses a child outside its parent's ids, or one that would replace an existing run).
        """
        if run_id is None:
            cid = f"{self.id}_{uuid.uuid4().hex[:8]}"
        else:
            cid = run_id if run_id.startswith(f"{self.id}_") else f"{self.id}_{run_id}"
        if not _RUN_ID.fullmatch(cid):
            raise TrackingError(f"run_id: {cid!r} is not a valid run id (letters, digits, "
                                "'-', '_' and '.', no path separators)")
        self._tracker.writer.emit("child", run_id=cid, parent_id=self.id, display_name=name,
                                  tags={})
        return LiveRun(cid, self._tracker, self.artifacts_dir.parent.parent / cid / "artifacts",
                       experiment_name=self.experiment_name, parent=self,
                       workspace_name=self._workspace_name)

    def create_children(self, count: int | None = None, tag_key: str | None = None,
                        tag_values: Iterable[str] | None = None) -> list[LiveRun]:
        """Create several children at once, optionally tagging each with one of tag_values."""
        values = list(tag_values) if tag_values is not None else None
        children = [self.child_run() for _ in range(_child_count(count, values))]
        if tag_key and values:
            for c, v in zip(children, values):  # noqa: B905 (runtime: Python 3.8)
                c.tag(tag_key, v)
        return children

    # -- lifecycle (children and interactive runs) -------------------------------------------
    def complete(self) -> None:
        """Mark this run Completed (children; a submitted run completes when its script ends)."""
        self._finish("Completed", "complete() called")

    def fail(self, error_details: Any = None, **kwargs: Any) -> None:
        """Mark this run Failed."""
        err = {"message": str(error_details or "fail() called")}
        self._finish("Failed", "fail() called", error=err)

    def cancel(self) -> None:
        """Mark this run Canceled."""
        self._finish("Canceled", "cancel() called")

    def _finish(self, status: str, cause: str, **extra: Any) -> None:
        if self._finished:
            return
        self._finished = True
        self._tracker.flush()
        self._tracker.writer.emit("status", run_id=self.id, status=status, cause=cause, **extra)

    def get_status(self) -> str:
        """Running until this process finishes the run."""
        return "Running" if not self._finished else "Finished"

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if ev is None:
            self.complete()
        else:
            text = "".join(traceback.format_exception(et, ev, tb))
            self._finished = True
            self._tracker.flush()
            self._tracker.writer.emit("status", run_id=self.id, status="Failed",
                                      cause="exception", error={"message": str(ev),
                                                                "traceback": text})

    @property
    def experiment(self) -> ExperimentInfo:
        """The run's experiment as the job description gives it (name and workspace name).

        A script never opens the workspace: it may run on a host that cannot reach it.
        """
        return ExperimentInfo(self.experiment_name, self._workspace_name)

    @property
    def input_datasets(self) -> dict[str, Any]:
        """The run's dataset inputs by name (v1's ``run.input_datasets``): a mounted or
        downloaded input is its local path, a direct one a dataset object that reads the local
        files (:mod:`runyard.runtime.datasets`). The inputs file is read once; ``{}`` when the
        run has no inputs (children and interactive runs have none)."""
        if self._inputs is None:
            if not self._inputs_file:
                self._inputs = {}
            else:
                from runyard.runtime.datasets import load_inputs  # noqa: PLC0415 (cycle)

                self._inputs = load_inputs(self._inputs_file)
        return dict(self._inputs)

    def __repr__(self) -> str:
        return f"LiveRun(id={self.id!r}, experiment={self.experiment_name!r})"


_CONTEXT: list[LiveRun | OfflineRun] = []
_CONTEXT_LOCK = threading.Lock()


def get_context(allow_offline: bool = True) -> LiveRun | OfflineRun:
    """Return this process's run: live inside a runyard run, else offline."""
    with _CONTEXT_LOCK:
        if _CONTEXT and (getattr(_CONTEXT[0], "_pid", os.getpid()) == os.getpid()):
            return _CONTEXT[0]
        ctx = _context_from_env(allow_offline)
        _CONTEXT[:] = [ctx]
        return ctx


def _context_from_env(allow_offline: bool) -> LiveRun | OfflineRun:
    run_id = os.environ.get(ENV_RUN_ID)
    spool = os.environ.get(ENV_SPOOL_DIR)
    if not run_id or not spool:
        if not allow_offline:
            raise TrackingError("no runyard run context: this process was not started by runyard")
        return OfflineRun()
    attempt = os.environ.get(ENV_ATTEMPT, "1")
    writer = SpoolWriter(spool, f"script-a{attempt}-{os.getpid()}", run_id)
    tracker = _Tracker(writer)
    atexit.register(tracker.close)
    run = LiveRun(run_id, tracker, Path(os.environ.get(ENV_ARTIFACTS_DIR, ".")),
                  experiment_name=os.environ.get(ENV_EXPERIMENT, ""),
                  properties=json.loads(os.environ.get(ENV_PROPERTIES) or "{}"),
                  tags=json.loads(os.environ.get(ENV_TAGS) or "{}"),
                  workspace_name=os.environ.get(ENV_WORKSPACE_NAME, ""))
    run._pid = os.getpid()  # type: ignore[attr-defined]
    run._inputs_file = os.environ.get(ENV_INPUTS_FILE) or None
    return run


def start_interactive(run_id: str, spool_dir: Path, artifacts_dir: Path, experiment_name: str,
                      workspace_name: str, tags: Mapping[str, Any] | None = None) -> LiveRun:
    """Create the tracker of an interactive run owned by the calling process."""
    writer = SpoolWriter(spool_dir, f"interactive-{os.getpid()}-{uuid.uuid4().hex[:6]}", run_id)
    return LiveRun(run_id, _Tracker(writer), artifacts_dir, experiment_name=experiment_name,
                   tags=tags, workspace_name=workspace_name)
