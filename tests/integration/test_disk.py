"""Disk use of local runs (issue 11 item 8): runs of an unchanged source folder share the
snapshot's bytes, no run can alter the store's or another run's copy, and ``delete_runs`` /
``collect_garbage`` give the rest back. Real workspaces, real runner and script processes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import pytest

from runyard import Experiment, ScriptRunConfig, Workspace
from runyard.errors import InvalidParameter, InvalidTransition, NotFound
from runyard.services import cleanup
from runyard.snapshots import SnapshotStore
from support import set_config, wait_for, write

MIB = 1024 * 1024



def random_tree(folder: Path, total: int, files: int) -> None:
    """``files`` files of incompressible bytes, ``total`` bytes in all, in a few folders."""
    each = total // files
    for i in range(files):
        path = folder / f"data/part{i % 7}/blob{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(each))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("disk", tmp_path / "ws", max_concurrent_runs=4)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def allocated(path: Path) -> int:
    return cleanup.disk_usage(path)[1]


def run_n(ws: Workspace, src: Path, n: int) -> list[str]:
    exp = Experiment(ws, "disk")
    ids = []
    for _ in range(n):
        run = exp.submit(ScriptRunConfig(src, "train.py"))
        assert run.wait_for_completion()["status"] == "Completed"
        ids.append(run.id)
    return ids


TRAIN = """
    import os
    from pathlib import Path
    total = sum(p.stat().st_size for p in Path("data").rglob("*.bin"))
    os.makedirs("outputs", exist_ok=True)
    Path("outputs/total.txt").write_text(str(total))
"""


def test_runs_of_an_unchanged_folder_cost_about_one_copy(ws: Workspace, src: Path) -> None:
    random_tree(src, 20 * MIB, 60)
    write(src, "train.py", TRAIN)
    one_copy = allocated(src)
    ids = run_n(ws, src, 5)
    used = allocated(ws.data_dir)
    assert used < 1.2 * one_copy, (used, one_copy)
    for run_id in ids:
        assert not (ws.run_dir(run_id) / "wd").exists()  # the working copy went with the run
        assert (ws.run_dir(run_id) / "artifacts/outputs/total.txt").read_text() == \
            str(60 * (20 * MIB // 60))
    # the source is still there for whoever asks
    restored = ws.snapshots.restore(ws.store.get_run(ids[0]).snapshot_id,  # type: ignore[union-attr]
                                    ws.path.parent / "restored")
    assert sha(restored / "train.py") == sha(src / "train.py")


def test_keep_run_folders_keeps_each_copy(ws: Workspace, src: Path) -> None:
    """The measure above does catch copies: with ``keep_run_folders`` every run keeps one."""
    random_tree(src, 10 * MIB, 12)
    write(src, "train.py", TRAIN)
    set_config(ws.path, keep_run_folders=True)
    kept = Workspace.from_config(ws.path)
    one_copy = allocated(src)
    ids = run_n(kept, src, 3)
    assert all((kept.run_dir(i) / "wd" / "train.py").is_file() for i in ids)
    assert allocated(kept.data_dir) > 3.5 * one_copy
    # gc leaves them while the setting holds ...
    report = kept.client.collect_garbage(1, dry_run=True)
    assert report.count("working copy") == 0
    kept.close()
    # ... and removes the leftovers once it is off
    set_config(ws.path, keep_run_folders=False)
    plain = Workspace.from_config(ws.path)
    # a reconcile step of an ended run removes a working copy its runner left behind ...
    plain.client.get_run(ids[0], sync=True)
    assert not (plain.run_dir(ids[0]) / "wd").exists()
    assert (plain.run_dir(ids[1]) / "wd").exists()
    # ... and gc the others
    report = plain.client.collect_garbage(1)
    assert report.count("working copy") == 2
    assert not any((plain.run_dir(i) / "wd").exists() for i in ids)
    assert allocated(plain.data_dir) < 1.2 * one_copy
    plain.close()


VANDAL = """
    import os, sys, time
    from pathlib import Path
    sync = Path(sys.argv[1])
    deadline = time.time() + 60
    while not (sync / "witness-started").exists():
        assert time.time() < deadline, "witness never started"
        time.sleep(0.05)
    Path("data/a.bin").write_bytes(b"\\0" * 1000)                # overwrite
    open("data/b.txt", "r+").truncate(3)                         # truncate
    with open("data/sub/c.py", "a") as fh:                       # append
        fh.write("# vandal was here\\n")
    os.chmod("data/run.sh", 0o600)                               # chmod a file
    os.chmod("data/sub/c.py", 0o000)
    fd = os.open("data/d.bin", os.O_WRONLY)                      # write in place
    os.pwrite(fd, b"XXXX", 10)
    os.close(fd)
    os.chmod("data/sub", 0o000)                                  # and lock a folder
    (sync / "vandal-done").write_text("1")
"""

WITNESS = """
    import hashlib, json, os, sys, time
    from pathlib import Path
    sync = Path(sys.argv[1])
    (sync / "witness-started").write_text("1")
    deadline = time.time() + 60
    while not (sync / "vandal-done").exists():
        assert time.time() < deadline, "vandal never finished"
        time.sleep(0.05)
    seen = {}
    for p in sorted(Path("data").rglob("*")):
        if p.is_file():
            seen[p.as_posix()] = [hashlib.sha256(p.read_bytes()).hexdigest(),
                                  oct(p.stat().st_mode & 0o777)]
    os.makedirs("outputs", exist_ok=True)
    Path("outputs/seen.json").write_text(json.dumps(seen))
"""


def test_no_run_can_alter_the_store_or_another_runs_copy(ws: Workspace, src: Path,
                                                         tmp_path: Path) -> None:
    (src / "data/sub").mkdir(parents=True)
    (src / "data/a.bin").write_bytes(os.urandom(300_000))
    (src / "data/b.txt").write_text("some text that will be cut\n")
    (src / "data/sub/c.py").write_text("print('c')\n")
    (src / "data/d.bin").write_bytes(os.urandom(5000))
    (src / "data/run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(src / "data/run.sh", 0o755)
    write(src, "vandal.py", VANDAL)
    write(src, "witness.py", WITNESS)
    before = {p.relative_to(src).as_posix(): sha(p) for p in src.rglob("*") if p.is_file()}
    sync = tmp_path / "sync"
    sync.mkdir()
    exp = Experiment(ws, "isolation")
    witness = exp.submit(ScriptRunConfig(src, "witness.py", arguments=[str(sync)]))
    vandal = exp.submit(ScriptRunConfig(src, "vandal.py", arguments=[str(sync)]))
    assert vandal.wait_for_completion(raise_on_error=False)["status"] == "Completed", \
        vandal.get_details()
    assert witness.wait_for_completion(raise_on_error=False)["status"] == "Completed", \
        witness.get_details()

    snapshot_id = ws.store.get_run(witness.id).snapshot_id  # type: ignore[union-attr]
    assert snapshot_id == ws.store.get_run(vandal.id).snapshot_id  # type: ignore[union-attr]
    manifest = {e.path: e for e in ws.snapshots.manifest(snapshot_id)}
    # the other run, running at the same time, saw the files exactly as snapshotted
    seen = json.loads((ws.run_dir(witness.id) / "artifacts/outputs/seen.json").read_text())
    expected = {p: [e.blob, oct(e.mode)] for p, e in manifest.items() if p.startswith("data/")}
    assert seen == expected
    # the store is byte-identical: every blob still hashes to its name
    for e in manifest.values():
        assert sha(ws.snapshots.blob_path(e.blob)) == e.blob, e.path
        st = ws.snapshots.blob_path(e.blob).stat()
        assert st.st_nlink == 1  # no working copy shares the blob's inode
    # and the source folder too; a new run gets the original files back
    assert before == {p.relative_to(src).as_posix(): sha(p) for p in src.rglob("*")
                      if p.is_file()}
    restored = ws.snapshots.restore(snapshot_id, tmp_path / "restored")
    assert sha(restored / "data/a.bin") == before["data/a.bin"]
    assert stat.S_IMODE((restored / "data/run.sh").stat().st_mode) == 0o755
    # the vandal's working copy (with its locked folder) is gone as well
    assert not (ws.run_dir(vandal.id) / "wd").exists()


def test_restore_gives_private_files_and_never_writes_through_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("original")
    store = SnapshotStore(tmp_path / "store")
    info = store.take(src)
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    os.link(outside, dest / "f.txt")  # a hard link planted where the file goes
    store.restore(info.id, dest)
    assert outside.read_text() == "keep me"
    assert (dest / "f.txt").read_text() == "original"
    assert store.reflinks(dest) is not None  # tried once, answer remembered
    (dest / "f.txt").write_text("changed")
    blob = store.blob_path(store.manifest(info.id)[0].blob)
    assert blob.read_text() == "original" and blob.stat().st_nlink == 1


def _age(paths: list[Path], days: float) -> None:
    then = time.time() - days * 86400
    for p in paths:
        os.utime(p, (then, then))


def test_delete_runs_and_collect_garbage(ws: Workspace, src: Path, tmp_path: Path) -> None:
    random_tree(src, 2 * MIB, 8)
    write(src, "train.py", TRAIN)
    first = run_n(ws, src, 2)
    (src / "data/part0/blob0000.bin").write_bytes(os.urandom(100_000))  # a new snapshot
    second = run_n(ws, src, 1)
    store = ws.store
    snap1 = store.get_run(first[0]).snapshot_id  # type: ignore[union-attr]
    snap2 = store.get_run(second[0]).snapshot_id  # type: ignore[union-attr]
    assert snap1 != snap2
    ws.client.log_metric(first[0], "loss", "scalar", 0.5)

    # bad input removes nothing
    with pytest.raises(NotFound, match="nope"):
        ws.client.delete_runs([first[0], "nope"])
    with pytest.raises(InvalidParameter, match="older_than"):
        ws.client.collect_garbage(-1)
    with pytest.raises(InvalidParameter, match="older_than"):
        ws.client.collect_garbage("soon")  # type: ignore[arg-type]
    assert store.get_run(first[0]) is not None

    # deleting the runs of the first snapshot: records, metrics, folders
    report = ws.client.delete_runs(first)
    assert report.count("run") == 2 and report.total_bytes > 0
    for run_id in first:
        assert store.get_run(run_id) is None
        assert store.get_metric_rows(run_id) == [] and store.list_events(run_id) == []
        assert not ws.run_dir(run_id).exists()
    with pytest.raises(NotFound):
        ws.client.delete_runs([first[0]])

    # the first snapshot is unreferenced now; a recent snapshot is kept (grace) even at 0 days
    assert ws.client.collect_garbage(0, dry_run=True).count("snapshot") == 0
    manifests = ws.snapshots.root / "manifests"
    _age([manifests / f"{snap1}.json", manifests / f"{snap2}.json"], 3)
    dry = ws.client.collect_garbage(1, dry_run=True)
    assert [r.name for r in dry.removed if r.kind == "snapshot"] == [snap1]
    assert [r.name for r in dry.removed if r.kind == "run"] == []  # the last run is recent
    assert ws.snapshots.exists(snap1)  # dry run: nothing removed
    changed = {e.blob for e in ws.snapshots.manifest(snap1)} - \
        {e.blob for e in ws.snapshots.manifest(snap2)}
    assert {r.name for r in dry.removed if r.kind == "blob"} == changed
    done = ws.client.collect_garbage(1)
    assert done.total_bytes == dry.total_bytes > 0
    assert not ws.snapshots.exists(snap1)
    assert all(not ws.snapshots.blob_path(b).exists() for b in changed)
    # what the remaining run refers to is whole: it restores, and a new run works
    ws.snapshots.restore(snap2, tmp_path / "back")
    assert run_n(ws, src, 1)

    # a live run is refused, and nothing is deleted
    write(src, "sleep.py", "import time\ntime.sleep(60)\n")
    live = Experiment(ws, "disk").submit(ScriptRunConfig(src, "sleep.py"))
    wait_for(lambda: live.get_status() == "Running", 30, "the run to start")
    with pytest.raises(InvalidTransition, match="cancel it first"):
        ws.client.delete_runs([second[0], live.id])
    assert store.get_run(second[0]) is not None
    live.cancel()
    wait_for(lambda: live.get_status() == "Canceled", 30, "the run to end")
    assert ws.client.delete_runs([live.id]).count("run") == 1


def test_store_delete_runs_removes_every_record_of_ended_runs_only(db_url: str) -> None:
    from runyard.entities import FileRecord, MetricRow, RunRecord, RunStatus
    from runyard.store.base import IngestBatch, RunFilter, Transition
    from runyard.store.sqlalchemy.store import SqlWorkspaceStore

    store = SqlWorkspaceStore(db_url)
    try:
        store.get_or_create_experiment("e")
        for run_id, parent in (("done", None), ("kid", "done"), ("live", None)):
            store.create_run(RunRecord(id=run_id, experiment="e", status=RunStatus.QUEUED,
                                       created_at=time.time(), parent_id=parent), "submitted")
            store.set_tags(run_id, {"t": "1"})
            store.add_properties(run_id, {"p": "1"})
            store.add_metrics(run_id, [MetricRow("loss", "scalar", 0, 0.5, None, time.time())])
            store.add_files([FileRecord(run_id, "outputs/x", 1)])
            store.apply_ingest(run_id, IngestBatch(offsets={"s": (0, 10)}))
        for run_id in ("done", "kid"):
            assert store.transition(Transition(run_id, RunStatus.COMPLETED, "ok", time.time()))
        assert store.delete_runs(["done", "kid", "live", "never-was"]) == 2
        for run_id in ("done", "kid"):
            assert store.get_run(run_id) is None
            assert store.list_events(run_id) == [] and store.list_attempts(run_id) == []
            assert store.get_metric_rows(run_id) == [] and store.list_files(run_id) == []
            assert store.get_offsets(run_id) == {}
        live = store.get_run("live")  # not ended: left whole
        assert live is not None and live.tags == {"t": "1"} and store.get_metric_rows("live")
        assert [r.id for r in store.list_runs(RunFilter(top_level_only=False))] == ["live"]
        # the names can be used again (nothing of the old run left to collide with)
        store.create_run(RunRecord(id="done", experiment="e", status=RunStatus.QUEUED,
                                   created_at=time.time()), "submitted")
        store.add_metrics("done", [MetricRow("loss", "scalar", 0, 1.0, None, time.time())])
        assert [r.value for r in store.get_metric_rows("done")] == [1.0]
    finally:
        store.close()


def test_deleting_a_parent_deletes_its_children(ws: Workspace, src: Path) -> None:
    write(src, "parent.py", """
        from runyard import Run
        run = Run.get_context()
        for i in range(2):
            child = run.child_run(name=f"child {i}")
            child.log("x", i)
            child.complete()
    """)
    parent = Experiment(ws, "family").submit(ScriptRunConfig(src, "parent.py"))
    assert parent.wait_for_completion()["status"] == "Completed"
    children = [c.id for c in parent.get_children()]
    assert len(children) == 2
    report = ws.client.delete_runs([parent.id], dry_run=True)
    assert {r.name for r in report.removed} == {parent.id, *children}
    assert ws.store.get_run(children[0]) is not None  # dry run
    ws.client.delete_runs([parent.id])
    for run_id in (parent.id, *children):
        assert ws.store.get_run(run_id) is None and ws.store.get_metric_rows(run_id) == []
    assert not ws.run_dir(parent.id).exists()
