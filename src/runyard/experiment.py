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
    from runyard.sdktypes import WorkspaceLike as Workspace


class ViewType:
    """Which experiments ``Experiment.list`` returns (Azure ML v1's ``view_type``)."""

    ACTIVE_ONLY = "ActiveOnly"
    ALL = "All"
    ARCHIVED_ONLY = "ArchivedOnly"


_VIEW_TYPES = (ViewType.ACTIVE_ONLY, ViewType.ALL, ViewType.ARCHIVED_ONLY)


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

    def submit(self, config: Any, tags: dict[str, Any] | None = None,
               **kwargs: Any) -> Run:
        """Submit a ``ScriptRunConfig``, a v1 estimator or a ``HyperDriveConfig`` (a sweep:
        returns a ``HyperDriveRun``); returns the run at once (it runs in the background)."""
        from runyard.run import Run  # noqa: PLC0415
        from runyard.runconfig import ScriptRunConfig  # noqa: PLC0415
        from runyard.sweeps.config import HyperDriveConfig  # noqa: PLC0415

        if isinstance(config, HyperDriveConfig):  # a sweep: its trials are child runs
            record = self.workspace.client.submit_sweep(self.name, config.to_dict(),
                                                        config.run_config, tags)
            return Run._from_record(self, record)
        to_config = getattr(config, "_script_run_config", None)
        if callable(to_config):  # a v1 estimator (runyard.compat.azureml.train) translates
            config = to_config()
        if not isinstance(config, ScriptRunConfig):
            raise InvalidParameter("config", f"cannot submit a {type(config).__name__}; pass a "
                                   "ScriptRunConfig")
        record = self.workspace.client.submit_run(self.name, config, tags)
        return Run._from_record(self, record)

    def start_logging(self, *args: Any, snapshot_directory: str | os.PathLike[str] | None = None,
                      outputs: str | os.PathLike[str] | bool | None = "outputs",
                      display_name: str | None = None, **kwargs: Any) -> Run:
        """Start an interactive run tracked from this process (use ``with`` to complete it).

        As in Azure ML v1, the ``outputs`` folder (default ``./outputs``, relative to the
        current folder; ``None`` or ``False``: none) is created if missing and its files are
        uploaded to the run as ``outputs/...`` by ``complete()`` (or the end of the ``with``
        block); ``snapshot_directory`` (default: none) is snapshotted.
        """
        from runyard.run import Run  # noqa: PLC0415

        if outputs is True:
            outputs = "outputs"
        if outputs is False:
            outputs = None
        if outputs is not None:
            try:
                Path(outputs).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidParameter("outputs", f"cannot create the outputs folder "
                                       f"{str(outputs)!r}: {exc.strerror or exc}") from exc

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

    @property
    def archived(self) -> bool:
        """Whether the experiment is archived (hidden from ``Experiment.list`` by default)."""
        return self.workspace.client.get_or_create_experiment(self.name).archived

    def archive(self) -> None:
        """Archive the experiment: ``Experiment.list`` leaves it out unless asked for
        archived ones (``view_type=ViewType.ALL`` / ``ARCHIVED_ONLY``); its runs are kept."""
        self.workspace.client.get_or_create_experiment(self.name)
        self.workspace.client.set_experiment_archived(self.name, True)

    def reactivate(self, new_name: str | None = None) -> None:
        """Undo :meth:`archive` (renaming with ``new_name`` is not supported)."""
        if new_name is not None and new_name != self.name:
            from runyard.errors import NotSupported  # noqa: PLC0415

            raise NotSupported(f"Experiment.reactivate(new_name={new_name!r}): runyard does "
                               "not rename experiments; call reactivate() without new_name")
        self.workspace.client.set_experiment_archived(self.name, False)

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None,
             view_type: str = ViewType.ACTIVE_ONLY, tags: Any = None,
             **_kwargs: Any) -> list[Experiment]:
        """Experiments of a workspace (optionally only the one named), oldest first.

        ``view_type`` as in Azure ML v1: ``ActiveOnly`` (default; archived ones left out),
        ``All`` or ``ArchivedOnly``.
        """
        if view_type not in _VIEW_TYPES:
            raise InvalidParameter("view_type", f"{view_type!r} is not one of "
                                   f"{', '.join(_VIEW_TYPES)}")
        recs = workspace.client.list_experiments()
        return [Experiment(workspace, e.name) for e in recs
                if (experiment_name is None or e.name == experiment_name)
                and (view_type == ViewType.ALL
                     or e.archived == (view_type == ViewType.ARCHIVED_ONLY))]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Experiment) and other.name == self.name
                and other.workspace == self.workspace)

    def __hash__(self) -> int:
        return hash((self.workspace.path, self.name))
