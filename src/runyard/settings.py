"""Defaults and environment variables, read when asked (never at import time)."""

from __future__ import annotations

import os

ENV_DATABASE_URL = "RUNYARD_DATABASE_URL"
CONFIG_DIR_NAME = ".runyard"
CONFIG_FILE_NAME = "config.json"
DB_FILE_NAME = "runyard.db"
SNAPSHOT_MAX_BYTES = 300 * 1024 * 1024
SNAPSHOT_MAX_FILES = 2000


def default_max_concurrent_runs() -> int:
    """Local concurrency limit when the workspace config sets none: the number of cores."""
    return os.cpu_count() or 1


def database_url_from_env() -> str | None:
    """``RUNYARD_DATABASE_URL`` if set and non-empty."""
    return os.environ.get(ENV_DATABASE_URL) or None
