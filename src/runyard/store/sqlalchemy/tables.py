"""Table definitions. Alembic migrations under ``migrations/`` create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

experiments = Table(
    "experiments", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
)

runs = Table(
    "runs", metadata,
    Column("id", String(512), primary_key=True),
    Column("experiment", String(255), ForeignKey("experiments.name"), nullable=False),
    Column("parent_id", String(512), nullable=True),
    Column("run_type", String(64), nullable=False),
    Column("display_name", String(255), nullable=True),
    Column("status", String(32), nullable=False),
    Column("target", String(64), nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("start_time", Float, nullable=True),
    Column("end_time", Float, nullable=True),
    Column("snapshot_id", String(64), nullable=True),
    Column("definition", JSON, nullable=False),
    Column("error", JSON, nullable=True),
    Column("handle", JSON, nullable=True),
    Column("rejected_events", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_runs_experiment_created", "experiment", "created_at"),
    Index("ix_runs_parent", "parent_id"),
    Index("ix_runs_status", "status"),
)

run_events = Table(
    "run_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(512), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("cause", Text, nullable=False),
)

run_attempts = Table(
    "run_attempts", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("cause", Text, nullable=False),
    Column("status", String(32), nullable=True),
)

run_tags = Table(
    "run_tags", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=True),
)

run_properties = Table(
    "run_properties", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per (run, metric name, kind); the values refer to it, which keeps them small.
metric_series = Table(
    "metric_series", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(512), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    UniqueConstraint("run_id", "name", "kind", name="uq_metric_series"),
)

metrics = Table(
    "metrics", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("series_id", Integer, ForeignKey("metric_series.id"), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float, nullable=True),
    Column("value_json", Text, nullable=True),
    Column("ts", Float, nullable=False),
    Index("ix_metrics_series_step", "series_id", "step"),
)

run_files = Table(
    "run_files", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("name", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
)

spool_offsets = Table(
    "spool_offsets", metadata,
    Column("run_id", String(512), primary_key=True),
    Column("stream", String(255), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)

environments = Table(
    "environments", metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("definition", JSON, nullable=False),
    Column("definition_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

compute_targets = Table(
    "compute_targets", metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("managed", Boolean, nullable=False),
    Column("config", JSON, nullable=False),
    Column("config_version", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("errors", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Datastores: where data lives (the workspace's own folder, a local folder, an Azure Blob
# container). Credentials are secrets (scope ``datastore/<name>``), never in ``config``.
datastores = Table(
    "datastores", metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("config", JSON, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The model registry: one row per (name, version); ``files`` is the manifest of the model's
# files (relative path, content blob, size) under ``root`` (the registered file or folder name).
models = Table(
    "models", metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=True),
    Column("framework", String(64), nullable=True),
    Column("framework_version", String(64), nullable=True),
    Column("tags", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("run_id", String(512), nullable=True),
    Column("experiment", String(255), nullable=True),
    Column("datasets", JSON, nullable=False),
    Column("root", String(1024), nullable=False),
    Column("files", JSON, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_models_run_id", "run_id"),
)

# Datasets: one row per (name, version). ``definition`` is what was asked (datastore paths or
# globs, tabular parse options); ``files`` is what it resolved to at registration (datastore,
# path, size, sha256 of the bytes), so a reader can tell exactly which bytes a version means.
datasets = Table(
    "datasets", metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("files", JSON, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Secrets live apart from configuration, encrypted with a key kept outside the database.
secrets = Table(
    "secrets", metadata,
    Column("scope", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
)
