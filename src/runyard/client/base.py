"""``WorkspaceClient``: every operation the SDK performs on a workspace.

Records in, records out (``runyard.entities``); errors are ``RunyardError`` subclasses, which
cross an HTTP boundary as ``{error_code, message, details}`` (see ``runyard.errors``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from runyard.compute.base import TargetStatus
    from runyard.compute.config import ComputeConfiguration
    from runyard.datastores.base import DatastoreBackend
    from runyard.entities import (
        AttemptRecord,
        ComputeRecord,
        ExperimentRecord,
        FileRecord,
        MetricRow,
        RunEvent,
        RunRecord,
    )
    from runyard.environment import Environment
    from runyard.runconfig import ScriptRunConfig
    from runyard.runtime.context import LiveRun
    from runyard.services.cleanup import CleanupReport
    from runyard.store.base import DatastoreRecord, EnvironmentRecord, RunFilter
    from runyard.store.dataset_record import DatasetFile, DatasetRecord
    from runyard.store.model_record import ModelRecord


class WorkspaceClient(Protocol):
    """What the SDK may ask of a workspace (in-process or over HTTP)."""

    #: True when runs move on by reading them (embedded: one bounded sync per read).
    embedded: bool

    # -- experiments -------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        """The experiment ``name`` (created on first use)."""
        ...

    def list_experiments(self) -> list[ExperimentRecord]:
        """Every experiment, oldest first."""
        ...

    # -- runs --------------------------------------------------------------------------------
    def submit_run(self, experiment: str, config: ScriptRunConfig,
                   tags: dict[str, Any] | None) -> RunRecord:
        """Validate, snapshot, record and dispatch a script run (returns at once)."""
        ...

    def submit_sweep(self, experiment: str, spec: dict[str, Any], config: ScriptRunConfig,
                     tags: dict[str, Any] | None) -> RunRecord:
        """Check and record a hyperparameter sweep and start its first trials (returns at
        once; ``spec`` is ``HyperDriveConfig.to_dict()``)."""
        ...

    def start_interactive_run(self, experiment: str, snapshot_directory: Path | None,
                              outputs: str | None, display_name: str | None
                              ) -> tuple[RunRecord, LiveRun]:
        """Record a run tracked from this process (embedded only: it writes a local spool)."""
        ...

    def get_run(self, run_id: str, *, sync: bool = False) -> RunRecord | None:
        """The run (``sync``: after one bounded reconcile step of it, embedded only)."""
        ...

    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""
        ...

    def cancel_run(self, run_id: str) -> RunRecord:
        """Cancel a run and its process tree; a finished run is left as it is."""
        ...

    def end_run(self, run_id: str, status: str, cause: str,
                error: dict[str, Any] | None = None) -> RunRecord:
        """End a live run from outside its script as ``status`` (Completed, Failed, Canceled):
        recorded, then its process tree stopped; an ended run is ``InvalidTransition``."""
        ...

    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        """Archive or reactivate an experiment."""
        ...

    def list_events(self, run_id: str) -> list[RunEvent]:
        """Status transitions of a run."""
        ...

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        """Attempts of a run."""
        ...

    def get_metric_rows(self, run_id: str, names: list[str] | None = None) -> list[MetricRow]:
        """Metric values of a run."""
        ...

    def log_metric(self, run_id: str, name: str, kind: str, value: Any) -> None:
        """Append one metric value to a run (numbered after its last step)."""
        ...

    def set_tags(self, run_id: str, tags: dict[str, str | None]) -> None:
        """Set mutable tags."""
        ...

    def remove_tags(self, run_id: str, keys: list[str]) -> None:
        """Remove tags."""
        ...

    def add_properties(self, run_id: str, props: dict[str, str]) -> None:
        """Add immutable properties."""
        ...

    # -- logs and artifacts ------------------------------------------------------------------
    def list_files(self, run_id: str) -> list[FileRecord]:
        """Artifacts of a run."""
        ...

    def read_file(self, run_id: str, name: str, offset: int = 0, size: int = -1) -> bytes:
        """Bytes of an artifact from ``offset`` (log streaming by offset)."""
        ...

    def download_file(self, run_id: str, name: str, dest: Path) -> Path:
        """Copy an artifact to a local file."""
        ...

    def upload_file(self, run_id: str, name: str, source: Path | BinaryIO) -> FileRecord:
        """Store a file as an artifact of the run."""
        ...

    # -- snapshots (blob negotiation) --------------------------------------------------------
    def missing_blobs(self, blobs: list[str]) -> list[str]:
        """Which of these content hashes the workspace lacks."""
        ...

    def restore_snapshot(self, snapshot_id: str, dest: Path) -> Path:
        """Write a snapshot's files into ``dest``."""
        ...

    # -- compute -----------------------------------------------------------------------------
    def create_compute(self, name: str, config: ComputeConfiguration) -> ComputeRecord:
        """Create a managed target."""
        ...

    def attach_compute(self, name: str, config: ComputeConfiguration) -> ComputeRecord:
        """Attach an existing machine or cluster."""
        ...

    def get_compute(self, name: str) -> ComputeRecord:
        """A target's record (``ComputeTargetNotFound`` for an unknown name)."""
        ...

    def list_compute(self) -> list[ComputeRecord]:
        """Every target, ``local`` first."""
        ...

    def compute_status(self, name: str) -> TargetStatus:
        """Provisioning state, errors, node counts."""
        ...

    def update_compute(self, name: str, changes: dict[str, Any]) -> ComputeRecord:
        """Change updatable settings."""
        ...

    def delete_compute(self, name: str, *, force: bool, detach: bool) -> None:
        """Delete or detach a target."""
        ...

    def compute_kind(self, name: str, kind: str | None = None) -> Any:
        """The kind object of a target, for kind-specific calls (embedded only); ``kind``
        skips the lookup of the stored target."""
        ...

    # -- datastores --------------------------------------------------------------------------
    def register_datastore(self, kind: str, name: str, options: dict[str, Any], *,
                           overwrite: bool) -> DatastoreRecord:
        """Register a datastore of ``kind`` (``local`` or ``azure_blob``); ``options`` are the
        kind's arguments (credentials as :class:`~runyard.secrets.Secret`)."""
        ...

    def get_datastore(self, name: str | None = None) -> DatastoreRecord:
        """A datastore's record (None: the default); ``NotFound`` for an unknown name."""
        ...

    def list_datastores(self) -> list[DatastoreRecord]:
        """Every datastore, by name."""
        ...

    def set_default_datastore(self, name: str) -> DatastoreRecord:
        """Make ``name`` the one default datastore."""
        ...

    def unregister_datastore(self, name: str) -> None:
        """Forget a datastore and its credentials."""
        ...

    def open_datastore(self, name: str) -> DatastoreBackend:
        """The storage of a datastore, for upload and download (embedded only)."""
        ...

    # -- environments ------------------------------------------------------------------------
    def register_environment(self, env: Environment) -> EnvironmentRecord:
        """Register a new version of an environment when its definition changed."""
        ...

    def get_environment(self, name: str, version: str | int | None = None
                        ) -> EnvironmentRecord:
        """A registered environment version."""
        ...

    def list_environments(self) -> list[EnvironmentRecord]:
        """The latest version of each registered environment."""
        ...

    # -- model registry ----------------------------------------------------------------------
    def register_model(self, model_path: Path, model_name: str, **kwargs: Any) -> ModelRecord:
        """Register a local file or folder as the next version of ``model_name``."""
        ...

    def register_run_model(self, run_id: str, model_name: str, model_path: str,
                           **kwargs: Any) -> ModelRecord:
        """Register a run's artifact file or folder (linked to the run)."""
        ...

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        """A model version (default: the latest); NotFound when absent."""
        ...

    def list_models(self, name: str | None = None, *,
                    tags: dict[str, str | None] | None = None,
                    properties: dict[str, str | None] | None = None,
                    run_id: str | None = None, latest: bool = False) -> list[ModelRecord]:
        """Model versions matching the filters."""
        ...

    def download_model(self, name: str, version: int, target_dir: Path, *,
                       exist_ok: bool = False) -> Path:
        """Write a model version's files under ``target_dir``; returns the model's path."""
        ...

    def update_model(self, name: str, version: int, **changes: Any) -> ModelRecord:
        """Change tags (``tags``, ``remove_tags``), add ``properties``, set ``description``."""
        ...

    def delete_model(self, name: str, version: int) -> ModelRecord:
        """Delete one version (refused while something refers to it)."""
        ...

    # -- datasets ----------------------------------------------------------------------------
    def resolve_dataset_files(self, paths: list[tuple[str, str]]) -> list[DatasetFile]:
        """The files (datastore, path-or-glob) pairs name, with size and sha256."""
        ...

    def register_dataset(self, name: str, kind: str, definition: dict[str, Any],
                         files: list[DatasetFile], **kwargs: Any) -> DatasetRecord:
        """Record a new version of dataset ``name`` (``description``, ``tags``,
        ``create_new_version`` as keywords)."""
        ...

    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        """A dataset version (default: the latest); NotFound when absent."""
        ...

    def list_datasets(self, name: str | None = None, *, latest: bool = False
                      ) -> list[DatasetRecord]:
        """Registered dataset versions, by name, newest first."""
        ...

    def fetch_dataset_files(self, files: list[DatasetFile]) -> tuple[list[Path], int]:
        """Cached local copies of ``files`` (checked against their sha256) and how many had to
        be fetched (embedded only)."""
        ...

    def changed_dataset_files(self, files: list[DatasetFile]) -> list[str]:
        """``datastore:path`` of each file whose bytes differ from the record."""
        ...

    # -- cleanup -----------------------------------------------------------------------------
    def delete_runs(self, run_ids: list[str], *, dry_run: bool = False) -> CleanupReport:
        """Delete ended runs with their children (records, metrics, artifacts, folders)."""
        ...

    def collect_garbage(self, older_than_days: float, *, dry_run: bool = False
                        ) -> CleanupReport:
        """Remove old ended runs, unreferenced snapshots and blobs, unused environments."""
        ...

    def reconcile(self) -> None:
        """Move every live run on by one step (embedded; a server reconciles by itself)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
