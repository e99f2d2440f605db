"""The ``WorkspaceStore`` contract, run against ``SqlWorkspaceStore`` on SQLite and PostgreSQL.

Every test takes ``db_url`` (a fresh empty database, parametrized over both engines), so the
same expectations hold on both; nothing is mocked.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from runyard.entities import FileRecord, MetricRow, MetricSeries, RunRecord, RunStatus
from runyard.errors import InvalidParameter
from runyard.store.base import IngestBatch, RunFilter, Transition
from runyard.store.sqlalchemy import tables
from runyard.store.sqlalchemy.engine import HEAD_REVISION, MIGRATIONS_DIR
from runyard.store.sqlalchemy.store import SqlWorkspaceStore

EXP = "exp-contract"
S = RunStatus


@pytest.fixture
def store(db_url: str) -> Iterator[SqlWorkspaceStore]:
    s = SqlWorkspaceStore(db_url)
    s.get_or_create_experiment(EXP)
    yield s
    s.close()


_clock = [1_700_000_000.0]


def _now() -> float:
    """Strictly increasing timestamps, so 'newest first' is well defined."""
    _clock[0] += 1.25
    return _clock[0]


def make_run(run_id: str, *, experiment: str = EXP, status: RunStatus = S.NOT_STARTED,
             **kw: Any) -> RunRecord:
    kw.setdefault("created_at", _now())
    return RunRecord(id=run_id, experiment=experiment, status=status, **kw)


def add_run(store: SqlWorkspaceStore, run_id: str, **kw: Any) -> RunRecord:
    rec = make_run(run_id, **kw)
    store.create_run(rec, "submitted")
    return rec


def scalar(name: str, step: int, value: float) -> MetricRow:
    return MetricRow(name, "scalar", step, value, None, _now())


def non_scalar(name: str, kind: str, step: int, value: Any) -> MetricRow:
    return MetricRow(name, kind, step, None, json.dumps(value), _now())


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released at once; results in order."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(30)
            out[i] = fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(calls)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads), "a racing call hung"
    if errors:
        raise errors[0]
    return out


# -- schema ------------------------------------------------------------------------------------
def test_schema_migrates_from_empty_to_exactly_the_tables(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        store = SqlWorkspaceStore(db_url)
        store.close()
        insp = sa.inspect(engine)
        assert set(insp.get_table_names()) == set(tables.metadata.tables) | {"alembic_version"}
        for name, table in tables.metadata.tables.items():
            assert [c["name"] for c in insp.get_columns(name)] == [c.name for c in table.columns]
            indexes = {i["name"] for i in insp.get_indexes(name)
                       if not i.get("duplicates_constraint")}  # PG lists UNIQUE's index too
            assert indexes == {i.name for i in table.indexes}
        with engine.connect() as c:
            versions = c.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert [v[0] for v in versions] == [HEAD_REVISION]
    finally:
        engine.dispose()


def test_second_store_on_same_url_does_not_remigrate(db_url: str) -> None:
    first = SqlWorkspaceStore(db_url)
    first.get_or_create_experiment(EXP)
    add_run(first, "run-kept", tags={"a": "1"})

    statements: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.strip().upper())

    sa.event.listen(sa.Engine, "before_cursor_execute", spy)
    try:
        second = SqlWorkspaceStore(db_url)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", spy)
    try:
        assert statements, "the second store should at least check the schema version"
        ddl = [s for s in statements
               if s.startswith(("CREATE", "ALTER", "DROP")) or "INTO ALEMBIC_VERSION" in s
               or s.startswith("UPDATE ALEMBIC_VERSION")]
        assert ddl == []
        got = second.get_run("run-kept")
        assert got is not None and got.tags == {"a": "1"}
        with second.engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        second.close()
        first.close()


def test_head_revision_equals_alembic_script_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == [HEAD_REVISION]
    assert script.get_current_head() == HEAD_REVISION


# -- experiments -------------------------------------------------------------------------------
def test_get_or_create_experiment_is_idempotent(store: SqlWorkspaceStore) -> None:
    assert store.get_experiment("nope") is None
    a = store.get_or_create_experiment("alpha")
    b = store.get_or_create_experiment("alpha")
    assert a == b and a.name == "alpha" and not a.archived
    assert store.get_experiment("alpha") == a
    store.get_or_create_experiment("beta")
    names = [e.name for e in store.list_experiments()]
    assert names == [EXP, "alpha", "beta"]  # oldest first


def test_get_or_create_experiment_is_race_safe(db_url: str) -> None:
    SqlWorkspaceStore(db_url).close()  # migrate once, up front
    stores = [SqlWorkspaceStore(db_url) for _ in range(8)]
    try:
        results = race([partial(s.get_or_create_experiment, "raced") for s in stores])
    finally:
        for st in stores:
            st.close()
    assert len({r.id for r in results}) == 1
    s = SqlWorkspaceStore(db_url)
    try:
        assert [e.name for e in s.list_experiments()] == ["raced"]
    finally:
        s.close()


# -- runs --------------------------------------------------------------------------------------
def test_create_run_get_run_round_trip(store: SqlWorkspaceStore) -> None:
    rec = make_run(
        "exp-contract_1_abcdef12", run_type="runyard.scriptrun", display_name="first",
        target="local", definition={"script": "train.py", "arguments": ["--lr", "0.1"],
                                    "nested": {"n": 3, "f": 1.5, "ok": True, "none": None,
                                               "unicode": "héllo ✓"}},
        tags={"team": "vision", "flag": None}, properties={"azureml.git": "abc"},
        snapshot_id="snap1", handle={"v": 1, "pid": 42},
    )
    store.create_run(rec, "submitted by test")
    got = store.get_run(rec.id)
    assert got == rec
    assert store.get_run("missing") is None
    events = store.list_events(rec.id)
    assert [(e.status, e.attempt, e.cause, e.at) for e in events] == [
        (S.NOT_STARTED, 1, "submitted by test", rec.created_at)]
    attempts = store.list_attempts(rec.id)
    assert [(a.attempt, a.started_at, a.ended_at, a.cause) for a in attempts] == [
        (1, rec.created_at, None, "submitted by test")]


def test_set_handle_and_snapshot(store: SqlWorkspaceStore) -> None:
    add_run(store, "r")
    store.set_handle("r", {"version": 1, "pid": 7, "host": "h"})
    store.set_snapshot("r", "s" * 64)
    got = store.get_run("r")
    assert got is not None
    assert got.handle == {"version": 1, "pid": 7, "host": "h"}
    assert got.snapshot_id == "s" * 64


def test_transitions_forward_only_and_recorded(store: SqlWorkspaceStore) -> None:
    add_run(store, "r")
    assert store.transition(Transition("r", S.QUEUED, "queued", 10.0, attempt=1))
    assert store.transition(Transition("r", S.RUNNING, "script started", 11.0, attempt=1))
    run = store.get_run("r")
    assert run is not None and run.status == S.RUNNING and run.start_time == 11.0
    assert run.end_time is None
    # backwards and same-state changes are refused
    assert not store.transition(Transition("r", S.QUEUED, "late queued", 12.0, attempt=1))
    assert not store.transition(Transition("r", S.STARTING, "late starting", 12.0))
    assert not store.transition(Transition("r", S.RUNNING, "again", 12.0, attempt=1))
    # an old attempt's report is refused
    assert not store.transition(Transition("r", S.FINALIZING, "stale", 12.0, attempt=2))
    assert store.get_run("r").status == S.RUNNING  # type: ignore[union-attr]
    assert [(e.status, e.cause) for e in store.list_events("r")] == [
        (S.NOT_STARTED, "submitted"), (S.QUEUED, "queued"), (S.RUNNING, "script started")]


def test_terminal_states_never_change(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.RUNNING, start_time=5.0)
    assert store.transition(Transition("r", S.COMPLETED, "script exited 0", 20.0, attempt=1))
    for new in (S.RUNNING, S.FAILED, S.CANCELED, S.NOT_RESPONDING, S.COMPLETED, S.QUEUED):
        assert not store.transition(Transition("r", new, "too late", 30.0))
        assert not store.transition(Transition("r", new, "too late", 30.0, attempt=1))
    run = store.get_run("r")
    assert run is not None
    assert (run.status, run.start_time, run.end_time, run.error) == (S.COMPLETED, 5.0, 20.0,
                                                                      None)
    assert [e.status for e in store.list_events("r")] == [S.RUNNING, S.COMPLETED]
    att = store.list_attempts("r")
    assert [(a.attempt, a.ended_at, a.status) for a in att] == [(1, 20.0, S.COMPLETED)]


def test_failed_transition_records_error_and_end_time(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.RUNNING)
    err = {"message": "boom", "traceback": "Traceback ...", "code": 3}
    assert store.transition(Transition("r", S.FAILED, "script exited 3", 42.5, error=err))
    run = store.get_run("r")
    assert run is not None
    assert (run.status, run.end_time, run.error) == (S.FAILED, 42.5, err)
    assert store.list_events("r")[-1].cause == "script exited 3"
    assert not store.transition(Transition("r", S.COMPLETED, "late", 50.0))


def test_racing_terminal_transitions_apply_exactly_once(db_url: str) -> None:
    setup = SqlWorkspaceStore(db_url)
    setup.get_or_create_experiment(EXP)
    stores = [SqlWorkspaceStore(db_url) for _ in range(4)]
    finals = [S.COMPLETED, S.FAILED, S.CANCELED, S.COMPLETED]
    try:
        for i in range(3):
            rid = f"race{i}"
            add_run(setup, rid, status=S.RUNNING)
            oks = race([partial(s.transition, Transition(rid, f, f"by {f}", 9.0, attempt=1))
                        for s, f in zip(stores, finals, strict=True)])
            winners = [f for f, ok in zip(finals, oks, strict=True) if ok]
            assert len(winners) == 1
            run = setup.get_run(rid)
            assert run is not None and run.status == winners[0]
            assert [e.status for e in setup.list_events(rid)] == [S.RUNNING, winners[0]]
    finally:
        for s in stores:
            s.close()
        setup.close()


def test_not_responding_is_not_terminal_a_lost_run_resumes(store: SqlWorkspaceStore) -> None:
    add_run(store, "lost", status=S.RUNNING, start_time=5.0)
    assert store.transition(Transition("lost", S.NOT_RESPONDING, "runner vanished", 10.0,
                                       error={"message": "gone"}))
    assert not store.transition(Transition("lost", S.NOT_RESPONDING, "again", 11.0))
    run = store.get_run("lost")
    assert run is not None and run.status == S.NOT_RESPONDING and run.end_time is None
    assert not run.status.terminal and run.status.settled
    assert not store.transition(Transition("lost", S.QUEUED, "back in line?", 12.0))
    assert store.transition(Transition("lost", S.COMPLETED, "host came back", 20.0, attempt=1))
    run = store.get_run("lost")
    assert run is not None and (run.status, run.end_time, run.error) == (S.COMPLETED, 20.0, None)
    assert [e.status for e in store.list_events("lost")] == [
        S.RUNNING, S.NOT_RESPONDING, S.COMPLETED]


def test_start_attempt(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.QUEUED, handle={"pid": 1})
    store.transition(Transition("r", S.RUNNING, "started", 10.0, attempt=1))
    assert store.start_attempt("r", "preempted", 20.0) == 2
    run = store.get_run("r")
    assert run is not None
    assert (run.attempt, run.status, run.handle) == (2, S.QUEUED, None)
    att = store.list_attempts("r")
    assert [(a.attempt, a.cause, a.started_at, a.ended_at) for a in att] == [
        (1, "submitted", att[0].started_at, 20.0), (2, "preempted", 20.0, None)]
    assert store.list_events("r")[-1].attempt == 2
    assert store.list_events("r")[-1].status == S.QUEUED
    # attempt 1's reports no longer apply; attempt 2's do
    assert not store.transition(Transition("r", S.RUNNING, "old", 21.0, attempt=1))
    assert store.transition(Transition("r", S.RUNNING, "new", 22.0, attempt=2))
    assert store.start_attempt("r", "preempted again", 30.0) == 3
    assert store.transition(Transition("r", S.COMPLETED, "done", 40.0, attempt=3))
    with pytest.raises(InvalidParameter):
        store.start_attempt("r", "too late", 50.0)
    run = store.get_run("r")
    assert run is not None and (run.attempt, run.status) == (3, S.COMPLETED)
    assert len(store.list_attempts("r")) == 3


# -- tracking ----------------------------------------------------------------------------------
def test_tags_are_mutable(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", tags={"a": "1"})
    store.set_tags("r", {"b": "2", "flag": None})
    store.set_tags("r", {"a": "changed"})
    assert store.get_run("r").tags == {"a": "changed", "b": "2", "flag": None}  # type: ignore[union-attr]
    store.set_tags("r", {"b": None})
    store.remove_tags("r", ["a", "not-there"])
    assert store.get_run("r").tags == {"b": None, "flag": None}  # type: ignore[union-attr]


def test_properties_are_immutable(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", properties={"p": "1"})
    store.add_properties("r", {"p": "1", "q": "2"})  # same value: fine
    with pytest.raises(InvalidParameter) as ei:
        store.add_properties("r", {"q": "2", "p": "other"})
    assert "p" in ei.value.field and str(ei.value).startswith(ei.value.field)
    assert "'p'" in str(ei.value)
    assert store.get_run("r").properties == {"p": "1", "q": "2"}  # type: ignore[union-attr]
    # a refused call adds nothing, not even its valid keys
    with pytest.raises(InvalidParameter):
        store.add_properties("r", {"new": "x", "q": "3"})
    assert store.get_run("r").properties == {"p": "1", "q": "2"}  # type: ignore[union-attr]


def test_metrics_ordered_scalar_and_json(store: SqlWorkspaceStore) -> None:
    add_run(store, "r")
    add_run(store, "other")
    rows = [scalar("loss", 1, 0.5), non_scalar("table", "table", 0, {"x": [1, 2]}),
            scalar("acc", 0, 0.1), scalar("loss", 0, 0.9), scalar("acc", 1, 0.2),
            scalar("loss", 1, 0.4)]
    store.add_metrics("r", rows)
    store.add_metrics("other", [scalar("acc", 0, 99.0)])
    got = store.get_metric_rows("r")
    assert [(m.name, m.step, m.value) for m in got] == [
        ("acc", 0, 0.1), ("acc", 1, 0.2), ("loss", 0, 0.9), ("loss", 1, 0.5),
        ("loss", 1, 0.4), ("table", 0, None)]
    table = got[-1]
    assert table.kind == "table" and json.loads(table.value_json or "") == {"x": [1, 2]}
    assert all(m.value_json is None and m.kind == "scalar" for m in got[:-1])
    assert got[0] == rows[2]  # ts and everything round-trip
    assert [m.value for m in store.get_metric_rows("r", ["acc"])] == [0.1, 0.2]
    assert store.get_metric_rows("nobody") == []


def test_files_upsert_by_name(store: SqlWorkspaceStore) -> None:
    add_run(store, "r")
    add_run(store, "q")
    store.add_files([FileRecord("r", "outputs/model.pkl", 10), FileRecord("r", "a.txt", 1),
                     FileRecord("q", "a.txt", 5)])
    store.add_files([FileRecord("r", "outputs/model.pkl", 20)])
    store.add_files([FileRecord("r", "b.txt", 1), FileRecord("r", "b.txt", 3)])
    assert store.list_files("r") == [FileRecord("r", "a.txt", 1), FileRecord("r", "b.txt", 3),
                                     FileRecord("r", "outputs/model.pkl", 20)]
    assert store.list_files("q") == [FileRecord("q", "a.txt", 5)]


def test_list_runs_filters(store: SqlWorkspaceStore) -> None:
    store.get_or_create_experiment("other-exp")
    add_run(store, "r1", tags={"team": "a", "flag": None}, properties={"k": "1"})
    add_run(store, "r2", tags={"team": "b"}, properties={"k": "2"}, status=S.RUNNING,
            target="remote")
    add_run(store, "r3", experiment="other-exp", tags={"team": "a"})
    add_run(store, "c1", parent_id="r1", run_type="runyard.childrun")
    add_run(store, "c2", parent_id="r1", run_type="runyard.childrun", tags={"team": "a"})
    add_run(store, "r4", status=S.COMPLETED)

    def ids(**kw: Any) -> list[str]:
        return [r.id for r in store.list_runs(RunFilter(**kw))]

    assert ids() == ["r4", "r3", "r2", "r1"]  # top level only, newest first
    assert ids(top_level_only=False) == ["r4", "c2", "c1", "r3", "r2", "r1"]
    assert ids(experiment=EXP) == ["r4", "r2", "r1"]
    assert ids(experiment="other-exp") == ["r3"]
    assert ids(experiment="no-such") == []
    assert ids(statuses=[S.RUNNING, S.COMPLETED]) == ["r4", "r2"]
    assert ids(target="remote") == ["r2"]
    assert ids(tags={"team": None}) == ["r3", "r2", "r1"]  # key only
    assert ids(tags={"team": "a"}) == ["r3", "r1"]
    assert ids(tags={"team": "a", "flag": None}) == ["r1"]
    assert ids(tags={"flag": "x"}) == []
    assert ids(properties={"k": "2"}) == ["r2"]
    assert ids(properties={"k": None}) == ["r2", "r1"]
    assert ids(parent_id="r1") == ["c2", "c1"]
    assert ids(parent_id="r1", tags={"team": "a"}) == ["c2"]
    assert ids(limit=2) == ["r4", "r3"]
    assert ids(experiment=EXP, limit=1) == ["r4"]
    full = store.list_runs(RunFilter(experiment=EXP, statuses=[S.NOT_STARTED]))
    assert [(r.id, r.tags, r.properties) for r in full] == [
        ("r1", {"team": "a", "flag": None}, {"k": "1"})]


# -- ingest ------------------------------------------------------------------------------------
def as_series(pairs: list[tuple[str, MetricRow]]) -> list[MetricSeries]:
    """(run id, row) pairs as the column-wise series the ingest path carries."""
    by_run: dict[str, list[MetricRow]] = {}
    for rid, row in pairs:
        by_run.setdefault(rid, []).append(row)
    return [s for rid, rows in by_run.items() for s in MetricSeries.from_rows(rid, rows)]


def full_batch(run_id: str, frm: int = 0, to: int = 100) -> IngestBatch:
    child = make_run(f"{run_id}_child", status=S.RUNNING, parent_id=run_id,
                     run_type="runyard.childrun", tags={"fold": "1"})
    return IngestBatch(
        offsets={"runner-a1": (frm, to), "script-a1-1": (frm * 2, to * 2)},
        children=[child],
        metric_series=as_series([(run_id, scalar("loss", 0, 0.5)),
                                 (run_id, scalar("loss", 1, 0.25)),
                 (run_id, non_scalar("cm", "json", 0, {"m": [[1, 0], [0, 1]]})),
                 (child.id, scalar("acc", 0, 0.9))]),
        tags=[(run_id, {"t": "v", "k": None}), (child.id, {"ct": "x"})],
        properties=[(run_id, {"p": "1"})],
        files=[FileRecord(run_id, "outputs/m.pkl", 11), FileRecord(child.id, "c.txt", 2)],
        transitions=[Transition(run_id, S.RUNNING, "script started", 100.0, attempt=1),
                     Transition(child.id, S.COMPLETED, "complete() called", 101.0)],
    )


def test_apply_ingest_applies_everything_and_advances_offsets(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.QUEUED)
    batch = full_batch("r")
    applied = store.apply_ingest("r", batch)
    assert applied == batch.transitions
    assert store.get_offsets("r") == {"runner-a1": 100, "script-a1-1": 200}
    run = store.get_run("r")
    child = store.get_run("r_child")
    assert run is not None and child is not None
    assert (run.status, run.start_time) == (S.RUNNING, 100.0)
    assert run.tags == {"t": "v", "k": None} and run.properties == {"p": "1"}
    assert (child.parent_id, child.status, child.end_time) == ("r", S.COMPLETED, 101.0)
    assert child.tags == {"fold": "1", "ct": "x"}
    assert [(m.name, m.step) for m in store.get_metric_rows("r")] == [
        ("cm", 0), ("loss", 0), ("loss", 1)]
    assert [m.name for m in store.get_metric_rows("r_child")] == ["acc"]
    assert store.list_files("r") == [FileRecord("r", "outputs/m.pkl", 11)]
    assert store.list_files("r_child") == [FileRecord("r_child", "c.txt", 2)]
    assert store.get_offsets("r_child") == {}


def test_apply_ingest_same_batch_twice_is_noop(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.QUEUED)
    assert store.apply_ingest("r", full_batch("r")) != []
    events = store.list_events("r")
    for _ in range(2):
        assert store.apply_ingest("r", full_batch("r")) == []
    assert len(store.get_metric_rows("r")) == 3
    assert len(store.get_metric_rows("r_child")) == 1
    assert store.list_events("r") == events
    assert len(store.list_events("r_child")) == 2  # created, completed
    assert store.get_offsets("r") == {"runner-a1": 100, "script-a1-1": 200}
    # the next batch, starting where the first ended, applies
    nxt = IngestBatch(offsets={"runner-a1": (100, 150)},
                      metric_series=as_series([("r", scalar("loss", 2, 0.1))]),
                      transitions=[Transition("r", S.COMPLETED, "exit 0", 200.0, attempt=1)])
    assert store.apply_ingest("r", nxt) == nxt.transitions
    assert store.apply_ingest("r", nxt) == []
    assert len(store.get_metric_rows("r", ["loss"])) == 3
    assert store.get_offsets("r") == {"runner-a1": 150, "script-a1-1": 200}


def test_apply_ingest_stale_batch_dropped_whole(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.QUEUED)
    store.apply_ingest("r", IngestBatch(offsets={"a": (0, 100), "b": (0, 50)}))
    assert store.get_offsets("r") == {"a": 100, "b": 50}
    # stream "a" is fresh, stream "b" is behind: nothing of the batch applies
    stale = IngestBatch(
        offsets={"a": (100, 200), "b": (0, 60)},
        children=[make_run("r_kid", parent_id="r", status=S.RUNNING)],
        metric_series=as_series([("r", scalar("m", 0, 1.0))]), tags=[("r", {"t": "1"})],
        properties=[("r", {"p": "1"})], files=[FileRecord("r", "f", 1)],
        transitions=[Transition("r", S.RUNNING, "stale", 5.0, attempt=1)])
    assert store.apply_ingest("r", stale) == []
    assert store.get_offsets("r") == {"a": 100, "b": 50}
    run = store.get_run("r")
    assert run is not None
    assert (run.status, run.tags, run.properties) == (S.QUEUED, {}, {})
    assert store.get_metric_rows("r") == [] and store.list_files("r") == []
    assert store.get_run("r_kid") is None
    # a from-offset ahead of the stored one is stale too (a gap, never skipped)
    late = IngestBatch(offsets={"a": (150, 200)},
                       metric_series=as_series([("r", scalar("m", 0, 1.0))]))
    assert store.apply_ingest("r", late) == []
    assert store.get_metric_rows("r") == []


def test_apply_ingest_children_created_once(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.RUNNING)
    kid = make_run("r_kid", parent_id="r", status=S.RUNNING, run_type="runyard.childrun")
    b1 = IngestBatch(offsets={"s": (0, 10)}, children=[kid, kid],
                     metric_series=as_series([("r_kid", scalar("m", 0, 1.0))]))
    store.apply_ingest("r", b1)
    b2 = IngestBatch(offsets={"s": (10, 20)}, children=[kid],
                     transitions=[Transition("r_kid", S.COMPLETED, "done", 9.0)])
    assert store.apply_ingest("r", b2) == b2.transitions
    kids = store.list_runs(RunFilter(parent_id="r"))
    assert [k.id for k in kids] == ["r_kid"]
    assert kids[0].status == S.COMPLETED  # not reset by the second 'create'
    assert [e.status for e in store.list_events("r_kid")] == [S.RUNNING, S.COMPLETED]
    assert len(store.list_attempts("r_kid")) == 1


def test_apply_ingest_transitions_respect_terminal_rules(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.QUEUED)
    trs = [Transition("r", S.RUNNING, "start", 1.0, attempt=1),
           Transition("r", S.COMPLETED, "exit 0", 2.0, attempt=1),
           Transition("r", S.RUNNING, "late", 3.0, attempt=1),
           Transition("r", S.FAILED, "late fail", 4.0, attempt=1, error={"message": "x"}),
           Transition("r", S.CANCELED, "late cancel", 5.0)]
    applied = store.apply_ingest("r", IngestBatch(offsets={"s": (0, 1)}, transitions=trs))
    assert applied == trs[:2]
    run = store.get_run("r")
    assert run is not None
    assert (run.status, run.end_time, run.error) == (S.COMPLETED, 2.0, None)
    assert [e.cause for e in store.list_events("r")] == ["submitted", "start", "exit 0"]


def test_apply_ingest_is_atomic(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", status=S.QUEUED)
    store.apply_ingest("r", IngestBatch(offsets={"s": (0, 10)}))
    orphan = make_run("r_kid", experiment="no-such-experiment", parent_id="r")
    bad = IngestBatch(offsets={"s": (10, 20)},
                      metric_series=as_series([("r", scalar("m", 0, 1.0))]),
                      tags=[("r", {"t": "1"})], children=[orphan],
                      transitions=[Transition("r", S.RUNNING, "start", 1.0, attempt=1)])
    with pytest.raises(sa.exc.SQLAlchemyError):  # the child's experiment does not exist
        store.apply_ingest("r", bad)
    assert store.get_offsets("r") == {"s": 10}
    assert store.get_metric_rows("r") == []
    run = store.get_run("r")
    assert run is not None and (run.status, run.tags) == (S.QUEUED, {})


def test_apply_ingest_keeps_first_property_value(store: SqlWorkspaceStore) -> None:
    add_run(store, "r", properties={"p": "1"})
    b = IngestBatch(offsets={"s": (0, 5)}, properties=[("r", {"p": "2", "q": "1"})],
                    metric_series=as_series([("r", scalar("m", 0, 1.0))]))
    store.apply_ingest("r", b)  # a conflicting property doesn't sink the rest of the batch
    run = store.get_run("r")
    assert run is not None and run.properties["p"] == "1"
    assert len(store.get_metric_rows("r")) == 1
    assert store.get_offsets("r") == {"s": 5}


def test_concurrent_apply_ingest_applies_exactly_once(db_url: str) -> None:
    setup = SqlWorkspaceStore(db_url)
    setup.get_or_create_experiment(EXP)
    add_run(setup, "r", status=S.QUEUED)
    stores = [SqlWorkspaceStore(db_url) for _ in range(2)]
    try:
        rounds = [(0, 100), (100, 200), (200, 300)]
        for i, (frm, to) in enumerate(rounds):
            batch = IngestBatch(
                offsets={"runner-a1": (frm, to), "script": (frm, to)},
                metric_series=as_series([("r", scalar("m", i * 10 + j, float(j)))
                                         for j in range(10)]),
                transitions=[Transition("r", [S.PREPARING, S.RUNNING, S.FINALIZING][i],
                                        f"round {i}", float(i), attempt=1)])
            results = race([partial(s.apply_ingest, "r", batch) for s in stores])
            assert sorted(len(r) for r in results) == [0, 1], f"round {i}"
            assert len(setup.get_metric_rows("r")) == 10 * (i + 1)
            assert setup.get_offsets("r") == {"runner-a1": to, "script": to}
        assert len(setup.list_events("r")) == 1 + len(rounds)
    finally:
        for s in stores:
            s.close()
        setup.close()


# -- several processes -------------------------------------------------------------------------
RUNS_PER_PROCESS = 50
N_PROCS = 4


def _submit_runs(url: str, worker: int, barrier: Any) -> None:
    """Child process: create RUNS_PER_PROCESS runs as fast as possible."""
    s = SqlWorkspaceStore(url)
    try:
        barrier.wait(60)
        s.get_or_create_experiment("multi")
        for i in range(RUNS_PER_PROCESS):
            rid = f"multi_w{worker}_{i:03d}"
            s.create_run(RunRecord(
                id=rid, experiment="multi", status=RunStatus.NOT_STARTED,
                created_at=time.time(), definition={"worker": worker, "i": i},
                tags={"worker": str(worker)}, properties={"i": str(i)}), "submitted")
            s.transition(Transition(rid, RunStatus.QUEUED, "queued", time.time(), attempt=1))
    finally:
        s.close()


def test_processes_submitting_at_once_never_lose_a_run(db_url: str) -> None:
    n_procs = N_PROCS
    SqlWorkspaceStore(db_url).close()  # migrated before the race (a fresh file for sqlite)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n_procs)
    procs = [ctx.Process(target=_submit_runs, args=(db_url, w, barrier))
             for w in range(n_procs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * n_procs

    s = SqlWorkspaceStore(db_url)
    try:
        runs = s.list_runs(RunFilter(experiment="multi"))
        want = {f"multi_w{w}_{i:03d}" for w in range(n_procs) for i in range(RUNS_PER_PROCESS)}
        assert len(runs) == len(want) and {r.id for r in runs} == want
        for r in runs:
            w, i = int(r.id.split("_")[1][1:]), int(r.id.split("_")[2])
            assert r.definition == {"worker": w, "i": i}
            assert r.tags == {"worker": str(w)} and r.properties == {"i": str(i)}
            assert r.status == S.QUEUED
        assert all(len(s.list_events(r.id)) == 2 for r in runs[:20])
        assert [e.name for e in s.list_experiments()] == ["multi"]
    finally:
        s.close()
