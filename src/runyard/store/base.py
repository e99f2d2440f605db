"""The ``WorkspaceStore`` contract: everything the services read and write about a workspace.

One abstract store, implemented over SQLAlchemy (SQLite or PostgreSQL) now and over HTTP later;
the same contract test suite runs against every implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.entities import (
    AttemptRecord,
    ComputeRecord,
    ExperimentRecord,
    FileRecord,
    MetricRow,
    MetricSeries,
    RunEvent,
    RunRecord,
    RunStatus,
)
from runyard.store.dataset_record import DatasetRecord
from runyard.store.model_record import ModelRecord


@dataclass
class Transition:
    """A requested status change: applied only if the run is still in an allowed state."""

    run_id: str
    new: RunStatus
    cause: str
    at: float
    attempt: int | None = None
    error: dict[str, Any] | None = None


@dataclass
class RejectedEvent:
    """A spool line the ingest refused: kept for the user to see, never applied."""

    run_id: str   # the run whose spool held it
    stream: str
    reason: str
    line: str     # the line (cut)
    at: float

    def to_json(self) -> dict[str, Any]:
        """The line of ``system_logs/rejected_events.jsonl`` that records it."""
        return {"at": self.at, "stream": self.stream, "reason": self.reason, "line": self.line}


@dataclass
class IngestBatch:
    """What one pull of a run's spool carried; applied in one transaction with the offsets."""

    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)  # stream -> (from, to)
    children: list[RunRecord] = field(default_factory=list)
    metric_series: list[MetricSeries] = field(default_factory=list)
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    properties: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    #: Lines refused by the checks; the store counts them on the run.
    rejected: list[RejectedEvent] = field(default_factory=list)
    #: Set by the store once the batch is committed (False: another ingester had it).
    applied: bool = False


@dataclass
class EnvironmentRecord:
    """One registered version of a named environment definition."""

    name: str
    version: int
    definition: dict[str, Any]
    definition_hash: str
    created_at: float


@dataclass
class DatastoreRecord:
    """One registered datastore: its kind and non-secret config (secrets live in the secret
    box under the scope ``datastore/<name>``)."""

    name: str
    kind: str
    config: dict[str, Any]
    is_default: bool
    created_at: float
    updated_at: float


@dataclass
class RunFilter:
    """Filters for listing runs."""

    experiment: str | None = None
    parent_id: str | None = None
    top_level_only: bool = True
    statuses: Sequence[RunStatus] | None = None
    tags: dict[str, str | None] | None = None
    properties: dict[str, str | None] | None = None
    target: str | None = None
    limit: int | None = None


class WorkspaceStore(ABC):
    """Abstract store of one workspace (see module docs)."""

    # -- experiments -------------------------------------------------------------------------
    @abstractmethod
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        """Return the experiment ``name``, creating it if needed (race safe)."""

    @abstractmethod
    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """Return the experiment or None."""

    @abstractmethod
    def list_experiments(self) -> list[ExperimentRecord]:
        """All experiments, oldest first."""

    @abstractmethod
    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        """Archive (hide from default listings) or reactivate the experiment ``name``
        (``NotFound`` if it does not exist)."""

    # -- runs --------------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, run: RunRecord, cause: str) -> None:
        """Insert a new run (with its first attempt and first status event)."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """Return the run or None."""

    @abstractmethod
    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest first."""

    @abstractmethod
    def transition(self, t: Transition) -> bool:
        """Apply a status change if allowed (forward only; terminal never changes)."""

    @abstractmethod
    def set_handle(self, run_id: str, handle: dict[str, Any]) -> None:
        """Persist the target's job handle (versioned JSON) for reattaching."""

    @abstractmethod
    def set_snapshot(self, run_id: str, snapshot_id: str) -> None:
        """Record the run's code snapshot."""

    @abstractmethod
    def list_events(self, run_id: str) -> list[RunEvent]:
        """Status transitions of a run, in order."""

    @abstractmethod
    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        """Attempts of a run, in order."""

    @abstractmethod
    def start_attempt(self, run_id: str, cause: str, at: float) -> int:
        """Open a new attempt (back to Queued); returns its number."""

    @abstractmethod
    def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete the runs ``run_ids`` and everything recorded about them (status events,
        attempts, tags, properties, metrics, file records, spool offsets) in one transaction;
        only runs in a terminal state are deleted (a live one is left as it is). Returns how
        many runs were deleted. Children are not followed: pass their ids too."""

    # -- tracking ----------------------------------------------------------------------------
    @abstractmethod
    def set_tags(self, run_id: str, tags: dict[str, str | None]) -> None:
        """Set mutable tags."""

    @abstractmethod
    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        """Remove tags."""

    @abstractmethod
    def add_properties(self, run_id: str, props: dict[str, str]) -> None:
        """Add immutable properties; raise InvalidParameter on a changed value."""

    @abstractmethod
    def add_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Insert metric rows (the same write path as ``apply_ingest``'s metric series)."""

    @abstractmethod
    def get_metric_rows(self, run_id: str, names: Sequence[str] | None = None) -> list[MetricRow]:
        """Metric rows of a run ordered by name, step, insertion."""

    @abstractmethod
    def add_files(self, files: Sequence[FileRecord]) -> None:
        """Record artifacts (upsert by run and name)."""

    @abstractmethod
    def list_files(self, run_id: str) -> list[FileRecord]:
        """Artifacts of a run, by name."""

    # -- ingest ------------------------------------------------------------------------------
    @abstractmethod
    def get_offsets(self, run_id: str) -> dict[str, int]:
        """Spool stream offsets already ingested for a run."""

    @abstractmethod
    def apply_ingest(self, run_id: str, batch: IngestBatch) -> list[Transition]:
        """Apply a batch and its offsets atomically; returns the transitions that took effect.

        Offsets only move forward: a batch whose offsets are behind what is stored (a concurrent
        ingester got there first) is dropped whole, so ingest is idempotent.
        """

    # -- environments ------------------------------------------------------------------------
    @abstractmethod
    def register_environment(self, name: str, definition: dict[str, Any],
                             definition_hash: str) -> EnvironmentRecord:
        """Store a new version of ``name`` unless its latest version has the same hash.

        Returns the new version, or the latest one when nothing changed (race safe).
        """

    @abstractmethod
    def get_environment(self, name: str, version: int | None = None) -> EnvironmentRecord | None:
        """The given version of ``name`` (default: the latest), or None."""

    @abstractmethod
    def list_environments(self) -> list[EnvironmentRecord]:
        """Every registered version, by name then version."""

    # -- compute targets & secrets -----------------------------------------------------------
    @abstractmethod
    def create_compute_target(self, rec: ComputeRecord,
                              secrets: dict[str, bytes] | None = None) -> None:
        """Insert a target and its encrypted secrets; AlreadyExists-style error on a duplicate."""

    @abstractmethod
    def get_compute_target(self, name: str) -> ComputeRecord | None:
        """The target or None."""

    @abstractmethod
    def list_compute_targets(self) -> list[ComputeRecord]:
        """All stored targets by name."""

    @abstractmethod
    def update_compute_target(self, name: str, *, config: dict[str, Any] | None = None,
                              state: str | None = None,
                              errors: list[str] | None = None) -> ComputeRecord:
        """Change a target's configuration (bumping its version), state or errors."""

    @abstractmethod
    def delete_compute_target(self, name: str) -> None:
        """Remove a target and its secrets."""

    @abstractmethod
    def get_secrets(self, scope: str) -> dict[str, bytes]:
        """Ciphertexts stored under ``scope``."""

    # -- datastores --------------------------------------------------------------------------
    @abstractmethod
    def create_datastore(self, rec: DatastoreRecord,
                         secrets: dict[str, bytes] | None = None, *,
                         replace: bool = False) -> None:
        """Insert a datastore and its encrypted secrets in one transaction (``replace``: update
        an existing one and swap its secrets); ``AlreadyExists`` when the name is taken."""

    @abstractmethod
    def get_datastore(self, name: str) -> DatastoreRecord | None:
        """The datastore or None."""

    @abstractmethod
    def list_datastores(self) -> list[DatastoreRecord]:
        """All datastores by name."""

    @abstractmethod
    def set_default_datastore(self, name: str) -> None:
        """Make ``name`` the only default, atomically; ``NotFound`` when it does not exist."""

    @abstractmethod
    def delete_datastore(self, name: str) -> None:
        """Remove a datastore and its secrets; ``NotFound`` when it does not exist."""

    # -- model registry ----------------------------------------------------------------------
    @abstractmethod
    def add_model_version(self, rec: ModelRecord) -> ModelRecord:
        """Insert ``rec`` as the next version of its name (``rec.version`` is ignored) and
        return it with its version; concurrent registrations get distinct versions."""

    @abstractmethod
    def get_model(self, name: str, version: int | None = None) -> ModelRecord | None:
        """The given version of model ``name`` (default: the latest), or None."""

    @abstractmethod
    def list_models(self, name: str | None = None, *,
                    tags: Mapping[str, str | None] | None = None,
                    properties: Mapping[str, str | None] | None = None,
                    run_id: str | None = None, latest: bool = False) -> list[ModelRecord]:
        """Model versions (by name, newest first) matching the filters (a None value matches
        any value of the key); ``latest``: only the newest version of each name."""

    @abstractmethod
    def update_model(self, name: str, version: int, *,
                     tags: Mapping[str, str] | None = None,
                     remove_tags: list[str] | None = None,
                     properties: Mapping[str, str] | None = None,
                     description: str | None = None) -> ModelRecord:
        """Change a version's tags, properties (merged) or description; NotFound if absent."""

    @abstractmethod
    def delete_model(self, name: str, version: int) -> bool:
        """Remove one model version; False if it did not exist."""

    @abstractmethod
    def model_blobs(self) -> set[str]:
        """Every content blob referred to by some model version."""

    # -- datasets ----------------------------------------------------------------------------
    @abstractmethod
    def add_dataset_version(self, rec: DatasetRecord) -> DatasetRecord:
        """Insert ``rec`` as the next version of its name (``rec.version`` is ignored) and
        return it with its version; concurrent registrations get distinct versions."""

    @abstractmethod
    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord | None:
        """The given version of dataset ``name`` (default: the latest), or None."""

    @abstractmethod
    def list_datasets(self, name: str | None = None, *, latest: bool = False
                      ) -> list[DatasetRecord]:
        """Dataset versions by name, newest first; ``latest``: the newest of each name."""

    # -- misc --------------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections."""
