"""``Run``: one execution of a script (or an interactive session) and everything it recorded.

Importing this module needs only the standard library, so ``from runyard import Run`` and
``Run.get_context()`` work inside any environment a script runs in; everything that reads the
workspace is imported when first used.
"""

from __future__ import annotations

import builtins
import codecs
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from runyard.entities import MetricRow, RunRecord, RunStatus
from runyard.errors import InvalidParameter, NotFound, RunFailed, RunyardError
from runyard.runtime import context as _ctx

if TYPE_CHECKING:
    from runyard.environment import Environment
    from runyard.sdktypes import ExperimentLike as Experiment
    from runyard.sdktypes import WorkspaceLike as Workspace


def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def metrics_view(rows: Iterable[MetricRow]) -> dict[str, Any]:
    """Shape metric rows the way ``get_metrics`` returns them (Azure ML v1 semantics)."""
    by_name: dict[str, list[MetricRow]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r)
    out: dict[str, Any] = {}
    for name, rs in by_name.items():
        vals: list[Any] = [r.value if r.value_json is None else json.loads(r.value_json)
                           for r in rs]
        kind = rs[-1].kind
        if kind == "scalar":
            out[name] = vals[0] if len(vals) == 1 else vals
        elif kind == "row":
            cols: dict[str, list[Any]] = {}
            for row in vals:
                for k, v in row.items():
                    cols.setdefault(k, []).append(v)
            out[name] = cols
        elif kind == "image":
            arts = [v["artifact"] for v in vals]
            out[name] = arts[0] if len(arts) == 1 else arts
        else:  # list, table, json: the latest value
            out[name] = vals[-1]
    return out


class _StatusFeed:
    """What ``wait_for_completion(show_output=True)`` says between log lines: each recorded
    status change with its cause as it happens (``Running: script started (pid 7) on node
    3f2a1b``; an end with the first line of its error), and, while the run is Queued on a
    target that has nodes, how the target is getting a node for it (``Queued: waiting for a
    node, cluster scaling 0 -> 1``)."""

    #: Statuses printed before the log lines read in the same step (the log is empty before
    #: them); Finalizing and the ends follow those lines.
    _EARLY = frozenset({"NotStarted", "Queued", "Preparing"})
    #: Also printed before them, unless an environment build (which logs while Preparing) may
    #: have ended within those lines, i.e. unless Preparing came in an earlier step.
    _STARTING = frozenset({"Starting", "Running"})
    #: Seconds between two looks at the target while the run is Queued.
    TARGET_EVERY = 1.0

    def __init__(self, run: Run, stream: IO[str]) -> None:
        self.run = run
        self.stream = stream
        self.seen = 0
        self.pending: list[Any] = []
        self.last_target = ""
        self.next_target = 0.0

    def poll(self, record: RunRecord, *, early: bool) -> None:
        """Print new status events (``early``: those before the log lines of this step)."""
        early_set = self._EARLY
        if early:
            events = self.run.workspace.client.list_events(self.run.id)
            batch = events[self.seen:]
            self.pending.extend(batch)
            self.seen = len(events)
            if not record.definition.get("environment") or any(
                    e.status == RunStatus.PREPARING for e in batch):
                early_set = self._EARLY | self._STARTING
        while self.pending and not (early and self.pending[0].status.value not in early_set):
            self._say(self.pending.pop(0), record)
        if early and record.status == RunStatus.QUEUED:
            self._target(record)

    def _say(self, event: Any, record: RunRecord) -> None:
        status, cause = event.status.value, event.cause
        if status in ("Failed", "NotResponding") and record.status == event.status \
                and record.error and record.error.get("message"):
            cause = str(record.error["message"]).strip().splitlines()[0]
        if event.attempt > 1:
            status = f"{status} (attempt {event.attempt})"
        print(f"{status}: {cause}" if cause else status, file=self.stream, flush=True)

    def _target(self, record: RunRecord) -> None:
        now = time.monotonic()
        if now < self.next_target or not record.target:
            return
        self.next_target = now + self.TARGET_EVERY
        try:
            st = self.run.workspace.client.compute_status(record.target)
        except RunyardError:
            return
        if not st.allocation_state:  # a target without nodes (local, remote)
            return
        states = ", ".join(f"{k} {v}" for k, v in st.node_state_counts.items() if v)
        line = f"waiting for a node, cluster {record.target} " + (
            f"scaling {st.current_node_count} -> {st.target_node_count}"
            if st.current_node_count != st.target_node_count
            else f"at {st.current_node_count} nodes") + (f" ({states})" if states else "")
        if line != self.last_target:
            self.last_target = line
            print(f"Queued: {line}", file=self.stream, flush=True)


class Run:
    """A run of an experiment.

    Inside a submitted script use :meth:`get_context`; from outside, get runs from
    ``Experiment.submit``, ``Experiment.get_runs`` or ``Run(experiment, run_id)``.
    """

    def __init__(self, experiment: Experiment, run_id: str, **_kwargs: Any) -> None:
        record = experiment.workspace.client.get_run(run_id)
        if record is None or record.experiment != experiment.name:
            raise NotFound(f"run {run_id!r} does not exist in experiment {experiment.name!r}")
        self._init(experiment, record)

    def _init(self, experiment: Experiment, record: RunRecord) -> None:
        self.experiment = experiment
        self._record = record
        self._live: _ctx.LiveRun | None = None
        self._outputs_dir: Path | None = None
        self._log_offset = 0
        self._log_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._log_capper: Any = None

    @classmethod
    def _from_record(cls, experiment: Experiment, record: RunRecord) -> Run:
        if record.run_type == HyperDriveRun.RUN_TYPE and cls is Run:
            cls = HyperDriveRun
        run = cls.__new__(cls)
        run._init(experiment, record)
        return run

    @staticmethod
    def get_context(allow_offline: bool = True, **_kwargs: Any) -> Any:
        """The run of the calling script: live under runyard, offline (printing) otherwise."""
        return _ctx.get_context(allow_offline)

    @classmethod
    def get(cls, workspace: Workspace, run_id: str) -> Run:
        """Fetch any run of the workspace by id."""
        record = workspace.client.get_run(run_id)
        if record is None:
            raise NotFound(f"run {run_id!r} does not exist in workspace {workspace.name!r}")
        return cls._from_record(workspace._experiment(record.experiment), record)

    # -- identity ----------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The run id ``<experiment>_<unix seconds>_<8 hex>``."""
        return self._record.id

    @property
    def workspace(self) -> Workspace:
        """The workspace of the run."""
        return self.experiment.workspace

    @property
    def type(self) -> str:
        """``runyard.scriptrun``, ``runyard.childrun`` or ``runyard.interactive``."""
        return self._record.run_type

    @property
    def display_name(self) -> str | None:
        """Optional human-readable name."""
        return self._record.display_name

    @property
    def parent(self) -> Run | None:
        """The parent run of a child, else None."""
        pid = self._record.parent_id
        return Run.get(self.workspace, pid) if pid else None

    @property
    def status(self) -> str:
        """Current status (synced)."""
        return self.get_status()

    @property
    def tags(self) -> dict[str, str | None]:
        """Current tags."""
        return self.get_tags()

    @property
    def properties(self) -> dict[str, str]:
        """Current properties."""
        return self.get_properties()

    def _refresh(self) -> RunRecord:
        """A store read of the run (embedded: after one bounded reconcile step of it)."""
        record = self.workspace.client.get_run(self.id, sync=True)
        if record is None:
            raise NotFound(f"run {self.id!r} does not exist")
        self._record = record
        return record

    # -- reading -----------------------------------------------------------------------------
    def get_status(self) -> str:
        """NotStarted, Queued, Preparing, Starting, Running, Finalizing, Completed, ..."""
        return self._refresh().status.value

    def get_details(self) -> dict[str, Any]:
        """Run id, target, status, times, definition, properties, tags, files and error."""
        r = self._refresh()
        details: dict[str, Any] = {
            "runId": r.id, "experiment": r.experiment, "type": r.run_type, "target": r.target,
            "status": r.status.value, "parentRunId": r.parent_id,
            "createdTimeUtc": _iso(r.created_at), "startTimeUtc": _iso(r.start_time),
            "properties": dict(r.properties), "tags": dict(r.tags),
            "runDefinition": r.definition.get("runDefinition", {}),
            "snapshotId": r.snapshot_id, "attempt": r.attempt,
            "inputDatasets": list(r.definition.get("inputDatasets") or []),
            "outputDatasets": list(r.definition.get("outputDatasets") or []),
            "logFiles": [f for f in self.get_file_names()
                         if f.startswith(("logs/", "system_logs/"))],
        }
        if r.end_time is not None:
            details["endTimeUtc"] = _iso(r.end_time)
        if r.error:
            details["error"] = dict(r.error)
        if r.rejected_events:
            details["rejectedEvents"] = r.rejected_events
        return details

    def get_events(self) -> list[dict[str, Any]]:
        """Every recorded status transition with its time and cause."""
        return [{"status": e.status.value, "attempt": e.attempt, "time": e.at, "cause": e.cause}
                for e in self.workspace.client.list_events(self.id)]

    def get_attempts(self) -> list[dict[str, Any]]:
        """Attempts of the run with their causes."""
        return [{"attempt": a.attempt, "started": a.started_at, "ended": a.ended_at,
                 "cause": a.cause, "status": a.status.value if a.status else None}
                for a in self.workspace.client.list_attempts(self.id)]

    def get_metrics(self, name: str | None = None, recursive: bool = False) -> dict[str, Any]:
        """Logged metrics: a repeated scalar is a list; rows build a column dict."""
        self._refresh()
        rows = self.workspace.client.get_metric_rows(self.id, [name] if name else None)
        out = metrics_view(rows)
        if recursive:
            for child in self.get_children(recursive=True):
                out[child.id] = child.get_metrics(name)
        return out

    def get_tags(self) -> dict[str, str | None]:
        """Current tags."""
        if self._live is not None:
            self._flush_live()
        return dict(self._refresh().tags)

    def get_properties(self) -> dict[str, str]:
        """Current properties."""
        if self._live is not None:
            self._flush_live()
        return dict(self._refresh().properties)

    def get_file_names(self) -> list[str]:
        """Artifact paths of the run (outputs/, logs/, system_logs/, uploads)."""
        if self._live is None and not self._record.status.terminal:
            self._refresh()
        return [f.name for f in self.workspace.client.list_files(self.id)]

    def download_file(self, name: str, output_file_path: str | None = None,
                      **_kwargs: Any) -> str:
        """Copy artifact ``name`` to ``output_file_path`` (a file or folder; default: cwd)."""
        clean = _ctx.check_artifact_name(name)
        if clean not in self.get_file_names():
            raise NotFound(f"run {self.id} has no file {name!r}; see get_file_names()")
        dest = Path(output_file_path or Path(name).name)
        if dest.is_dir():
            dest = dest / Path(name).name
        self.workspace.client.download_file(self.id, clean, dest)
        return str(dest)

    def download_files(self, prefix: str | None = None, output_directory: str | None = None,
                       append_prefix: bool = True, **_kwargs: Any) -> list[str]:
        """Copy every artifact under ``prefix`` into ``output_directory`` keeping paths."""
        if prefix is not None and (
                not isinstance(prefix, str) or "\x00" in prefix or prefix.startswith("/")
                or ".." in prefix.replace("\\", "/").split("/")):
            raise InvalidParameter("prefix", f"{prefix!r} must be a relative artifact path "
                                   "inside the run (no leading '/', no '..'), for "
                                   "example 'outputs/'")
        out = Path(output_directory or ".")
        root = out.resolve()
        planned: list[tuple[str, Path]] = []
        for name in self.get_file_names():
            if prefix and not name.startswith(prefix):
                continue
            clean = name
            rel = clean if append_prefix or not prefix else clean[len(prefix):].lstrip("/")
            dest = out / rel
            # confined: whatever a name says, the file lands under output_directory
            if not rel or not str(dest.resolve()).startswith(str(root) + os.sep):
                raise InvalidParameter("output_directory", f"file {name!r} of run {self.id} "
                                       f"would land outside {str(out)!r}; nothing was "
                                       "downloaded")
            planned.append((clean, dest))
        done = []
        for name, dest in planned:
            self.workspace.client.download_file(self.id, name, dest)
            done.append(str(dest))
        return done

    def get_children(self, recursive: bool = False, tags: Any = None, properties: Any = None,
                     type: str | None = None, status: str | None = None) -> Iterator[Run]:
        """Child runs (optionally all descendants), filtered like ``get_runs``."""
        from runyard.sdktypes import kv_filter as _kv_filter  # noqa: PLC0415
        from runyard.store.base import RunFilter  # noqa: PLC0415

        self._refresh()
        statuses = [RunStatus(status)] if status else None
        flt = RunFilter(parent_id=self.id, top_level_only=False, statuses=statuses,
                        tags=_kv_filter(tags, "tags"),
                        properties=_kv_filter(properties, "properties"))
        for rec in self.workspace.client.list_runs(flt):
            child = Run._from_record(self.experiment, rec)
            if type is None or rec.run_type == type:
                yield child
            if recursive:
                yield from child.get_children(True, tags, properties, type, status)

    def get_environment(self) -> Environment:
        """The ``Environment`` the run was submitted with (dependencies as they were then).

        For a system-managed environment, the run's properties ``environment_key`` and
        ``environment_build`` (built, waited or cached) say which build it used.
        """
        from runyard.environment import Environment  # noqa: PLC0415

        data = (self._record.definition.get("runDefinition") or {}).get("environment")
        if not data:
            raise NotFound(f"run {self.id} has no recorded environment (it is a "
                           f"{self.type} run)")
        return Environment.from_dict(data)

    @staticmethod
    def list(experiment: Experiment, type: str | None = None,  # noqa: A002  (v1's name)
             tags: Any = None, properties: Any = None, status: str | None = None,
             include_children: bool = False, _rehydrate_runs: bool = True) -> Iterator[Run]:
        """v1's ``Run.list``: the runs of ``experiment``, newest first, filtered like
        ``Experiment.get_runs`` (``status``: one status name)."""
        runs: Iterator[Run] = experiment.get_runs(  # type: ignore[attr-defined]
            type=type, tags=tags, properties=properties, include_children=include_children,
            status=status)
        return runs

    def get_details_with_logs(self) -> dict[str, Any]:
        """:meth:`get_details`, with ``logFiles`` a dict of each log file's name to its text."""
        details = self.get_details()
        details["logFiles"] = {
            name: self.workspace.client.read_file(self.id, name).decode("utf-8", "replace")
            for name in details["logFiles"]}
        return details

    def get_all_logs(self, destination: str | os.PathLike[str] | None = None
                     ) -> builtins.list[str]:
        """Download every log file of the run (``logs/``, ``system_logs/``) into
        ``destination`` (default: ``./assets/<run id>``, as v1 did), keeping their paths;
        returns the paths written."""
        dest = Path(destination) if destination is not None else Path("assets") / self.id
        out = []
        for name in self.get_details()["logFiles"]:
            target = dest / name
            self.workspace.client.download_file(self.id, name, target)
            out.append(str(target))
        return out

    def get_portal_url(self) -> str:
        """Where to look at the run: with no portal server (none exists yet), a ``file://``
        link to the run's folder in the workspace."""
        return self.workspace.run_dir(self.id).resolve().as_uri()

    def restore_snapshot(self, snapshot_id: str | None = None, path: str | None = None) -> str:
        """Write the run's code snapshot into ``path`` (default ``./<snapshot id>``)."""
        sid = snapshot_id or self._record.snapshot_id
        if not sid:
            raise NotFound(f"run {self.id} has no snapshot (history.snapshot_project was off)")
        dest = Path(path or sid)
        return str(self.workspace.client.restore_snapshot(sid, dest))

    # -- control -----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the run and its whole process tree; a no-op once it has finished."""
        self._record = self.workspace.client.cancel_run(self.id)

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True, timeout: float | None = None,
                            out: IO[str] | None = None) -> dict[str, Any]:
        """Block until the run ends; with ``show_output`` stream its driver log live.

        Ends with an execution summary. Raises ``RunFailed`` for a Failed or NotResponding run
        when ``raise_on_error``; ``timeout`` (seconds) raises ``RunyardError`` if still running.
        """
        stream = out or sys.stdout
        if show_output:
            print(f"RunId: {self.id}", file=stream)
            print(f"Streaming {self._log_name()}", file=stream)
            print("=" * 40, file=stream, flush=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        feed = _StatusFeed(self, stream) if show_output else None
        while True:
            record = self._refresh()
            if feed is not None:
                feed.poll(record, early=True)
                self._print_new_log(stream)
                feed.poll(record, early=False)
            if record.status.settled:  # NotResponding: the caller is told; it may resume
                break
            if deadline is not None and time.monotonic() > deadline:
                raise RunyardError(f"run {self.id} is still {record.status.value} after "
                                   f"{timeout} s; it keeps running")
            time.sleep(delay)
            # gentle back-off: the end is seen within ~10% of the time waited so far (a store
            # read costs about a millisecond), at most every 0.25 s on long runs
            delay = min(delay * 1.1, 0.25)
        details = self.get_details()
        if feed is not None:
            self._print_new_log(stream)
            feed.poll(self._record, early=False)
            print("\nExecution Summary", file=stream)
            print("=" * 17, file=stream)
            print(f"RunId: {self.id}", file=stream)
            print(f"Status: {record.status.value}", file=stream)
            if record.error:
                print(f"Error: {json.dumps(record.error, indent=2)}", file=stream)
            print(file=stream, flush=True)
        if raise_on_error and record.status in (RunStatus.FAILED, RunStatus.NOT_RESPONDING):
            msg = (record.error or {}).get("message", record.status.value)
            raise RunFailed(f"run {self.id} ended {record.status.value}: {msg}",
                            details={"run_id": self.id, "error": record.error})
        return details

    def _log_name(self) -> str:
        return "system_logs/driver_log.txt"

    def _print_new_log(self, stream: IO[str]) -> None:
        from runyard.logcap import READ_CHUNK_BYTES, LineCapper  # noqa: PLC0415  (not bundled)

        if self._log_capper is None:
            self._log_capper = LineCapper()
        capper = self._log_capper
        while data := self.workspace.client.read_file(self.id, self._log_name(),
                                                      self._log_offset, READ_CHUNK_BYTES):
            self._log_offset += len(data)
            stream.write(self._log_decoder.decode(capper.feed(data)))
            stream.flush()
            if len(data) < READ_CHUNK_BYTES:
                break

    # -- tracking (interactive runs log through the spool; others write to the store) --------
    def _flush_live(self) -> None:
        if self._live is not None:
            self._live.flush()

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a scalar metric value."""
        if self._live is not None:
            self._live.log(name, value, description, step)
        else:
            self._direct_metric(name, "scalar", value)

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log a list metric."""
        if self._live is not None:
            self._live.log_list(name, value, description)
        else:
            self._direct_metric(name, "list", list(value))

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one row of a table metric."""
        if self._live is not None:
            self._live.log_row(name, description, **kwargs)
        else:
            self._direct_metric(name, "row", kwargs)

    def log_table(self, name: str, value: Mapping[str, Iterable[Any]],
                  description: str = "") -> None:
        """Log a table (dict of column -> list)."""
        if self._live is not None:
            self._live.log_table(name, value, description)
        else:
            self._direct_metric(name, "table", {k: list(v) for k, v in value.items()})

    def log_image(self, name: str, path: str | None = None, plot: Any = None,
                  description: str = "") -> None:
        """Log an image from a file or a matplotlib figure (interactive runs)."""
        self._require_live("log_image").log_image(name, path, plot, description)

    def _direct_metric(self, name: str, kind: str, value: Any) -> None:
        self.workspace.client.log_metric(self.id, name, kind, value)

    def _require_live(self, what: str) -> _ctx.LiveRun:
        if self._live is None:
            raise RunyardError(f"{what} works inside the script (Run.get_context()) or on an "
                               "interactive run from Experiment.start_logging()")
        return self._live

    def tag(self, key: str, value: Any = None) -> None:
        """Set a mutable tag."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        if self._live is not None:
            self._live.set_tags(tags)
        else:
            self.workspace.client.set_tags(self.id, {str(k): None if v is None else str(v)
                                                     for k, v in tags.items()})

    def remove_tags(self, tags: Iterable[str]) -> None:
        """Remove tags."""
        self.workspace.client.remove_tags(self.id, list(tags))

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Add immutable properties; re-adding a key with another value raises."""
        clean = {str(k): str(v) for k, v in properties.items()}
        if self._live is not None:
            try:
                self._live.add_properties(clean)
            except _ctx.TrackingError as exc:
                raise InvalidParameter("properties", str(exc)) from exc
        else:
            self.workspace.client.add_properties(self.id, clean)

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        """Store a file as artifact ``name``."""
        if self._live is not None:
            self._live.upload_file(name, path_or_stream)
            return
        clean = _ctx.check_artifact_name(name)
        source = Path(path_or_stream) if isinstance(path_or_stream, (str, Path)) \
            else path_or_stream
        self.workspace.client.upload_file(self.id, clean, source)

    def upload_folder(self, name: str, path: str) -> None:
        """Upload a folder's files under ``name/``."""
        root = Path(path)
        for f in sorted(root.rglob("*")):
            if f.is_file():
                self.upload_file(f"{name}/{f.relative_to(root).as_posix()}", str(f))

    def register_model(self, model_name: str, model_path: str = "outputs/model.pkl",
                       tags: Mapping[str, Any] | None = None,
                       properties: Mapping[str, Any] | None = None,
                       model_framework: str | None = None,
                       model_framework_version: str | None = None,
                       description: str | None = None, datasets: Any = None,
                       **_kwargs: Any) -> Any:
        """Register the run's artifact file or folder ``model_path`` as the next version of
        ``model_name``, linked to this run and its experiment; returns the ``Model``.

        An interactive run still going registers ``outputs/...`` from its outputs folder."""
        from runyard.model import Model  # noqa: PLC0415

        print(f"Registering model {model_name}")
        meta: dict[str, Any] = {
            "tags": tags, "properties": properties, "description": description,
            "datasets": datasets, "model_framework": model_framework,
            "model_framework_version": model_framework_version}
        rel = model_path.replace("\\", "/")
        rel = rel[2:] if rel.startswith("./") else rel
        local = None
        if self._outputs_dir is not None and (rel == "outputs" or rel.startswith("outputs/")):
            _ctx.check_artifact_name(rel)
            candidate = self._outputs_dir / rel[len("outputs"):].lstrip("/")
            local = candidate if candidate.exists() else None
        if local is not None:
            rec = self.workspace.client.register_model(
                local, model_name, run_id=self.id, experiment=self.experiment.name, **meta)
        else:
            rec = self.workspace.client.register_run_model(self.id, model_name, rel, **meta)
        return Model._from_record(self.workspace, rec)

    def child_run(self, name: str | None = None, run_id: str | None = None,
                  outputs: str | None = None) -> _ctx.LiveRun:
        """Start a child run of an interactive run."""
        return self._require_live("child_run").child_run(name, run_id, outputs)

    def create_children(self, count: int | None = None, tag_key: str | None = None,
                        tag_values: Iterable[str] | None = None) -> builtins.list[_ctx.LiveRun]:
        """Create several children of an interactive run."""
        return self._require_live("create_children").create_children(count, tag_key,
                                                                     tag_values)

    def flush(self) -> None:
        """Push buffered metrics of an interactive run into the workspace."""
        if self._live is not None:
            self._live.flush()
            self._refresh()

    def complete(self, _set_status: bool = True) -> None:
        """Finish the run as Completed.

        An interactive run collects its outputs folder first. On a submitted run, called from
        outside its script (as Azure ML v1 allowed), the script is stopped like a cancel and
        the run recorded Completed. A run that has already ended is refused
        (``InvalidTransition`` naming its status) and left as it is.
        """
        if self._live is None:
            self._end_from_outside("Completed", "completed by caller (run.complete())")
            return
        self._end("Completed")

    def fail(self, error_details: Any = None, error_code: str | None = None,
             _set_status: bool = True, **_kwargs: Any) -> None:
        """Finish the run as Failed, recording ``error_details`` (a message or an exception)
        and ``error_code`` as its error.

        Like :meth:`complete`, it also ends a submitted run from outside its script (the
        script is stopped), and refuses a run that has already ended.
        """
        error: dict[str, Any] = {"message": str(error_details or "fail() called")}
        if isinstance(error_details, BaseException):
            error["exception_type"] = type(error_details).__name__
        if error_code is not None:
            error["code"] = str(error_code)
        if self._live is None:
            self._end_from_outside("Failed", "failed by caller (run.fail())", error)
            return
        self._end("Failed", error)

    def _end_from_outside(self, status: str, cause: str,
                          error: dict[str, Any] | None = None) -> None:
        self._record = self.workspace.client.end_run(self.id, status, cause, error)

    def _end(self, status: str, error: dict[str, Any] | None = None) -> None:
        live = self._require_live("complete/fail")
        if live._finished:
            from runyard.errors import InvalidTransition  # noqa: PLC0415

            state = self._refresh().status.value
            raise InvalidTransition(f"run {self.id} has already ended ({state}); it cannot be "
                                    f"set {status} (its status is unchanged)",
                                    details={"run_id": self.id, "status": state})
        if self._outputs_dir is not None and self._outputs_dir.is_dir():
            for f in sorted(self._outputs_dir.rglob("*")):
                if f.is_file():
                    live.upload_file(f"outputs/{f.relative_to(self._outputs_dir).as_posix()}", f)
        live._finished = True
        live._tracker.flush()
        extra: dict[str, Any] = {"error": error} if error else {}
        live._tracker.writer.emit("status", status=status, cause=f"{status.lower()} by caller",
                                  attempt=1, **extra)
        live._tracker.close()
        self._refresh()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, et: builtins.type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is None or self._record.status.terminal:
            return
        if ev is None:
            self.complete()
        else:
            import traceback  # noqa: PLC0415

            self._end("Failed", {"message": str(ev),
                                 "traceback": "".join(traceback.format_exception(et, ev, tb))})

    def __repr__(self) -> str:
        return (f"Run(experiment={self.experiment.name!r}, id={self.id!r}, "
                f"type={self.type!r}, status={self._record.status.value!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class HyperDriveRun(Run):
    """A hyperparameter sweep (Azure ML v1's ``HyperDriveRun``): its trials are child runs
    ``<sweep id>_<index>``; what each was given is its ``hyperparameters`` property."""

    RUN_TYPE = "hyperdrive"

    def _spec(self) -> dict[str, Any]:
        return dict(self._record.definition.get("sweep") or {})

    @property
    def primary_metric(self) -> tuple[str, str]:
        """(name, goal: ``maximize`` or ``minimize``)."""
        pm = self._spec().get("primary_metric") or {}
        return str(pm.get("name", "")), str(pm.get("goal", "maximize")).lower()

    def _trial_runs(self) -> list[Run]:
        """The trials as stored after one step of the sweep (its controller moves them: no
        step per trial)."""
        from runyard.store.base import RunFilter  # noqa: PLC0415

        self._refresh()
        return [Run._from_record(self.experiment, rec) for rec in self.workspace.client.list_runs(
            RunFilter(parent_id=self.id, top_level_only=False))]

    def _trials(self) -> list[tuple[Run, float | None]]:
        name, goal = self.primary_metric
        out: list[tuple[Run, float | None]] = []
        for child in self._trial_runs():
            seq = [float(r.value) for r in self.workspace.client.get_metric_rows(child.id, [name])
                   if r.kind == "scalar" and r.value is not None]
            out.append((child, (max(seq) if goal == "maximize" else min(seq))
                        if seq else None))
        return out

    def get_hyperparameters(self) -> dict[str, dict[str, Any]]:
        """Each trial's hyperparameters by run id."""
        return {c.id: json.loads(c._record.properties.get("hyperparameters") or "{}")
                for c in self._trial_runs()}

    def get_metrics(self, name: str | None = None, recursive: bool = False
                    ) -> dict[str, Any]:
        """Each trial's metrics by run id (v1's HyperDriveRun.get_metrics)."""
        return {c.id: metrics_view(self.workspace.client.get_metric_rows(
            c.id, [name] if name else None)) for c in self._trial_runs()}

    def get_children_sorted_by_primary_metric(self, top: int = 0, reverse: bool = False,
                                              discard_no_metric: bool = False
                                              ) -> list[dict[str, Any]]:
        """``[{run_id, hyperparameters, best_primary_metric, status}]``, best first (``reverse``:
        worst first); trials without the metric last (left out with ``discard_no_metric``)."""
        _name, goal = self.primary_metric
        rows = []
        for child, value in self._trials():
            if value is None and discard_no_metric:
                continue
            rows.append({"run_id": child.id, "hyperparameters": json.loads(
                child._record.properties.get("hyperparameters") or "{}"),
                "best_primary_metric": value, "status": child._record.status.value})
        scored = [r for r in rows if r["best_primary_metric"] is not None]
        scored.sort(key=lambda r: float(r["best_primary_metric"]),
                    reverse=(goal == "maximize") != reverse)
        ordered = scored + [r for r in rows if r["best_primary_metric"] is None]
        return ordered[:top] if top else ordered

    def get_best_run_by_primary_metric(self, include_failed: bool = True,
                                       include_canceled: bool = True) -> Run | None:
        """The trial with the best primary metric (among Completed ones, plus Failed and
        Canceled ones when included); None when no trial logged it."""
        _name, goal = self.primary_metric
        ok = {"Completed"} | ({"Failed"} if include_failed else set()) | (
            {"Canceled"} if include_canceled else set())
        scored = [(v, c) for c, v in self._trials()
                  if v is not None and c._record.status.value in ok]
        if not scored:
            return None
        return (max if goal == "maximize" else min)(scored, key=lambda p: p[0])[1]

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True, timeout: float | None = None,
                            out: IO[str] | None = None) -> dict[str, Any]:
        """Block until the sweep ends; with ``show_output`` print each trial as it starts and
        ends, then the table of trials sorted by the primary metric."""
        from runyard.store.base import RunFilter  # noqa: PLC0415

        stream = out or sys.stdout
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[str, str] = {}
        trials = RunFilter(parent_id=self.id, top_level_only=False)
        if show_output:
            print(f"RunId: {self.id}", file=stream, flush=True)
        delay = 0.01
        while True:
            record = self._refresh()
            if show_output:
                for child in (Run._from_record(self.experiment, rec)
                              for rec in self.workspace.client.list_runs(trials)):
                    st = child._record.status.value
                    if seen.get(child.id) != st and st in ("Running", "Completed", "Failed",
                                                          "Canceled"):
                        seen[child.id] = st
                        hp = child._record.properties.get("hyperparameters", "")
                        why = child._record.tags.get("runyard.termination_reason")
                        print(f"{child.display_name or child.id}: {st} {hp}"
                              + (f" ({why})" if why else ""), file=stream, flush=True)
            if record.status.settled:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise RunyardError(f"sweep {self.id} is still {record.status.value} after "
                                   f"{timeout} s; it keeps running")
            time.sleep(delay)
            delay = min(delay * 1.2, 0.25)  # the next trials are started ahead: no hurry
        if show_output:
            name, _goal = self.primary_metric
            print(f"\n{'trial':<12} {'status':<10} {name:<14} hyperparameters", file=stream)
            for row in self.get_children_sorted_by_primary_metric():
                v = row["best_primary_metric"]
                print(f"{row['run_id'].rsplit('_', 1)[-1]:<12} {row['status']:<10} "
                      f"{'' if v is None else f'{v:.6g}':<14} "
                      f"{json.dumps(row['hyperparameters'])}", file=stream)
            print(f"\nStatus: {record.status.value}", file=stream, flush=True)
        details = self.get_details()
        if raise_on_error and record.status in (RunStatus.FAILED, RunStatus.NOT_RESPONDING):
            msg = (record.error or {}).get("message", record.status.value)
            raise RunFailed(f"sweep {self.id} ended {record.status.value}: {msg}",
                            details={"run_id": self.id, "error": record.error})
        return details
