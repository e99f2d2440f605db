"""The local target end to end: real workspaces, real runner and script subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runyard import (
    Experiment,
    InvalidParameter,
    NotFound,
    Run,
    RunConfiguration,
    RunFailed,
    ScriptRunConfig,
    Workspace,
)
from runyard.compute.procs import process_start_time
from runyard.errors import SnapshotTooLarge, WorkspaceError
from runyard.services.runs.reconciler import reconcile
from support import write

SRC = str(Path(__file__).resolve().parents[2] / "src")



@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws", max_concurrent_runs=4)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def wait_status(run: Run, wanted: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run.get_status()
        if status in wanted:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{run.id} stayed {run.get_status()}, wanted {wanted}")


def pid_alive(pid: int) -> bool:
    return process_start_time(pid) is not None


def test_train_script_records_everything(ws: Workspace, src: Path) -> None:
    write(src, "train.py", """
        import os, sys
        from runyard import Run
        run = Run.get_context()
        for epoch in range(3):
            run.log("loss", 1.0 / (epoch + 1))
        run.log("accuracy", 0.9)
        run.log_list("folds", [0.1, 0.2])
        run.log_row("table", epoch=1, acc=0.5)
        run.log_row("table", epoch=2, acc=0.7)
        run.tag("stage", "dev")
        run.add_properties({"owner": "me"})
        os.makedirs("outputs", exist_ok=True)
        with open("outputs/model.txt", "w") as fh:
            fh.write("weights")
        os.makedirs("logs", exist_ok=True)
        with open("logs/extra.log", "w") as fh:
            fh.write("side log")
        print("out-1", flush=True)
        print("err-1", file=sys.stderr, flush=True)
        print("out-2", flush=True)
        print("args", sys.argv[1:])
    """)
    write(src, "data/helper.txt", "x")
    exp = Experiment(ws, "train-exp")
    run = exp.submit(ScriptRunConfig(src, "train.py", arguments=["--lr", 0.5]),
                     tags={"team": "a"})
    assert run.id.startswith("train-exp_") and len(run.id.split("_")[-1]) == 8
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    assert details["startTimeUtc"] and details["endTimeUtc"]
    assert details["runDefinition"]["arguments"] == ["--lr", "0.5"]
    m = run.get_metrics()
    assert m["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert m["accuracy"] == 0.9
    assert m["folds"] == [0.1, 0.2]
    assert m["table"] == {"epoch": [1, 2], "acc": [0.5, 0.7]}
    assert run.get_tags() == {"team": "a", "stage": "dev"}
    assert run.get_properties() == {"owner": "me"}
    names = run.get_file_names()
    assert {"outputs/model.txt", "logs/extra.log", "system_logs/driver_log.txt"} <= set(names)
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert log.index("out-1") < log.index("err-1") < log.index("out-2")
    assert "args ['--lr', '0.5']" in log
    statuses = [e["status"] for e in run.get_events()]
    assert statuses == ["Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"]
    assert all(e["cause"] for e in run.get_events())
    # downloads and snapshot
    out = Path(run.download_file("outputs/model.txt", str(src.parent / "model.txt")))
    assert out.read_text() == "weights"
    files = run.download_files(prefix="outputs", output_directory=str(src.parent / "dl"))
    assert [Path(f).name for f in files] == ["model.txt"]
    restored = Path(run.restore_snapshot(path=str(src.parent / "restored")))
    assert (restored / "train.py").read_text() == (src / "train.py").read_text()
    assert (restored / "data/helper.txt").exists()
    with pytest.raises(NotFound):
        run.download_file("outputs/missing.txt")
    # the same run seen from a fresh workspace object (as another process would)
    again = Run.get(Workspace.from_config(ws.path), run.id)
    assert again.get_metrics()["accuracy"] == 0.9
    assert [r.id for r in exp.get_runs(tags={"team": "a"})] == [run.id]
    assert list(exp.get_runs(tags={"team": "b"})) == []
    assert [r.id for r in exp.get_runs(status="Completed")] == [run.id]
    assert [r.id for r in exp.get_runs(properties="owner")] == [run.id]


def test_script_also_runs_directly(src: Path) -> None:
    script = write(src, "train.py", """
        from runyard import Run
        run = Run.get_context()
        run.log("loss", 0.25)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["PYTHONPATH"] = SRC
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         check=True)
    assert "loss = 0.25" in out.stdout


def test_crashing_script_is_a_failed_run_with_traceback(ws: Workspace, src: Path) -> None:
    write(src, "boom.py", """
        def inner():
            raise ValueError("bad value 42")
        print("before crash")
        inner()
    """)
    run = Experiment(ws, "crash").submit(ScriptRunConfig(src, "boom.py"))
    with pytest.raises(RunFailed, match="bad value 42"):
        run.wait_for_completion()
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    err = details["error"]
    assert err["exit_code"] == 1
    assert "Traceback (most recent call last)" in err["traceback"]
    assert "ValueError: bad value 42" in err["traceback"]
    assert "inner()" in err["traceback"]


def test_wait_for_completion_streams_log_and_summary(ws: Workspace, src: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    write(src, "hello.py", "print('streamed line')\n")
    run = Experiment(ws, "stream").submit(ScriptRunConfig(src, "hello.py"))
    run.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert f"RunId: {run.id}" in out
    assert "streamed line" in out
    assert out.index("streamed line") < out.index("Execution Summary")
    assert "Status: Completed" in out


def test_cancel_ends_the_whole_process_tree(ws: Workspace, src: Path) -> None:
    write(src, "sleepy.py", """
        import subprocess, sys, time, os
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        os.makedirs("outputs", exist_ok=True)
        open("outputs/child.pid", "w").write(str(child.pid))
        print("ready", flush=True)
        time.sleep(600)
    """)
    run = Experiment(ws, "cancel").submit(ScriptRunConfig(src, "sleepy.py"))
    wait_status(run, {"Running"})
    pid_file = ws.run_dir(run.id) / "wd/outputs/child.pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    script_pid = int((ws.run_dir(run.id) / "script.pid").read_text())
    assert pid_alive(child_pid) and pid_alive(script_pid)
    run.cancel()
    assert run.get_status() == "Canceled"
    deadline = time.monotonic() + 10
    while (pid_alive(child_pid) or pid_alive(script_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child_pid) and not pid_alive(script_pid)
    run.cancel()  # a no-op once finished
    assert run.get_status() == "Canceled"


def test_max_run_duration_is_enforced(ws: Workspace, src: Path) -> None:
    write(src, "long.py", "import time\ntime.sleep(600)\n")
    cfg = ScriptRunConfig(src, "long.py", max_run_duration_seconds=1)
    run = Experiment(ws, "limits").submit(cfg)
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    assert "max_run_duration_seconds" in details["error"]["message"]


def test_concurrency_limit_queues_runs(tmp_path: Path, src: Path) -> None:
    ws = Workspace.create("ws1", tmp_path / "ws1", max_concurrent_runs=1)
    write(src, "hold.py", """
        import os, time
        while not os.path.exists(os.environ["RELEASE_FILE"]):
            time.sleep(0.05)
    """)
    release = tmp_path / "release"
    cfg = ScriptRunConfig(src, "hold.py")
    cfg.run_config.environment.environment_variables["RELEASE_FILE"] = str(release)
    exp = Experiment(ws, "queue")
    first = exp.submit(cfg)
    wait_status(first, {"Running"})
    second = exp.submit(cfg)
    time.sleep(1.0)
    assert second.get_status() == "Queued"
    release.write_text("go")
    assert first.wait_for_completion()["status"] == "Completed"
    assert second.wait_for_completion()["status"] == "Completed"


def test_run_survives_submitter_exit_and_is_reattached(ws: Workspace, src: Path) -> None:
    write(src, "slow.py", """
        import time
        from runyard import Run
        run = Run.get_context()
        time.sleep(1.5)
        run.log("done", 1)
    """)
    code = textwrap.dedent(f"""
        from runyard import Workspace, Experiment, ScriptRunConfig
        ws = Workspace.from_config({str(ws.path)!r})
        run = Experiment(ws, "detached").submit(ScriptRunConfig({str(src)!r}, "slow.py"))
        print(run.id)
    """)
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC},
                         capture_output=True, text=True, check=True, timeout=60)
    run_id = out.stdout.strip().splitlines()[-1]
    fresh = Workspace.from_config(ws.path)  # a restarted workspace process
    live = reconcile(fresh.context)
    assert run_id in [r.id for r in live]
    run = Run.get(fresh, run_id)
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics()["done"] == 1


def test_vanished_runner_becomes_not_responding(ws: Workspace, src: Path) -> None:
    write(src, "sleep.py", "import time\ntime.sleep(600)\n")
    run = Experiment(ws, "vanish").submit(ScriptRunConfig(src, "sleep.py"))
    wait_status(run, {"Running"})
    runner_pid = run._record.handle["pid"]  # type: ignore[index]
    script_pid = int((ws.run_dir(run.id) / "script.pid").read_text())
    os.kill(runner_pid, signal.SIGKILL)
    os.killpg(script_pid, signal.SIGKILL)
    details = run.wait_for_completion(raise_on_error=False, timeout=30)
    assert details["status"] == "NotResponding"
    assert "vanished" in run.get_events()[-1]["cause"]


def test_two_processes_submitting_at_once(ws: Workspace, src: Path) -> None:
    write(src, "ok.py", "print('ok')\n")
    code = textwrap.dedent(f"""
        from runyard import Workspace, Experiment, ScriptRunConfig
        ws = Workspace.from_config({str(ws.path)!r})
        exp = Experiment(ws, "together")
        for _ in range(5):
            print(exp.submit(ScriptRunConfig({str(src)!r}, "ok.py")).id)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC},
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    ids = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        ids += out.split()
    assert len(set(ids)) == 10
    exp = Experiment(ws, "together")
    assert {r.id for r in exp.get_runs()} == set(ids)
    for rid in ids:
        assert Run.get(ws, rid).wait_for_completion()["status"] == "Completed"


def test_child_runs_from_inside_a_script(ws: Workspace, src: Path) -> None:
    write(src, "kids.py", """
        from runyard import Run
        run = Run.get_context()
        with run.child_run(name="first") as child:
            child.log("score", 1)
        kids = run.create_children(tag_key="fold", tag_values=["a", "b"])
        for i, kid in enumerate(kids):
            kid.log("score", 10 + i)
            kid.complete()
        open_child = run.child_run(name="left-open")
    """)
    run = Experiment(ws, "kids").submit(ScriptRunConfig(src, "kids.py"))
    run.wait_for_completion()
    children = list(run.get_children())
    assert len(children) == 4
    by_name = {c.display_name: c for c in children}
    assert by_name["first"].get_metrics() == {"score": 1}
    assert by_name["first"].get_status() == "Completed"
    assert by_name["left-open"].get_status() == "Completed"  # closed with its parent
    assert sorted(c.get_tags().get("fold") or "" for c in children) == ["", "", "a", "b"]
    assert list(Experiment(ws, "kids").get_runs()) == [run]
    assert len(list(Experiment(ws, "kids").get_runs(include_children=True))) == 5
    assert all(c.parent == run for c in children)
    rec = run.get_metrics(recursive=True)
    assert rec[by_name["first"].id] == {"score": 1}


def test_interactive_run(ws: Workspace, tmp_path: Path) -> None:
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()
    (out_dir / "result.txt").write_text("r")
    exp = Experiment(ws, "interactive")
    with exp.start_logging(outputs=str(out_dir), display_name="notebook") as run:
        run.log("x", 1)
        run.log("x", 2)
        run.tag("k", "v")
        assert run.get_status() == "Running"
    assert run.get_status() == "Completed"
    assert run.get_metrics() == {"x": [1, 2]}
    assert "outputs/result.txt" in run.get_file_names()
    with pytest.raises(ZeroDivisionError), exp.start_logging(outputs=None) as failing:
        1 / 0  # noqa: B018
    assert failing.get_status() == "Failed"
    assert "ZeroDivisionError" in failing.get_details()["error"]["traceback"]


def test_fetched_run_tags_and_properties(ws: Workspace, src: Path) -> None:
    write(src, "ok.py", "pass\n")
    run = Experiment(ws, "meta").submit(ScriptRunConfig(src, "ok.py"))
    run.wait_for_completion()
    run.tag("reviewed", "yes")
    run.add_properties({"approved_by": "ana"})
    run.add_properties({"approved_by": "ana"})
    with pytest.raises(InvalidParameter, match="approved_by"):
        run.add_properties({"approved_by": "bob"})
    assert run.get_properties() == {"approved_by": "ana"}
    run.remove_tags(["reviewed"])
    assert "reviewed" not in run.get_tags()


def test_runconfig_file_submission(ws: Workspace, src: Path) -> None:
    write(src, "env.py", "import os\nprint('VAR=' + os.environ['MY_VAR'])\n")
    rc = RunConfiguration(script="env.py")
    rc.environment.environment_variables["MY_VAR"] = "from-runconfig"
    rc.save(src, "mine")
    loaded = RunConfiguration.load(src, "mine")
    run = Experiment(ws, "rc").submit(ScriptRunConfig(src, run_config=loaded))
    run.wait_for_completion()
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert "VAR=from-runconfig" in log


def test_user_managed_interpreter_path(ws: Workspace, src: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    write(src, "which.py", """
        import sys
        from runyard import Run
        Run.get_context().log("prefix", sys.prefix)
    """)
    cfg = ScriptRunConfig(src, "which.py")
    cfg.run_config.environment.python.user_managed_dependencies = True
    cfg.run_config.environment.python.interpreter_path = str(venv / "bin" / "python")
    run = Experiment(ws, "interp").submit(cfg)
    run.wait_for_completion()
    # the venv has no runyard installed: the runtime reached the script through PYTHONPATH
    assert run.get_metrics()["prefix"] == str(venv)


@pytest.mark.parametrize("case", ["missing_script", "outside", "interpreter", "target",
                                  "experiment", "source_dir", "snapshot", "conda"])
def test_bad_input_leaves_nothing_behind(ws: Workspace, src: Path, tmp_path: Path,
                                         case: str) -> None:
    write(src, "train.py", "print(1)\n")
    write(tmp_path, "outside.py", "print(1)\n")
    exp = Experiment(ws, "bad")
    cfg = ScriptRunConfig(src, "train.py")
    expected: type[Exception] = InvalidParameter
    field = ""
    if case == "missing_script":
        cfg = ScriptRunConfig(src, "nope.py")
        field = "script"
    elif case == "outside":
        cfg = ScriptRunConfig(src, "../outside.py")
        field = "script"
    elif case == "interpreter":
        cfg.run_config.environment.python.user_managed_dependencies = True
        cfg.run_config.environment.python.interpreter_path = "/no/such/python"
        field = "interpreter_path"
    elif case == "target":
        cfg = ScriptRunConfig(src, "train.py", compute_target="gpu-cluster")
        expected, field = NotFound, "gpu-cluster"
    elif case == "source_dir":
        cfg = ScriptRunConfig(tmp_path / "missing", "train.py")
        field = "source_directory"
    elif case == "snapshot":
        ws2 = Workspace.create("small", tmp_path / "small")
        cfg_file = ws2.data_dir / "config.json"
        data = json.loads(cfg_file.read_text())
        data["snapshot_max_files"] = 2
        cfg_file.write_text(json.dumps(data))
        for i in range(3):
            write(src, f"f{i}.txt", "x" * (i + 1) * 1000)
        ws = Workspace.from_config(ws2.path)
        exp = Experiment(ws, "bad")
        expected, field = SnapshotTooLarge, "f2.txt"
    elif case == "conda":
        cfg.run_config.environment.python.conda_dependencies_file = "env.yml"  # missing
        field = "conda_dependencies_file.*does not exist"
    if case == "experiment":
        with pytest.raises(InvalidParameter, match="experiment_name"):
            Experiment(ws, "-bad name-")
        assert ws.store.list_experiments() == []
        return
    with pytest.raises(expected, match=field):
        exp.submit(cfg)
    assert list(exp.get_runs()) == []
    runs_dir = ws.data_dir / "runs"
    assert not runs_dir.exists() or list(runs_dir.iterdir()) == []


def test_workspace_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="runyard init"):
        Workspace.get("nothing", tmp_path)
    with pytest.raises(NotFound, match="runyard init"):
        Workspace.from_config(tmp_path)
    ws = Workspace.create("good", tmp_path / "w")
    with pytest.raises(Exception, match="already exists"):
        Workspace.create("good", tmp_path / "w")
    assert Workspace.create("good", tmp_path / "w", exist_ok=True) == ws
    (ws.data_dir / "config.json").write_text("{not json")
    with pytest.raises(WorkspaceError, match="not valid JSON"):
        Workspace.from_config(tmp_path / "w")
    with pytest.raises(InvalidParameter, match="name"):
        Workspace.create("x", tmp_path / "bad")


def test_from_config_walks_up_and_write_config(tmp_path: Path) -> None:
    ws = Workspace.create("walker", tmp_path / "root")
    deep = tmp_path / "root" / "a" / "b"
    deep.mkdir(parents=True)
    assert Workspace.from_config(deep) == ws
    elsewhere = tmp_path / "other"
    ws.write_config(elsewhere)
    assert Workspace.from_config(elsewhere) == ws


def test_postgres_workspace(tmp_path: Path, postgres_url: str, src: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"ws_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    base = make_url(postgres_url)
    with psycopg.connect(host=base.host, port=base.port, user=base.username,
                         dbname=base.database, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("RUNYARD_DATABASE_URL", url)
    ws = Workspace.create("pg", tmp_path / "pg")
    assert "postgresql" in ws.get_details()["database"]
    write(src, "train.py", """
        from runyard import Run
        run = Run.get_context()
        for i in range(100):
            run.log("v", i)
    """)
    run = Experiment(ws, "pg-exp").submit(ScriptRunConfig(src, "train.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics()["v"] == list(range(100))
    assert not (ws.data_dir / "runyard.db").exists()
    ws.close()
