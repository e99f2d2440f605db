"""The in-script runtime: standard library only, offline runs, the spool, and ``LiveRun``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.runtime import context as ctx
from runyard.runtime.context import LiveRun, OfflineRun, TrackingError, start_interactive
from runyard.runtime.spool import (
    SPOOL_SUFFIX,
    SpoolWriter,
    list_streams,
    parse_lines,
    read_chunk,
)

#: The ``src`` folder of the runyard under test (the repository's ``src`` in a checkout).
SRC = Path(runyard.__file__).resolve().parents[1]


def _run_py(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with PYTHONPATH=src; it prints one JSON object."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = str(SRC)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- standard library only ---------------------------------------------------------------------
def test_runtime_imports_only_the_standard_library() -> None:
    out = _run_py("""
        import json, sys
        before = set(sys.modules)
        import runyard.runtime.context, runyard.runtime.runner, runyard.runtime.spool
        import runyard.run
        from runyard import Run
        Run.get_context  # resolved, not just imported
        new = set(sys.modules) - before
        foreign = sorted(m for m in new if m.split(".")[0] not in sys.stdlib_module_names
                         and m.split(".")[0] != "runyard")
        print(json.dumps({"foreign": foreign, "file": runyard.__file__,
                          "n_runyard": len([m for m in new if m.startswith("runyard")])}))
    """)
    assert out["foreign"] == []
    assert out["file"].startswith(str(SRC))  # the tree under test, not an installed copy
    assert out["n_runyard"] >= 5


def test_import_runyard_is_cheap() -> None:
    out = _run_py("""
        import json, sys
        import runyard
        heavy = ("sqlalchemy", "alembic", "yaml", "click", "rich")
        print(json.dumps({"heavy": sorted(m for m in sys.modules
                                          if m.split(".")[0] in heavy)}))
    """)
    assert out["heavy"] == []


def test_heavy_packages_are_importable_here() -> None:
    """Guards the two tests above: they would pass vacuously if these couldn't be imported."""
    out = _run_py("""
        import json, sys
        import sqlalchemy, yaml
        print(json.dumps({"ok": "sqlalchemy" in sys.modules and "yaml" in sys.modules}))
    """)
    assert out["ok"] is True


# -- offline -----------------------------------------------------------------------------------
@pytest.fixture
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in (ctx.ENV_RUN_ID, ctx.ENV_SPOOL_DIR, ctx.ENV_ARTIFACTS_DIR, ctx.ENV_EXPERIMENT,
                ctx.ENV_WORKSPACE, ctx.ENV_ATTEMPT, ctx.ENV_PROPERTIES, ctx.ENV_TAGS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(ctx, "_CONTEXT", [])
    yield


def test_offline_run_prints_and_enforces_properties(
        fresh_context: None, capsys: pytest.CaptureFixture[str]) -> None:
    from runyard import Run

    run = Run.get_context()
    assert isinstance(run, OfflineRun) and run.id.startswith("OfflineRun_")
    assert Run.get_context() is run
    run.log("accuracy", 0.93)
    run.log_list("losses", [1, 2.5])
    run.log_row("roc", fpr=0.1, tpr=0.9)
    run.tag("team", "vision")
    out = capsys.readouterr().out
    assert "accuracy = 0.93" in out
    assert "losses (list) = [1, 2.5]" in out
    assert "roc (row)" in out and "'tpr': 0.9" in out
    assert "tag team = 'vision'" in out
    run.add_properties({"seed": 1})
    run.add_properties({"seed": "1"})  # same value: fine
    with pytest.raises(TrackingError, match="seed"):
        run.add_properties({"seed": 2})
    assert run.get_properties() == {"seed": "1"}
    with pytest.raises(TrackingError, match="'m'"):
        run.log("m", {"a": 1})
    with pytest.raises(TrackingError):
        run.upload_file("../escape.txt", "x")
    child = run.child_run()
    assert isinstance(child, OfflineRun) and child.parent is run


def test_no_context_refused_when_offline_not_allowed(fresh_context: None) -> None:
    with pytest.raises(TrackingError, match="no runyard run context"):
        ctx.get_context(allow_offline=False)


# -- spool -------------------------------------------------------------------------------------
def test_spool_writer_seq_and_complete_lines(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path, "script-a1-1", "run-1")
    w.emit("tags", tags={"a": "1"})
    w.emit("status", status="Running", cause="started")
    w.emit("metrics", run_id="child-1", rows=[["m", "scalar", 0, 1.0, 0.0]])
    w.close()
    path = tmp_path / f"script-a1-1{SPOOL_SUFFIX}"
    assert w.path == path
    chunk = read_chunk(path, 0)
    events = list(parse_lines(chunk))
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [e["type"] for e in events] == ["tags", "status", "metrics"]
    assert [e["run_id"] for e in events] == ["run-1", "run-1", "child-1"]
    assert events[1]["status"] == "Running" and isinstance(events[0]["ts"], float)
    assert len(chunk) == path.stat().st_size

    # a partial trailing line (a writer mid-write) is not returned
    with open(path, "ab") as fh:
        fh.write(b'{"seq":4,"type":"tag')
    assert read_chunk(path, 0) == chunk
    assert read_chunk(path, len(chunk)) == b""
    with open(path, "ab") as fh:
        fh.write(b's","run_id":"run-1"}\n')
    rest = read_chunk(path, len(chunk))
    assert [e["seq"] for e in parse_lines(rest)] == [4]
    # reading from a line boundary in the middle works too
    first_len = chunk.index(b"\n") + 1
    assert [e["seq"] for e in parse_lines(read_chunk(path, first_len))] == [2, 3, 4]
    assert read_chunk(tmp_path / "missing.jsonl", 0) == b""


def test_spool_writer_reopen_appends(tmp_path: Path) -> None:
    a = SpoolWriter(tmp_path, "s", "r")
    a.emit("tags", tags={})
    a.close()
    b = SpoolWriter(tmp_path, "s", "r")
    b.emit("tags", tags={})
    b.close()
    assert len(list(parse_lines(read_chunk(b.path, 0)))) == 2


def test_parse_lines_skips_corrupt_lines() -> None:
    chunk = b'{"seq":1}\nnot json\n\n[1,2]\n{"seq":2}\n'
    assert [e["seq"] for e in parse_lines(chunk)] == [1, 2]


def test_list_streams_runner_first(tmp_path: Path) -> None:
    assert list_streams(tmp_path / "nope") == []
    for name in ("script-a1-9", "interactive-1-abc", "runner-a2", "runner-a1", "a-first"):
        (tmp_path / f"{name}{SPOOL_SUFFIX}").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert list_streams(tmp_path) == ["runner-a1", "runner-a2", "a-first",
                                      "interactive-1-abc", "script-a1-9"]


# -- live runs ---------------------------------------------------------------------------------
@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveRun]:
    run_id = "exp_1700000000_abcdef01"
    run = start_interactive(run_id, tmp_path / "spool", tmp_path / "runs" / run_id / "artifacts",
                            "exp", str(tmp_path))
    yield run
    run._tracker.close()
    run._tracker.writer.close()


def spool_events(run: LiveRun) -> list[dict[str, Any]]:
    spool_dir = run._tracker.writer.path.parent
    out: list[dict[str, Any]] = []
    for stream in list_streams(spool_dir):
        out.extend(parse_lines(read_chunk(spool_dir / f"{stream}{SPOOL_SUFFIX}", 0)))
    return out


def metric_rows(events: list[dict[str, Any]], run_id: str | None = None) -> list[list[Any]]:
    """``[name, kind, step, value]`` rows of the (column-wise) metrics events."""
    return [[e["name"], e["kind"], step, value] for e in events if e["type"] == "metrics"
            and (run_id is None or e["run_id"] == run_id)
            for step, value in zip(e["steps"], e["values"], strict=True)]


def test_live_run_metrics(live: LiveRun) -> None:
    live.log("acc", 0.5)
    live.log("acc", 0.75)
    live.log("acc", 1, step=10)
    live.log("flag", True)
    live.log("note", "text")
    live.log_list("losses", [3, 2.5, 1])
    live.log_row("roc", fpr=0.0, tpr=1.0)
    live.log_row("roc", fpr=0.5, tpr=1.0)
    live.log_table("tbl", {"x": [1, 2], "y": ["a", "b"]})
    live.flush()
    rows = sorted(metric_rows(spool_events(live), live.id), key=lambda r: (r[0], r[2]))
    assert rows == [
        ["acc", "scalar", 0, 0.5], ["acc", "scalar", 1, 0.75], ["acc", "scalar", 10, 1],
        ["flag", "scalar", 0, True], ["losses", "list", 0, [3, 2.5, 1]],
        ["note", "scalar", 0, "text"],
        ["roc", "row", 0, {"fpr": 0.0, "tpr": 1.0}], ["roc", "row", 1, {"fpr": 0.5, "tpr": 1.0}],
        ["tbl", "table", 0, {"x": [1, 2], "y": ["a", "b"]}],
    ]
    assert all(e["run_id"] == live.id for e in spool_events(live))


def test_live_run_log_image_path_and_plot(live: LiveRun, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = tmp_path / "pic.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    live.log_image("pic", path=png)
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    try:
        live.log_image("curves/loss", plot=fig)
    finally:
        plt.close(fig)
    live.flush()
    events = spool_events(live)
    files = [f for e in events if e["type"] == "files" for f in e["files"]]
    names = [f[0] for f in files]
    assert names == ["images/pic.png", "images/curves_loss.png"]
    saved = live.artifacts_dir / "images" / "curves_loss.png"
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files[1][1] == saved.stat().st_size > 100
    assert (live.artifacts_dir / "images" / "pic.png").read_bytes() == png.read_bytes()
    assert metric_rows(events) == [
        ["pic", "image", 0, {"artifact": "images/pic.png"}],
        ["curves/loss", "image", 0, {"artifact": "images/curves_loss.png"}]]
    with pytest.raises(TrackingError, match="path/plot"):
        live.log_image("x")
    with pytest.raises(TrackingError, match="path/plot"):
        live.log_image("x", path=png, plot=fig)


def test_live_run_tags_and_properties(live: LiveRun) -> None:
    live.tag("team", "vision")
    live.tag("flag")
    live.set_tags({"team": "nlp", "n": 3})
    live.add_properties({"seed": 7})
    live.add_properties({"seed": "7"})
    with pytest.raises(TrackingError, match="seed"):
        live.add_properties({"seed": 8})
    assert live.get_tags() == {"team": "nlp", "flag": None, "n": "3"}
    assert live.get_properties() == {"seed": "7"}
    events = spool_events(live)
    assert [e["tags"] for e in events if e["type"] == "tags"] == [
        {"team": "vision"}, {"flag": None}, {"team": "nlp", "n": "3"}]
    props = [e["properties"] for e in events if e["type"] == "properties"]
    assert props and all(p == {"seed": "7"} for p in props)  # the refused value never left


def test_live_run_uploads(live: LiveRun, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    live.upload_file("outputs/model.bin", src)
    live.upload_file("outputs/stream.txt", io.BytesIO(b"from a stream"))
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("1,2\n")
    (folder / "sub" / "b.csv").write_text("3,4,5\n")
    live.upload_folder("inputs", folder)
    art = live.artifacts_dir
    assert (art / "outputs" / "model.bin").read_bytes() == b"weights"
    assert (art / "outputs" / "stream.txt").read_bytes() == b"from a stream"
    assert (art / "inputs" / "sub" / "b.csv").read_text() == "3,4,5\n"
    files = [f for e in spool_events(live) if e["type"] == "files" for f in e["files"]]
    assert files == [["outputs/model.bin", 7], ["outputs/stream.txt", 13],
                     ["inputs/a.csv", 4], ["inputs/sub/b.csv", 6]]
    with pytest.raises(TrackingError, match="path_or_stream"):
        live.upload_file("outputs/x", tmp_path / "missing")
    with pytest.raises(TrackingError, match="path"):
        live.upload_folder("x", tmp_path / "missing")


@pytest.mark.parametrize("bad", ["../escape.txt", "outputs/../../x", "/etc/passwd", "..",
                                 "a/..", "..\\win.txt", "", "   "])
def test_artifact_names_must_stay_inside(live: LiveRun, tmp_path: Path, bad: str) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(TrackingError, match="name"):
        live.upload_file(bad, src)
    with pytest.raises(TrackingError, match="name"):
        live.upload_file(bad, io.BytesIO(b"x"))
    with pytest.raises(TrackingError):
        live.log_image(bad, path=src)
    with pytest.raises(TrackingError, match="name"):
        live.upload_folder(bad, tmp_path)
    assert not (tmp_path / "runs" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert [e for e in spool_events(live) if e["type"] == "files"] == []


@pytest.mark.parametrize("call", [
    lambda r: r.log("bad_metric", {"a": 1}),
    lambda r: r.log("bad_metric", [1, 2]),
    lambda r: r.log("bad_metric", object()),
    lambda r: r.log_list("bad_metric", [1, {"a": 1}]),
    lambda r: r.log_row("bad_metric", x=[1]),
    lambda r: r.log_table("bad_metric", {"x": [None]}),
    lambda r: r.log_table("bad_metric", [1, 2]),
])
def test_wrong_metric_values_raise_naming_the_metric(live: LiveRun, call: Any) -> None:
    with pytest.raises(TrackingError, match="'bad_metric'"):
        call(live)
    live.flush()
    assert metric_rows(spool_events(live)) == []


def test_child_runs(live: LiveRun) -> None:
    child = live.child_run("first child")
    child.log("loss", 0.3)
    child.tag("stage", "1")
    kids = live.create_children(tag_key="fold", tag_values=["a", "b", "c"])
    counted = live.create_children(count=2)
    with pytest.raises(TrackingError, match="count"):
        live.create_children()
    child.complete()
    live.flush()
    assert child.parent is live and child.id.startswith(live.id + "_")
    assert child.artifacts_dir == live.artifacts_dir.parent.parent / child.id / "artifacts"
    all_kids = [child, *kids, *counted]
    assert len({k.id for k in all_kids}) == 6
    events = spool_events(live)
    created = [e for e in events if e["type"] == "child"]
    assert [e["run_id"] for e in created] == [k.id for k in all_kids]
    assert all(e["parent_id"] == live.id for e in created)
    assert created[0]["display_name"] == "first child"
    fold_tags = {e["run_id"]: e["tags"] for e in events
                 if e["type"] == "tags" and "fold" in e["tags"]}
    assert fold_tags == {k.id: {"fold": v} for k, v in zip(kids, "abc", strict=True)}
    assert metric_rows(events, child.id) == [["loss", "scalar", 0, 0.3]]
    assert metric_rows(events, live.id) == []
    status = [e for e in events if e["type"] == "status"]
    assert [(e["run_id"], e["status"]) for e in status] == [(child.id, "Completed")]


def test_child_run_context_manager_reports_failure(live: LiveRun) -> None:
    with pytest.raises(RuntimeError), live.child_run() as child:
        raise RuntimeError("kaboom")
    status = [e for e in spool_events(live) if e["type"] == "status"]
    assert [(e["run_id"], e["status"]) for e in status] == [(child.id, "Failed")]
    assert "kaboom" in status[0]["error"]["message"]
    assert "Traceback" in status[0]["error"]["traceback"]


def test_metric_rows_are_batched(live: LiveRun) -> None:
    n = 50_000
    for i in range(n):
        live.log("loss", i * 0.5)
    live.flush()
    batches = [e for e in spool_events(live) if e["type"] == "metrics"]
    assert 1 <= len(batches) <= 20, len(batches)
    steps = sorted(s for e in batches for s in e["steps"])
    assert steps == list(range(n))
    assert max(len(e["steps"]) for e in batches) <= ctx._FLUSH_ROWS


def test_numpy_scalars_are_logged_as_python_values(live: LiveRun) -> None:
    np = pytest.importorskip("numpy")
    live.log("f32", np.float32(0.5))
    live.log("i64", np.int64(3))
    live.log_list("arr", np.array([1.5, 2.5]))
    live.flush()
    rows = sorted(metric_rows(spool_events(live)))
    assert rows == [["arr", "list", 0, [1.5, 2.5]], ["f32", "scalar", 0, 0.5],
                    ["i64", "scalar", 0, 3]]


def test_numpy_array_to_log_raises_naming_the_metric(live: LiveRun) -> None:
    np = pytest.importorskip("numpy")
    with pytest.raises(TrackingError, match="'bad_metric'"):
        live.log("bad_metric", np.array([1.0, 2.0]))


@pytest.mark.parametrize("bad", ["../../escape", "../sibling", "a/b", "/abs", "..", "a\\b"])
def test_child_run_id_cannot_escape_the_runs_folder(live: LiveRun, bad: str) -> None:
    runs_root = live.artifacts_dir.parent.parent.resolve()
    try:
        child = live.child_run(run_id=bad)
    except TrackingError as exc:
        assert str(exc).startswith("run_id")
        assert [e for e in spool_events(live) if e["type"] == "child"] == []
        return
    assert child.artifacts_dir.resolve().is_relative_to(runs_root)
    assert child.artifacts_dir.resolve().parent.parent == runs_root


def test_child_run_with_explicit_id(live: LiveRun) -> None:
    child = live.child_run(name="named", run_id="exp_1700000000_abcdef01_fold-1.a")
    assert child.id == "exp_1700000000_abcdef01_fold-1.a"
    created = [e for e in spool_events(live) if e["type"] == "child"]
    assert [(e["run_id"], e["display_name"]) for e in created] == [(child.id, "named")]


def test_child_run_id_with_trailing_newline_is_refused(live: LiveRun) -> None:
    with pytest.raises(TrackingError):
        live.child_run(run_id="child\n")


def test_context_from_environment_writes_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update({"PYTHONPATH": str(SRC), ctx.ENV_RUN_ID: "exp_1_deadbeef",
                ctx.ENV_SPOOL_DIR: str(spool), ctx.ENV_ARTIFACTS_DIR: str(tmp_path / "art"),
                ctx.ENV_EXPERIMENT: "exp", ctx.ENV_ATTEMPT: "2",
                ctx.ENV_PROPERTIES: json.dumps({"seed": "1"})})
    code = textwrap.dedent("""
        from runyard import Run
        run = Run.get_context()
        assert type(run).__name__ == "LiveRun", run
        assert run.get_properties() == {"seed": "1"}
        try:
            run.add_properties({"seed": "2"})
        except ValueError:
            pass
        else:
            raise SystemExit("property changed")
        for i in range(5):
            run.log("loss", 1.0 / (i + 1))
        # no flush: leaving the interpreter must flush what was buffered
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    streams = list_streams(spool)
    assert len(streams) == 1 and streams[0].startswith("script-a2-")
    events = list(parse_lines(read_chunk(spool / f"{streams[0]}{SPOOL_SUFFIX}", 0)))
    assert {e["run_id"] for e in events} == {"exp_1_deadbeef"}
    assert [r[2] for r in metric_rows(events)] == [0, 1, 2, 3, 4]
