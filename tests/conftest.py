"""Shared fixtures: a PostgreSQL server for the session, a fresh database per test, markers.

* ``postgres_url``: the server named by ``RUNYARD_TEST_POSTGRES_URL`` (set by scripts/test), else
  one started here with ``scripts/pg`` and stopped at the end. Fails, never skips, if it can't.
* ``db_url``: a fresh empty database URL, parametrized over sqlite and postgres.
* Tests are marked ``unit`` / ``integration`` / ``e2e`` after their folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

TESTS_DIR = Path(__file__).resolve().parent
PG_SCRIPT = TESTS_DIR.parent / "scripts" / "pg"
FOLDER_MARKERS = {"unit", "integration", "e2e", "faults", "security"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS_DIR).parts[0]
        except ValueError:
            continue
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)


def _pg_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PG_SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a running PostgreSQL server (database ``runyard_test``)."""
    url = os.environ.get("RUNYARD_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    # Not under pytest's tmp dir: that is private to root and initdb runs as `postgres`.
    pg_dir = tempfile.mkdtemp(prefix="runyard-test-pg-")
    try:
        proc = _pg_script("start", pg_dir)
        if proc.returncode != 0:
            pytest.fail(
                f"could not start PostgreSQL with scripts/pg (exit {proc.returncode}):\n"
                f"{proc.stderr.strip()}",
                pytrace=False,
            )
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        _pg_script("stop", pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)


def _psycopg_conninfo(url: URL, dbname: str) -> str:
    parts = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": dbname,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL; the postgres one is dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ws.db'}"
        return

    import psycopg  # the `postgres` extra; a missing driver is an error, not a skip

    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"t_{uuid.uuid4().hex}"
    admin = _psycopg_conninfo(server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Azurite blob emulator on a loopback port, one per test module
    (``tests/datastores_support.py`` installs and starts it; it fails, never skips)."""
    from datastores_support import start_azurite  # noqa: PLC0415  (npm-installed on first use)

    az = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield az
    finally:
        az.stop()
