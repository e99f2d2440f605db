"""``Experiment``: a named group of runs in a workspace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.entities import RunStatus
from runyard.errors import InvalidParameter
from runyard.naming import check_experiment_name
from runyard.sdktypes import kv_filter as _kv_filter
from runyard.store.base import RunFilter

if TYPE_CHECKING:
    from runyard.run import Run
    from runyard.runconfig import ScriptRunConfig
    from runyard.sdktypes import WorkspaceLike as Workspace


class Experiment:
    """A named group of runs; constructing one gets or creates it."""

    def __init__(self, workspace: Workspace, name: str, **_kwargs: Any) -> None:
        check_experiment_name(name)
        self.workspace = workspace
        self.name = name

    @property
    def id(self) -> str:
        """The experiment's id (the experiment is recorded on first use)."""
        return self.workspace.client.get_or_create_experiment(self.name).id

    def submit(self, config: ScriptRunConfig, tags: dict[str, Any] | None = None,
               **kwargs: Any) -> Run:
        """Submit a run configuration; returns the run at once (it runs in the background)."""
        from runyard.run import Run  # noqa: PLC0415
        from runyard.runconfig import ScriptRunConfig  # noqa: PLC0415

        if not isinstance(config, ScriptRunConfig):
            raise InvalidParameter("config", f"cannot submit a {type(config).__name__}; pass a "
                                   "ScriptRunConfig")
        record = self.workspace.client.submit_run(self.name, config, tags)
        return Run._from_record(self, record)

    def start_logging(self, *args: Any, snapshot_directory: str | os.PathLike[str] | None = None,
                      outputs: str | os.PathLike[str] | None = "outputs",
                      display_name: str | None = None, **kwargs: Any) -> Run:
        """Start an interactive run tracked from this process (use ``with`` to complete it)."""
        from runyard.run import Run  # noqa: PLC0415

        record, live = self.workspace.client.start_interactive_run(
            self.name, Path(snapshot_directory) if snapshot_directory is not None else None,
            str(outputs) if outputs else None, display_name)
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
        for rec in self.workspace.client.list_runs(flt):
            if type is None or rec.run_type == type:
                yield Run._from_record(self, rec)

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None,
             **_kwargs: Any) -> list[Experiment]:
        """Experiments of a workspace (optionally only the one named)."""
        recs = workspace.client.list_experiments()
        return [Experiment(workspace, e.name) for e in recs
                if experiment_name is None or e.name == experiment_name]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Experiment) and other.name == self.name
                and other.workspace == self.workspace)

    def __hash__(self) -> int:
        return hash((self.workspace.path, self.name))
