"""Workspace integrity under faults (issue 10, point 3), with real processes and real files.

* many processes creating the same new workspace at once all end up with one workspace;
* opening a workspace never creates its database; a database deleted or replaced under a
  running process stops it with a clear error instead of a silent success;
* a database busy past the (configured) timeout and a full disk are clear errors naming the
  file and the fix, on the SDK and on the CLI (one line, no traceback).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runyard
from runyard.context import open_context
from runyard.errors import AlreadyExists, DatabaseBusy, DatabaseMissing, DiskFull
from runyard.workspace import Workspace
from support import set_config

SRC = Path(runyard.__file__).resolve().parents[1]
DB = "runyard.db"
PROCESSES = 6
ROUNDS = 3


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def _data_files(root: Path) -> set[str]:
    return set(os.listdir(root / ".runyard"))


def _drop_database(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (root / ".runyard" / f"{DB}{suffix}").unlink()



# -- concurrent creation ---------------------------------------------------------------------
CREATOR = """
import json, os, sys, time
from pathlib import Path
path, go, ready, exist_ok = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
from runyard.errors import RunyardError
from runyard.workspace import Workspace
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.0005)
try:
    ws = Workspace.create("shared", path, exist_ok=exist_ok)
except RunyardError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    sys.exit(3)
exp = ws.store.get_or_create_experiment("exp")
cfg = (Path(path) / ".runyard" / "config.json").read_text()
print(json.dumps({"config": json.loads(cfg), "experiment": exp.id, "name": ws.name}))
ws.close()
"""


def _create_at_once(tmp: Path, folder: Path, exist_ok: bool) -> list[tuple[int, str, str]]:
    """Start PROCESSES creators, release them together, return (rc, stdout, stderr) each."""
    go = tmp / f"go-{folder.name}"
    procs = []
    for i in range(PROCESSES):
        ready = tmp / f"ready-{folder.name}-{i}"
        procs.append((ready, subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(folder), str(go), str(ready),
             "1" if exist_ok else "0"],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline, "creators did not start"
        time.sleep(0.01)
    go.touch()
    results = []
    for _, p in procs:
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        results.append((p.returncode, out, err))
    return results


def test_many_processes_creating_one_workspace_all_get_the_same_one(tmp_path: Path) -> None:
    failures = []
    for n in range(ROUNDS):
        folder = tmp_path / f"ws{n}"
        results = _create_at_once(tmp_path, folder, exist_ok=True)
        failures += [(rc, out, err[-2000:]) for rc, out, err in results if rc != 0]
        if any(rc != 0 for rc, _, _ in results):
            continue
        docs = [json.loads(out) for _, out, _ in results]
        assert {json.dumps(d["config"], sort_keys=True) for d in docs} == {json.dumps(
            {"workspace_name": "shared", "version": 1}, sort_keys=True)}
        assert len({d["experiment"] for d in docs}) == 1, docs
        leftovers = {f for f in _data_files(folder) if f.endswith(".tmp")}
        assert leftovers == set(), leftovers
        ws = Workspace.get("shared", folder)
        assert [e.name for e in ws.store.list_experiments()] == ["exp"]
        ws.close()
    assert failures == [], f"{len(failures)} of {ROUNDS * PROCESSES} creators failed: " \
                           f"{failures[:3]}"


def test_concurrent_creation_without_exist_ok_has_one_winner(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    results = _create_at_once(tmp_path, folder, exist_ok=False)
    winners = [out for rc, out, _ in results if rc == 0]
    losers = [json.loads(out) for rc, out, _ in results if rc == 3]
    assert len(winners) == 1, results
    assert len(losers) == PROCESSES - 1, results
    assert {d["error"] for d in losers} == {AlreadyExists.__name__}
    assert all("already exists" in d["message"] for d in losers)


STORE_OPENER = """
import json, sys, time
from pathlib import Path
url, go, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
from runyard.store.sqlalchemy.store import SqlWorkspaceStore
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.0005)
store = SqlWorkspaceStore(url)
print(store.get_or_create_experiment("exp").id)
store.close()
"""


def test_many_processes_migrating_one_new_database_at_once(db_url: str, tmp_path: Path) -> None:
    """The migration lock: a file lock on SQLite, an advisory lock on PostgreSQL."""
    go = tmp_path / "go"
    procs = []
    for i in range(PROCESSES):
        ready = tmp_path / f"ready-{i}"
        procs.append((ready, subprocess.Popen(
            [sys.executable, "-c", STORE_OPENER, db_url, str(go), str(ready)], env=_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline, "openers did not start"
        time.sleep(0.01)
    go.touch()
    results = []
    for _, p in procs:
        out, err = p.communicate(timeout=90)
        results.append((p.returncode, out.strip(), err[-1500:]))
    assert [r for r in results if r[0] != 0] == []
    assert len({out for _, out, _ in results}) == 1


# -- a missing database is never created by opening ----------------------------------------
def test_opening_a_workspace_whose_database_was_deleted_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "w"
    ws = Workspace.create("keeper", root)
    ws.store.get_or_create_experiment("exp")
    ws.close()
    _drop_database(root)
    before = _data_files(root)
    db_file = str(root / ".runyard" / DB)
    for opener in (lambda: Workspace.get("keeper", root),
                   lambda: Workspace.from_config(root),
                   lambda: Workspace.create("keeper", root, exist_ok=True),
                   lambda: open_context(root).store):
        with pytest.raises(DatabaseMissing) as info:
            opener()
        message = str(info.value)
        assert db_file in message
        assert "backup" in message and "runyard init" in message
    assert _data_files(root) == before
    assert not (root / ".runyard" / DB).exists()


def test_a_database_without_runyard_schema_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "w"
    Workspace.create("keeper", root).close()
    _drop_database(root)
    sqlite3.connect(root / ".runyard" / DB).close()  # an empty file where the database was
    with pytest.raises(DatabaseMissing, match="no runyard schema"):
        _ = Workspace.get("keeper", root).store


def _replace_with_copy(db_file: Path) -> None:
    """Put an (older) copy of the database in its place, as a restore would (new inode)."""
    copy = db_file.with_name("copy.db")
    src = sqlite3.connect(db_file)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    os.replace(copy, db_file)


@pytest.mark.parametrize("fault", ["deleted", "replaced"])
def test_a_process_whose_database_goes_away_stops_with_a_clear_error(
        tmp_path: Path, fault: str) -> None:
    root = tmp_path / "w"
    ws = Workspace.create("keeper", root)
    store = ws.store
    store.get_or_create_experiment("before")
    db_file = root / ".runyard" / DB
    if fault == "deleted":
        db_file.unlink()
    else:
        _replace_with_copy(db_file)
    with pytest.raises(DatabaseMissing) as info:
        store.get_or_create_experiment("after")
    assert str(db_file) in str(info.value) and fault in str(info.value)
    with pytest.raises(DatabaseMissing):
        store.list_experiments()
    ws.close()
    if fault == "replaced":  # the copy in place did not receive the lost write either
        names = [r[0] for r in sqlite3.connect(db_file).execute("SELECT name FROM experiments")]
        assert names == ["before"]


WAITER = """
import sys, time
from pathlib import Path
from runyard.workspace import Workspace
ws = Workspace.get("keeper", sys.argv[1])
ws.store.get_or_create_experiment("before")
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
ws.store.get_or_create_experiment("after")
print("wrote after")
"""


def test_a_waiting_process_does_not_report_success_after_its_database_is_deleted(
        tmp_path: Path) -> None:
    root = tmp_path / "w"
    Workspace.create("keeper", root).close()
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", WAITER, str(root), str(ready), str(go)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _drop_database(root)
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "wrote after" not in out
    assert "DatabaseMissing" in err and str(root / ".runyard" / DB) in err


# -- busy past the timeout -------------------------------------------------------------------
HOLDER = """
import sqlite3, sys, time
from pathlib import Path
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def _write_lock_held(db_file: Path, tmp: Path) -> Iterator[None]:
    """Another process holds the database's write lock (BEGIN IMMEDIATE) for the block."""
    ready, release = tmp / "held", tmp / "release"
    for f in (ready, release):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_file), str(ready),
                             str(release)])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "holder did not start"
            time.sleep(0.01)
        yield
    finally:
        release.touch()
        proc.wait(timeout=30)


def test_a_database_busy_past_the_timeout_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "w"
    Workspace.create("keeper", root).close()
    set_config(root, database_busy_timeout_seconds=0.3)
    ws = Workspace.get("keeper", root)
    store = ws.store
    db_file = root / ".runyard" / DB
    with _write_lock_held(db_file, tmp_path):
        started = time.monotonic()
        with pytest.raises(DatabaseBusy) as info:
            store.get_or_create_experiment("blocked")
        assert time.monotonic() - started < 10
        message = str(info.value)
        assert str(db_file) in message and "0.3 s" in message
        assert "database_busy_timeout_seconds" in message
        assert store.list_experiments() == []  # reads go on while a writer holds the lock
    assert store.get_or_create_experiment("later").name == "later"
    ws.close()


def test_the_busy_timeout_must_be_a_positive_number(tmp_path: Path) -> None:
    root = tmp_path / "w"
    Workspace.create("keeper", root).close()
    set_config(root, database_busy_timeout_seconds="soon")
    with pytest.raises(Exception, match="database_busy_timeout_seconds"):
        _ = Workspace.get("keeper", root).store


# -- disk full -------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs; skipped only where mounting is refused (not root, no privilege)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30, check=False)


def _fill(folder: Path) -> None:
    """Write a file until the disk under ``folder`` is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_full_disk_is_a_clear_error(small_disk: Path) -> None:
    root = small_disk / "w"
    ws = Workspace.create("keeper", root)
    store = ws.store
    store.get_or_create_experiment("before")
    _fill(small_disk)
    db_file = root / ".runyard" / DB
    with pytest.raises(DiskFull) as info:
        for i in range(1000):  # the WAL grows page by page until the disk refuses
            store.get_or_create_experiment(f"exp-{i}-" + "x" * 2000)
    assert str(db_file) in str(info.value) and "free disk space" in str(info.value)
    ws.close()


def test_creating_a_workspace_on_a_full_disk_is_a_clear_error(small_disk: Path) -> None:
    _fill(small_disk)
    root = small_disk / "w"
    with pytest.raises(DiskFull, match="free disk space"):
        Workspace.create("keeper", root)
    assert not (root / ".runyard" / "config.json").exists()


# -- the CLI ---------------------------------------------------------------------------------
def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runyard.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_cli_on_a_deleted_database_fails_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    assert _cli(root, "init").returncode == 0
    _drop_database(root)
    before = _data_files(root)
    line = _one_line_error(_cli(root, "run", "list"))
    assert str(root / ".runyard" / DB) in line and "runyard init" in line
    line = _one_line_error(_cli(root, "init", "--exist-ok"))
    assert "missing" in line
    assert _data_files(root) == before


def test_cli_on_a_busy_database_fails_with_one_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text(textwrap.dedent("print('hi')\n"))
    assert _cli(root, "init").returncode == 0
    set_config(root, database_busy_timeout_seconds=0.3)
    with _write_lock_held(root / ".runyard" / DB, tmp_path):
        line = _one_line_error(_cli(root, "run", "submit", "train.py"))
    assert "busy" in line and "database_busy_timeout_seconds" in line
