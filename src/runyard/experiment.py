"""``Experiment``: a named group of runs in a workspace."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.entities import RunRecord, RunStatus
from runyard.errors import InvalidParameter
from runyard.naming import check_experiment_name
from runyard.store.base import RunFilter

if TYPE_CHECKING:
    from runyard.run import Run
    from runyard.runconfig import ScriptRunConfig
    from runyard.workspace import Workspace


def _kv_filter(value: Any, field: str) -> dict[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, dict):
        return {str(k): (None if v is None else str(v)) for k, v in value.items()}
    raise InvalidParameter(field, "give a key or a {key: value} dict")


class Experiment:
    """A named group of runs; constructing one gets or creates it."""

    def __init__(self, workspace: Workspace, name: str, **_kwargs: Any) -> None:
        check_experiment_name(name)
        self.workspace = workspace
        self.name = name

    @property
    def id(self) -> str:
        """The experiment's id (the experiment is recorded on first use)."""
        return self.workspace.store.get_or_create_experiment(self.name).id

    def submit(self, config: ScriptRunConfig, tags: dict[str, Any] | None = None,
               **kwargs: Any) -> Run:
        """Submit a run configuration; returns the run at once (it runs in the background)."""
        from runyard.run import Run  # noqa: PLC0415
        from runyard.runconfig import ScriptRunConfig  # noqa: PLC0415
        from runyard.services.runs.submit import submit_script_run  # noqa: PLC0415

        if not isinstance(config, ScriptRunConfig):
            raise InvalidParameter("config", f"cannot submit a {type(config).__name__}; pass a "
                                   "ScriptRunConfig")
        record = submit_script_run(self.workspace, self.name, config, tags)
        return Run._from_record(self, record)

    def start_logging(self, *args: Any, snapshot_directory: str | os.PathLike[str] | None = None,
                      outputs: str | os.PathLike[str] | None = "outputs",
                      display_name: str | None = None, **kwargs: Any) -> Run:
        """Start an interactive run tracked from this process (use ``with`` to complete it)."""
        from runyard.run import Run  # noqa: PLC0415
        from runyard.runtime.context import start_interactive  # noqa: PLC0415
        from runyard.services.runs.submit import new_run_id  # noqa: PLC0415

        ws = self.workspace
        snapshot_id = None
        if snapshot_directory is not None:
            max_bytes, max_files = ws.snapshot_limits
            snapshot_id = ws.snapshots.take(Path(snapshot_directory), max_bytes=max_bytes,
                                            max_files=max_files, exclude=[ws.data_dir]).id
        now = time.time()
        from runyard.compute.local import process_start_time  # noqa: PLC0415

        rd = ws.run_dir(record_id := new_run_id(self.name))
        handle = {"version": 1, "kind": "local", "pid": os.getpid(),
                  "pid_start": process_start_time(os.getpid()), "run_dir": str(rd),
                  "attempt": 1}
        record = RunRecord(id=record_id, experiment=self.name,
                           status=RunStatus.RUNNING, created_at=now, start_time=now,
                           run_type="runyard.interactive", display_name=display_name,
                           target="local", snapshot_id=snapshot_id, handle=handle,
                           definition={"outputs": str(outputs) if outputs else None})
        ws.store.get_or_create_experiment(self.name)
        ws.store.create_run(record, "interactive run started")
        live = start_interactive(record.id, rd / "spool", rd / "artifacts", self.name,
                                 str(ws.path))
        run = Run._from_record(self, record)
        run._live = live
        run._outputs_dir = Path(outputs).resolve() if outputs else None
        return run

    def get_runs(self, type: str | None = None, tags: Any = None, properties: Any = None,
                 include_children: bool = False, status: str | None = None) -> Iterator[Run]:
        """Runs of this experiment, newest first, filtered by type, tags, properties, status."""
        from runyard.run import Run  # noqa: PLC0415

        statuses = None
        if status is not None:
            try:
                statuses = [RunStatus(status)]
            except ValueError as exc:
                raise InvalidParameter("status", f"{status!r} is not a run status; use one of "
                                       f"{', '.join(s.value for s in RunStatus)}") from exc
        flt = RunFilter(experiment=self.name, top_level_only=not include_children,
                        statuses=statuses, tags=_kv_filter(tags, "tags"),
                        properties=_kv_filter(properties, "properties"))
        for rec in self.workspace.store.list_runs(flt):
            if type is None or rec.run_type == type:
                yield Run._from_record(self, rec)

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None,
             **_kwargs: Any) -> list[Experiment]:
        """Experiments of a workspace (optionally only the one named)."""
        recs = workspace.store.list_experiments()
        return [Experiment(workspace, e.name) for e in recs
                if experiment_name is None or e.name == experiment_name]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Experiment) and other.name == self.name
                and other.workspace == self.workspace)

    def __hash__(self) -> int:
        return hash((self.workspace.path, self.name))
