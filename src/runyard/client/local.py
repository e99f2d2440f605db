"""``LocalClient``: the ``WorkspaceClient`` of an embedded workspace (services in-process)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from runyard.compute.kinds import load_kind
from runyard.entities import (
    AttemptRecord,
    ComputeRecord,
    ExperimentRecord,
    FileRecord,
    MetricRow,
    MetricSeries,
    RunEvent,
    RunRecord,
)
from runyard.errors import NotFound
from runyard.naming import check_key, check_values
from runyard.services import cleanup as cleanup_svc
from runyard.services import compute as compute_svc
from runyard.services import datasets as dset_svc
from runyard.services import datastores as ds_svc
from runyard.services import environments as env_svc
from runyard.services import models as models_svc
from runyard.services.runs.control import cancel_run, end_run
from runyard.services.runs.ingest import build_metric_row
from runyard.services.runs.interactive import start_interactive_run
from runyard.services.runs.reconciler import ensure_reconciler, reconcile, reconcile_run
from runyard.services.runs.submit import submit_script_run
from runyard.services.targets import get_kind
from runyard.store.base import IngestBatch

if TYPE_CHECKING:
    from runyard.compute.base import ComputeKind, TargetStatus
    from runyard.compute.config import ComputeConfiguration
    from runyard.context import WorkspaceContext
    from runyard.datastores.base import DatastoreBackend
    from runyard.environment import Environment
    from runyard.runconfig import ScriptRunConfig
    from runyard.runtime.context import LiveRun
    from runyard.services.cleanup import CleanupReport
    from runyard.store.base import DatastoreRecord, EnvironmentRecord, RunFilter
    from runyard.store.dataset_record import DatasetFile, DatasetRecord
    from runyard.store.model_record import ModelRecord

#: A reader's sync reads at most this many spool chunks per stream (the reconciler does the
#: rest): reading a run's status stays a bounded operation.
READ_SYNC_PASSES = 4


class LocalClient:
    """Calls the services of one embedded workspace in this process."""

    embedded = True

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    # -- experiments -------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        return self.ctx.store.get_or_create_experiment(name)

    def list_experiments(self) -> list[ExperimentRecord]:
        return self.ctx.store.list_experiments()

    # -- runs --------------------------------------------------------------------------------
    def submit_run(self, experiment: str, config: ScriptRunConfig,
                   tags: dict[str, Any] | None) -> RunRecord:
        # first: a submitter that dies mid-way leaves a reconciler to resolve its run
        ensure_reconciler(self.ctx)
        return submit_script_run(self.ctx, experiment, config, tags)

    def submit_sweep(self, experiment: str, spec: dict[str, Any], config: ScriptRunConfig,
                     tags: dict[str, Any] | None) -> RunRecord:
        from runyard.services.sweeps.controller import submit_sweep  # noqa: PLC0415

        ensure_reconciler(self.ctx)
        return submit_sweep(self.ctx, experiment, spec, config, tags)

    def start_interactive_run(self, experiment: str, snapshot_directory: Path | None,
                              outputs: str | None, display_name: str | None
                              ) -> tuple[RunRecord, LiveRun]:
        return start_interactive_run(self.ctx, experiment, snapshot_directory, outputs,
                                     display_name)

    def get_run(self, run_id: str, *, sync: bool = False) -> RunRecord | None:
        if sync:
            try:
                return reconcile_run(self.ctx, run_id, READ_SYNC_PASSES)
            except NotFound:
                return None
        return self.ctx.store.get_run(run_id)

    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        return self.ctx.store.list_runs(flt)

    def cancel_run(self, run_id: str) -> RunRecord:
        return cancel_run(self.ctx, run_id)

    def end_run(self, run_id: str, status: str, cause: str,
                error: dict[str, Any] | None = None) -> RunRecord:
        from runyard.entities import RunStatus  # noqa: PLC0415

        return end_run(self.ctx, run_id, RunStatus(status), cause, error)

    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        return self.ctx.store.set_experiment_archived(name, archived)

    def list_events(self, run_id: str) -> list[RunEvent]:
        return self.ctx.store.list_events(run_id)

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        return self.ctx.store.list_attempts(run_id)

    def get_metric_rows(self, run_id: str, names: list[str] | None = None) -> list[MetricRow]:
        return self.ctx.store.get_metric_rows(run_id, names)

    def log_metric(self, run_id: str, name: str, kind: str, value: Any) -> None:
        check_key("name", name)
        row = build_metric_row(name, kind, 0, value)
        series = MetricSeries(run_id, name, kind, [0], [row.value], [row.value_json], [row.ts],
                              append=True)
        self.ctx.store.apply_ingest(run_id, IngestBatch(metric_series=[series]))

    def set_tags(self, run_id: str, tags: dict[str, str | None]) -> None:
        check_values("tags", dict(tags), allow_none=True)
        self.ctx.store.set_tags(run_id, tags)

    def remove_tags(self, run_id: str, keys: list[str]) -> None:
        self.ctx.store.remove_tags(run_id, keys)

    def add_properties(self, run_id: str, props: dict[str, str]) -> None:
        check_values("properties", dict(props), allow_none=False)
        self.ctx.store.add_properties(run_id, props)

    # -- logs and artifacts ------------------------------------------------------------------
    def list_files(self, run_id: str) -> list[FileRecord]:
        return self.ctx.store.list_files(run_id)

    def read_file(self, run_id: str, name: str, offset: int = 0, size: int = -1) -> bytes:
        return self.ctx.artifacts.read(run_id, name, offset, size)

    def download_file(self, run_id: str, name: str, dest: Path) -> Path:
        if name not in {f.name for f in self.ctx.store.list_files(run_id)}:
            raise NotFound(f"run {run_id} has no file {name!r}; see get_file_names()")
        return self.ctx.artifacts.get_file(run_id, name, dest)

    def upload_file(self, run_id: str, name: str, source: Path | BinaryIO) -> FileRecord:
        if isinstance(source, Path):
            size = self.ctx.artifacts.put_file(run_id, name, source)
        else:
            size = self.ctx.artifacts.write(run_id, name, source)
        rec = FileRecord(run_id, name, size)
        self.ctx.store.add_files([rec])
        return rec

    # -- snapshots ---------------------------------------------------------------------------
    def missing_blobs(self, blobs: list[str]) -> list[str]:
        return self.ctx.snapshots.missing_blobs(blobs)

    def restore_snapshot(self, snapshot_id: str, dest: Path) -> Path:
        return self.ctx.snapshots.restore(snapshot_id, dest)

    # -- compute -----------------------------------------------------------------------------
    def create_compute(self, name: str, config: ComputeConfiguration) -> ComputeRecord:
        return compute_svc.create_compute(self.ctx, name, config)

    def attach_compute(self, name: str, config: ComputeConfiguration) -> ComputeRecord:
        return compute_svc.attach_compute(self.ctx, name, config)

    def get_compute(self, name: str) -> ComputeRecord:
        return compute_svc.get_record(self.ctx, name)

    def list_compute(self) -> list[ComputeRecord]:
        return compute_svc.list_compute(self.ctx)

    def compute_status(self, name: str) -> TargetStatus:
        return compute_svc.compute_status(self.ctx, name)

    def update_compute(self, name: str, changes: dict[str, Any]) -> ComputeRecord:
        return compute_svc.update_compute(self.ctx, name, changes)

    def delete_compute(self, name: str, *, force: bool, detach: bool) -> None:
        compute_svc.delete_compute(self.ctx, name, force=force, detach=detach)

    def compute_kind(self, name: str, kind: str | None = None) -> ComputeKind:
        if kind:  # known kind: no lookup (works for a target that was just deleted)
            return load_kind(kind)(self.ctx, name)
        return get_kind(self.ctx, name)

    # -- datastores --------------------------------------------------------------------------
    def register_datastore(self, kind: str, name: str, options: dict[str, Any], *,
                           overwrite: bool) -> DatastoreRecord:
        if kind == "local":
            return ds_svc.register_local(self.ctx, name, options["path"], overwrite=overwrite)
        if kind == "azure_blob":
            return ds_svc.register_blob(self.ctx, name, overwrite=overwrite, **options)
        raise NotFound(f"unknown datastore kind {kind!r} (known: local, azure_blob)")

    def get_datastore(self, name: str | None = None) -> DatastoreRecord:
        if name is None:
            return ds_svc.get_default(self.ctx)
        return ds_svc.get_datastore(self.ctx, name)

    def list_datastores(self) -> list[DatastoreRecord]:
        return ds_svc.list_datastores(self.ctx)

    def set_default_datastore(self, name: str) -> DatastoreRecord:
        return ds_svc.set_default(self.ctx, name)

    def unregister_datastore(self, name: str) -> None:
        ds_svc.unregister(self.ctx, name)

    def open_datastore(self, name: str) -> DatastoreBackend:
        return ds_svc.open_datastore(self.ctx, name)

    # -- environments ------------------------------------------------------------------------
    def register_environment(self, env: Environment) -> EnvironmentRecord:
        return env_svc.register_environment(self.ctx, env)

    def get_environment(self, name: str, version: str | int | None = None
                        ) -> EnvironmentRecord:
        return env_svc.get_environment(self.ctx, name, version)

    def list_environments(self) -> list[EnvironmentRecord]:
        return env_svc.list_environments(self.ctx)

    # -- model registry ----------------------------------------------------------------------
    def register_model(self, model_path: Path, model_name: str, **kwargs: Any) -> ModelRecord:
        return models_svc.register_model(self.ctx, model_path, model_name, **kwargs)

    def register_run_model(self, run_id: str, model_name: str, model_path: str,
                           **kwargs: Any) -> ModelRecord:
        return models_svc.register_run_model(self.ctx, run_id, model_name, model_path,
                                             **kwargs)

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        return models_svc.get_model(self.ctx, name, version)

    def list_models(self, name: str | None = None, *,
                    tags: dict[str, str | None] | None = None,
                    properties: dict[str, str | None] | None = None,
                    run_id: str | None = None, latest: bool = False) -> list[ModelRecord]:
        return models_svc.list_models(self.ctx, name, tags=tags, properties=properties,
                                      run_id=run_id, latest=latest)

    def download_model(self, name: str, version: int, target_dir: Path, *,
                       exist_ok: bool = False) -> Path:
        return models_svc.download_model(self.ctx, name, version, target_dir,
                                         exist_ok=exist_ok)

    def update_model(self, name: str, version: int, **changes: Any) -> ModelRecord:
        return models_svc.update_model(self.ctx, name, version, **changes)

    def delete_model(self, name: str, version: int) -> ModelRecord:
        return models_svc.delete_model(self.ctx, name, version)

    # -- datasets ----------------------------------------------------------------------------
    def resolve_dataset_files(self, paths: list[tuple[str, str]]) -> list[DatasetFile]:
        return dset_svc.resolve_files(self.ctx, paths)

    def register_dataset(self, name: str, kind: str, definition: dict[str, Any],
                         files: list[DatasetFile], **kwargs: Any) -> DatasetRecord:
        return dset_svc.register_dataset(self.ctx, name, kind, definition, files, **kwargs)

    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        return dset_svc.get_dataset(self.ctx, name, version)

    def list_datasets(self, name: str | None = None, *, latest: bool = False
                      ) -> list[DatasetRecord]:
        return dset_svc.list_datasets(self.ctx, name, latest=latest)

    def fetch_dataset_files(self, files: list[DatasetFile]) -> tuple[list[Path], int]:
        return dset_svc.fetch_files(self.ctx, files)

    def changed_dataset_files(self, files: list[DatasetFile]) -> list[str]:
        return dset_svc.changed_files(self.ctx, files)

    # -- cleanup -----------------------------------------------------------------------------
    def delete_runs(self, run_ids: list[str], *, dry_run: bool = False) -> CleanupReport:
        return cleanup_svc.delete_runs(self.ctx, run_ids, dry_run=dry_run)

    def collect_garbage(self, older_than_days: float, *, dry_run: bool = False
                        ) -> CleanupReport:
        return cleanup_svc.collect_garbage(self.ctx, older_than_days, dry_run=dry_run)

    def reconcile(self) -> None:
        reconcile(self.ctx)

    def close(self) -> None:
        self.ctx.close()


