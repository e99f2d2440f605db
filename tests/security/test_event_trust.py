"""The ingest's trust boundary: a run's spool can touch only that run (and children it made).

Store-level tests run the real checks and the real store (SQLite and PostgreSQL) on spool bytes
as a hostile script or host would write them; the end-to-end test runs a real script that writes
such lines into its own spool folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runyard import Experiment, ScriptRunConfig, Workspace
from runyard.entities import RunRecord, RunStatus
from runyard.runtime.spool import (
    ELIDED_PREFIX,
    MAX_EVENT_BYTES,
    SpoolWriter,
    chunk_span,
    iter_lines,
    read_chunk,
)
from runyard.services.runs.events import MAX_NAME_CHARS, NUL_REPLACEMENT, Rejected, stream_role
from runyard.services.runs.ingest import build_batch
from runyard.store.base import RunFilter
from runyard.store.sqlalchemy.store import SqlWorkspaceStore

EXP = "trust"


def lines(*events: dict[str, Any] | str) -> bytes:
    return b"".join((e if isinstance(e, str) else json.dumps(e)).encode() + b"\n"
                    for e in events)


def record(run_id: str, status: RunStatus = RunStatus.RUNNING, **kw: Any) -> RunRecord:
    return RunRecord(id=run_id, experiment=EXP, status=status, created_at=time.time(),
                     handle={"kind": "local"}, **kw)


@pytest.fixture
def store(db_url: str) -> Any:
    s = SqlWorkspaceStore(db_url)
    s.get_or_create_experiment(EXP)
    yield s
    s.close()


def ingest(store: SqlWorkspaceStore, owner_id: str, chunks: dict[str, bytes]) -> Any:
    owner = store.get_run(owner_id)
    assert owner is not None
    offsets = store.get_offsets(owner_id)
    batch = build_batch(owner, {k: (offsets.get(k, 0), v) for k, v in chunks.items()},
                        store.get_run)
    applied = store.apply_ingest(owner_id, batch)
    assert batch.applied
    return batch, applied


def test_lines_naming_another_run_are_rejected_and_change_nothing(store: Any) -> None:
    store.create_run(record("victim", RunStatus.COMPLETED), "done")
    store.create_run(record("attacker"), "running")
    batch, applied = ingest(store, "attacker", {"script-a1-7": lines(
        {"type": "tags", "run_id": "victim", "tags": {"pwned": "1"}},
        {"type": "status", "run_id": "victim", "status": "Failed"},
        {"type": "metrics", "run_id": "victim", "name": "m", "kind": "scalar",
         "steps": [0], "values": [1.0], "times": [1.0]},
        {"type": "files", "run_id": "victim", "files": [["outputs/x", 1]]},
        {"type": "child", "run_id": "../../../../evilchild", "parent_id": "attacker"},
        {"type": "child", "run_id": "victim_x", "parent_id": "victim"},
        {"type": "tags", "tags": {"mine": "ok"}},
    )})
    assert len(batch.rejected) == 6
    assert applied == []
    victim = store.get_run("victim")
    assert victim.tags == {} and victim.status == RunStatus.COMPLETED
    assert store.get_metric_rows("victim") == [] and store.list_files("victim") == []
    assert store.get_run("attacker").tags == {"mine": "ok"}
    assert store.get_run("attacker").rejected_events == 6
    assert {r.id for r in store.list_runs(RunFilter(top_level_only=False))} == \
        {"victim", "attacker"}


def test_script_cannot_end_its_own_run_but_can_end_its_children(store: Any) -> None:
    store.create_run(record("r1"), "running")
    batch, applied = ingest(store, "r1", {"script-a1-9": lines(
        {"type": "status", "status": "Completed", "cause": "forged"},          # no attempt
        {"type": "status", "status": "Completed", "attempt": 1},
        {"type": "child", "run_id": "r1_c1", "parent_id": "r1"},
        {"type": "child", "run_id": "r1_c1_g", "parent_id": "r1_c1"},
        {"type": "status", "run_id": "r1_c1", "status": "Completed"},
        {"type": "child", "run_id": "r1_c1", "parent_id": "r1"},                # replace: no
    )})
    assert [r.reason.split(";")[0] for r in batch.rejected][:2] == [
        "only the runner reports its run's status"] * 2
    assert len(batch.rejected) == 3
    assert store.get_run("r1").status == RunStatus.RUNNING
    assert store.get_run("r1_c1").status == RunStatus.COMPLETED
    assert store.get_run("r1_c1_g").parent_id == "r1_c1"
    # the runner's own stream ends the run
    _, applied = ingest(store, "r1", {"runner-a1": lines(
        {"type": "status", "status": "Completed", "attempt": 1})})
    assert [t.new for t in applied] == [RunStatus.COMPLETED]


def test_status_is_fenced_by_the_streams_attempt(store: Any) -> None:
    store.create_run(record("r2"), "running")
    store.start_attempt("r2", "preempted", time.time())  # now on attempt 2
    batch, applied = ingest(store, "r2", {
        "runner-a1": lines({"type": "status", "status": "Failed", "attempt": 1}),
        "runner-a2": lines({"type": "status", "status": "Running", "attempt": 1},
                           {"type": "status", "status": "Running"}),
    })
    assert len(batch.rejected) == 2
    assert [t.new for t in applied] == [RunStatus.RUNNING]
    assert store.get_run("r2").status == RunStatus.RUNNING


@pytest.mark.parametrize("stream", ["runner-a1-evil", "evil", "runner", "interactive-1-ab",
                                    "n1.runner-a1x", "agent-a1-2"])
def test_streams_runyard_does_not_write_are_rejected_whole(store: Any, stream: str) -> None:
    store.create_run(record("r3"), "running")
    batch, _ = ingest(store, "r3", {stream: lines(
        {"type": "status", "status": "Completed", "attempt": 1},
        {"type": "tags", "tags": {"a": "b"}})})
    assert len(batch.rejected) == 2
    assert store.get_run("r3").status == RunStatus.RUNNING and store.get_run("r3").tags == {}


@pytest.mark.parametrize("bad", [
    {"type": "tags", "tags": ["a", "b"]},
    {"type": "metrics", "name": "m", "kind": "scalar", "steps": [1.5], "values": [1],
     "times": [1.0]},
    {"type": "metrics", "name": "m", "kind": "scalar", "steps": [2**70], "values": [1],
     "times": [1.0]},
    {"type": "metrics", "name": "m", "kind": "scalar", "steps": [1], "values": [1],
     "times": [1.0, 2.0]},
    {"type": "tags", "tags": {"a": "b"}, "ts": "abc"},
    {"type": "files", "files": [["../../../etc/hostname", 10]]},
    {"type": "files", "files": [["/etc/passwd", 10]]},
    {"type": "files", "files": "outputs/x"},
    {"type": "properties", "properties": {"k": {"nested": 1}}},
    {"type": "status", "status": "Bogus", "attempt": 1},
    {"type": "nope"},
    {"tags": {"a": "b"}},
    "not json at all",
    "[1, 2, 3]",
])
def test_malformed_lines_are_quarantined_and_never_block_the_rest(store: Any, bad: Any) -> None:
    store.create_run(record("r4"), "running")
    batch, _ = ingest(store, "r4", {"script-a1-1": lines(
        {"type": "tags", "tags": {"before": "1"}}, bad, {"type": "tags", "tags": {"after": "1"}})})
    assert len(batch.rejected) == 1 and batch.rejected[0].reason
    ingest(store, "r4", {"runner-a1": lines({"type": "status", "status": "Completed",
                                             "attempt": 1})})
    run = store.get_run("r4")
    assert run.tags == {"before": "1", "after": "1"}
    assert run.status == RunStatus.COMPLETED and run.rejected_events == 1


def test_nul_and_long_values_are_escaped_and_capped_the_same_on_every_store(store: Any) -> None:
    store.create_run(record("r5"), "running")
    long_name = "n" * 1000
    ingest(store, "r5", {"script-a1-1": lines(
        {"type": "tags", "tags": {"a\x00b": "v\x00w", long_name: "x" * 100_000}},
        {"type": "metrics", "name": "m\x00", "kind": "scalar", "steps": [0],
         "values": ["s\x00"], "times": [1.0]},
        {"type": "properties", "properties": {"p": "q\x00"}})})
    run = store.get_run("r5")
    assert run.tags[f"a{NUL_REPLACEMENT}b"] == f"v{NUL_REPLACEMENT}w"
    capped = [k for k in run.tags if k.startswith("nnn")]
    assert len(capped) == 1 and len(capped[0]) <= MAX_NAME_CHARS and "truncated" in capped[0]
    assert "truncated" in run.tags[capped[0]] and len(run.tags[capped[0]]) <= 4096
    assert run.properties["p"] == f"q{NUL_REPLACEMENT}"
    rows = store.get_metric_rows("r5")
    assert rows[0].name == f"m{NUL_REPLACEMENT}"


def test_an_oversize_line_is_elided_unread_and_the_stream_goes_on(tmp_path: Path,
                                                                   store: Any) -> None:
    store.create_run(record("r6"), "running")
    path = tmp_path / "script-a1-1.jsonl"
    huge = json.dumps({"type": "tags", "tags": {"big": "x" * (MAX_EVENT_BYTES + 10)}})
    path.write_bytes(lines({"type": "tags", "tags": {"a": "1"}}, huge,
                           {"type": "tags", "tags": {"b": "2"}}))
    total, chunks = 0, []
    for _ in range(6):  # read on from each chunk's span, as the ingest does
        chunk = read_chunk(path, total, limit=1 << 20)  # the long line never fits one read
        if not chunk:
            break
        assert len(chunk) <= 1 << 20
        chunks.append(chunk)
        total += chunk_span(chunk)
    assert total == path.stat().st_size
    assert any(c.startswith(ELIDED_PREFIX) for c in chunks)
    batch, _ = ingest(store, "r6", {"script-a1-1": read_chunk(path, 0)})
    assert [r.reason for r in batch.rejected] == [
        f"an event of {len(huge) + 1} bytes is larger than the limit"]
    assert store.get_run("r6").tags == {"a": "1", "b": "2"}
    assert store.get_offsets("r6")["script-a1-1"] == path.stat().st_size


def test_the_writer_splits_a_metrics_event_too_big_for_readers(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path, "script-a1-1", "r")
    n = MAX_EVENT_BYTES // 8
    w.emit("metrics", name="m", kind="scalar", steps=list(range(n)), values=[1.5] * n,
           times=[1.0] * n)
    w.close()
    events = [e for e, _ in iter_lines((tmp_path / "script-a1-1.jsonl").read_bytes())]
    assert len(events) >= 2 and all(e and e["type"] == "metrics" for e in events)
    assert sum(len(e["values"]) for e in events if e) == n


def test_node_streams_report_for_their_node_run_only() -> None:
    owner = record("job", attempt=2)
    assert stream_role(owner, "n0.runner-a2").run_id == "job"
    assert stream_role(owner, "n3.runner-a2").run_id == "job_a2_node3"
    with pytest.raises(Rejected):
        stream_role(owner, "interactive-1-x")


# -- fuzz --------------------------------------------------------------------------------------
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["status", "metrics", "tags", "properties", "files", "child", "x"])},
    optional={"run_id": st.sampled_from(["own", "other", "own_c", "../x", "", "own_c_d"])
              | st.text(max_size=20),
              "parent_id": st.sampled_from(["own", "other", "own_c"]),
              "status": st.sampled_from([s.value for s in RunStatus]) | st.text(max_size=5),
              "attempt": st.integers(-1, 3) | st.text(max_size=2),
              "tags": _json, "properties": _json, "files": _json,
              "name": _json, "kind": st.sampled_from(["scalar", "list", "bad"]),
              "steps": _json, "values": _json, "times": _json, "ts": _json, "seq": _json})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(_event, max_size=8),
       stream=st.sampled_from(["runner-a1", "script-a1-5", "agent-a1", "n1.agent-a1", "x"]))
def test_fuzzed_spool_lines_never_raise_and_touch_only_the_runs_tree(
        events: list[dict[str, Any]], stream: str) -> None:
    owner = record("own")
    known = {"own": owner, "other": record("other"),
             "own_c": record("own_c", parent_id="own")}
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    batch = build_batch(owner, {stream: (0, data)}, known.get)
    touched = ({c.id for c in batch.children} | {s.run_id for s in batch.metric_series}
               | {r for r, _ in batch.tags} | {r for r, _ in batch.properties}
               | {f.run_id for f in batch.files} | {t.run_id for t in batch.transitions})
    created = {c.id for c in batch.children}
    assert "other" not in touched
    assert all(r in ("own", "own_c", "own_node1") or r.startswith("own_") for r in touched)
    assert all(c not in known for c in created)
    assert all(not f.name.startswith("/") and ".." not in f.name.split("/")
               for f in batch.files)
    assert all(t.run_id != "own" or stream == "runner-a1" for t in batch.transitions)
    assert len(batch.rejected) <= len(events)


# -- end to end: a hostile script ------------------------------------------------------------
HOSTILE = """
import json, os, sys, time
from runyard import Run
run = Run.get_context()
spool = os.environ["RUNYARD_SPOOL_DIR"]
victim = sys.argv[1]
def put(stream, *events):
    with open(os.path.join(spool, stream + ".jsonl"), "a") as fh:
        for e in events:
            fh.write((e if isinstance(e, str) else json.dumps(e)) + "\\n")
put("script-a1-666",
    {"type": "tags", "run_id": victim, "tags": {"pwned": "yes"}},
    {"type": "status", "run_id": victim, "status": "Failed"},
    {"type": "files", "run_id": victim, "files": [["outputs/evil.txt", 4]]},
    {"type": "child", "run_id": "../../../../evilchild", "parent_id": victim},
    {"type": "status", "status": "Completed", "cause": "forged"},
    {"type": "tags", "tags": ["a", "b"]},
    {"type": "metrics", "name": "m", "kind": "scalar", "steps": ["x"], "values": [1],
     "times": [1]},
    {"type": "tags", "tags": {"a": "b"}, "ts": "abc"},
    {"type": "files", "files": [["../../../etc/hostname", 10]]})
put("runner-a1-x", {"type": "status", "status": "Completed", "attempt": 1})
run.log("honest", 1.0)
run.tag("honest", "yes")
run.flush()
time.sleep(1.0)
sys.exit(3)
"""


def test_a_hostile_script_can_touch_only_its_own_run(tmp_path: Path) -> None:
    ws = Workspace.create("trust", tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.py").write_text("print('hi')\n")
    (src / "hostile.py").write_text(textwrap.dedent(HOSTILE))
    exp = Experiment(ws, "trust")
    victim = exp.submit(ScriptRunConfig(str(src), "ok.py"))
    victim.wait_for_completion()
    before = (victim.get_status(), victim.get_tags(), victim.get_file_names())
    run = exp.submit(ScriptRunConfig(str(src), "hostile.py", arguments=[victim.id]))
    run.wait_for_completion(raise_on_error=False)
    # the forged status lines were written first, but the run ends with its real end
    assert run.get_status() == "Failed"
    record = ws.context.store.get_run(run.id)
    assert record is not None and record.error is not None and record.error["exit_code"] == 3
    assert (victim.get_status(), victim.get_tags(), victim.get_file_names()) == before
    assert run.get_metrics()["honest"] == 1.0 and run.get_tags()["honest"] == "yes"
    assert record.rejected_events >= 10
    names = {r.id for r in ws.context.store.list_runs(RunFilter(top_level_only=False))}
    assert names == {victim.id, run.id}
    rejected = ws.context.artifacts.read(run.id, "system_logs/rejected_events.jsonl")
    reasons = [json.loads(line)["reason"] for line in rejected.splitlines()]
    assert len(reasons) == record.rejected_events
    assert "system_logs/rejected_events.jsonl" in run.get_file_names()
    assert not (tmp_path / "evilchild").exists()
    # the workspace still answers, and `run show` warns about the refused lines
    out = subprocess.run([sys.executable, "-m", "runyard.cli.main", "-w",
                          str(tmp_path / "ws"), "run", "list"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    show = subprocess.run([sys.executable, "-m", "runyard.cli.main", "-w",
                           str(tmp_path / "ws"), "run", "show", run.id],
                          capture_output=True, text=True, check=False)
    assert show.returncode == 0, show.stderr
    assert f"{record.rejected_events} spool lines were rejected" in show.stdout + show.stderr


# -- downloads stay inside the output folder ------------------------------------------------
def test_downloads_stay_inside_the_output_folder(tmp_path: Path) -> None:
    ws = Workspace.create("dl", tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.py").write_text(textwrap.dedent("""
        import os
        os.makedirs("outputs/E", exist_ok=True)
        open("outputs/E/f.txt", "w").write("data")
        os.symlink("/etc/hostname", "outputs/link")
    """))
    run = Experiment(ws, "dl").submit(ScriptRunConfig(str(src), "t.py"))
    run.wait_for_completion()
    out = tmp_path / "dl" / "o"
    from runyard.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="prefix"):
        run.download_files(prefix="../../E", output_directory=str(out))
    assert not (tmp_path / "E").exists() and not (tmp_path / "dl" / "E").exists()
    # a name planted in the record (as an old workspace might hold) is refused, not followed
    ws.context.store.add_files([__import__("runyard.entities", fromlist=["FileRecord"])
                                .FileRecord(run.id, "../../../etc/hostname", 10)])
    with pytest.raises(InvalidParameter):
        run.download_files(output_directory=str(out))
    assert not any(out.rglob("hostname"))
    # a link the script left in outputs/ is not collected (the same on every kind)
    assert "outputs/link" not in run.get_file_names()
    assert "outputs/E/f.txt" in run.get_file_names()
    cli = subprocess.run([sys.executable, "-m", "runyard.cli.main", "-w", str(tmp_path / "ws"),
                          "run", "download", run.id, "--prefix", "../../E", "-o",
                          str(out)], capture_output=True, text=True, check=False)
    assert cli.returncode != 0 and "prefix" in cli.stderr and "Traceback" not in cli.stderr


def test_a_huge_log_line_prints_capped_with_a_marker(tmp_path: Path) -> None:
    from runyard.logcap import MAX_LOG_LINE_BYTES, LineCapper

    capper = LineCapper()
    big = b"x" * (3 * MAX_LOG_LINE_BYTES)
    shown = b"".join(capper.feed(big[i:i + 1000]) for i in range(0, len(big), 1000))
    shown += capper.feed(b"\nnext line\n")
    first, second = shown.split(b"\n")[:2]
    assert first.startswith(b"x" * MAX_LOG_LINE_BYTES)
    assert first.endswith(f"[line truncated: {2 * MAX_LOG_LINE_BYTES} more bytes]".encode())
    assert second == b"next line"
    ws = Workspace.create("logs", tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.py").write_text("import sys\nsys.stdout.write('y' * 5_000_000 + '\\nend\\n')\n")
    run = Experiment(ws, "logs").submit(ScriptRunConfig(str(src), "t.py"))
    run.wait_for_completion()
    out = subprocess.run([sys.executable, "-m", "runyard.cli.main", "-w", str(tmp_path / "ws"),
                          "run", "logs", run.id], capture_output=True, check=False)
    assert out.returncode == 0
    assert len(out.stdout) < MAX_LOG_LINE_BYTES + 200 and b"line truncated" in out.stdout
    assert out.stdout.rstrip().endswith(b"end")


def test_the_end_waits_until_the_other_streams_are_read(store: Any) -> None:
    store.create_run(record("r7"), "running")
    end = lines({"type": "status", "status": "Completed", "attempt": 1})
    batch, applied = ingest(store, "r7", {
        "runner-a1": lines({"type": "status", "status": "Finalizing", "attempt": 1}) + end,
        "script-a1-1": lines({"type": "tags", "tags": {"a": "1"}})})
    assert [t.new for t in applied] == [RunStatus.FINALIZING]  # the end is held back
    _, applied = ingest(store, "r7", {"runner-a1": end})  # nothing else new: now it ends
    assert [t.new for t in applied] == [RunStatus.COMPLETED]
    assert store.get_run("r7").tags == {"a": "1"}
