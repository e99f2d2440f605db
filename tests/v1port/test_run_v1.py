"""Azure ML v1's run, experiment, run-configuration and compute-target surface on runyard
(issue 11, item 4): real workspaces, real runner and script subprocesses, a real Ray cluster.

The control code below uses ``runyard.compat.azureml`` imports only; the training scripts in
``scripts/surface/`` are written as v1 users wrote them.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from runyard.compat.azureml.core import (
    Experiment,
    Run,
    RunConfiguration,
    ScriptRunConfig,
    Workspace,
)
from runyard.compat.azureml.core.experiment import Experiment as ExperimentFromModule
from runyard.compat.azureml.exceptions import ActivityFailedException, UserErrorException
from runyard.errors import InvalidParameter, InvalidTransition, NotSupported
from support import alive, wait_for

SCRIPTS = Path(__file__).resolve().parent / "scripts" / "surface"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config-home"))
    w = Workspace.create("v1-runs", path=tmp_path / "ws")
    yield w
    w.close()


def submit(ws: Workspace, script: str, *args: str, experiment: str = "v1-surface",
           tags: dict[str, str] | None = None) -> Run:
    config = ScriptRunConfig(source_directory=str(SCRIPTS), script=script,
                             arguments=list(args))
    return Experiment(ws, experiment).submit(config, tags=tags)


def test_integer_metrics_logs_portal_url_and_listing(ws: Workspace, tmp_path: Path) -> None:
    run = submit(ws, "train_metrics.py", tags={"team": "vision"})
    run.wait_for_completion(timeout=120)
    metrics = run.get_metrics()
    assert metrics["epochs"] == 3 and type(metrics["epochs"]) is int
    assert metrics["loss"] == [0.5, 0.25]
    assert metrics["whole_float"] == 2.0 and type(metrics["whole_float"]) is float
    assert metrics["optimizer"] == "sgd"
    run.log("reruns", 5)  # logged from outside the script: an int too
    assert type(run.get_metrics()["reruns"]) is int
    assert "outputs/model.txt" in run.get_file_names()

    details = run.get_details_with_logs()
    assert isinstance(details["logFiles"], dict) and details["logFiles"]
    assert any("training finished: epochs=3" in text for text in details["logFiles"].values())
    paths = run.get_all_logs(destination=str(tmp_path / "logs-here"))
    assert sorted(paths) == sorted(str(tmp_path / "logs-here" / n) for n in details["logFiles"])
    for name, text in details["logFiles"].items():
        assert (tmp_path / "logs-here" / name).read_text() == text

    url = run.get_portal_url()
    assert url.startswith("file://") and url.endswith(run.id)
    assert Path(url[len("file://"):]).is_dir()

    assert ws.get_run(run.id) == run and ws.get_run(run.id).experiment.name == "v1-surface"
    failed = submit(ws, "failing.py")
    with pytest.raises(ActivityFailedException, match="data folder missing"):
        failed.wait_for_completion(timeout=120)
    exp = Experiment(ws, "v1-surface")
    assert [r.id for r in Run.list(exp, status="Completed")] == [run.id]
    assert [r.id for r in Run.list(exp, status="Failed")] == [failed.id]
    assert [r.id for r in Run.list(exp, tags={"team": "vision"})] == [run.id]
    assert {r.id for r in Run.list(exp)} == {run.id, failed.id}


@pytest.mark.parametrize("how", ["fail", "complete"])
def test_fail_or_complete_from_outside_ends_the_script(ws: Workspace, tmp_path: Path,
                                                       how: str) -> None:
    marker = tmp_path / "pid.txt"
    run = submit(ws, "long_running.py", str(marker))
    pid = int(wait_for(lambda: marker.is_file() and marker.read_text(), 120,
                       "the script to start"))
    assert run.get_status() == "Running"
    if how == "fail":
        run.fail(error_details="stopped by the control script", error_code="UserStop")
        expected = "Failed"
    else:
        run.complete()
        expected = "Completed"
    assert run.get_status() == expected
    wait_for(lambda: not alive(pid), 30, f"script process {pid} to end")
    details = run.get_details()
    if how == "fail":
        assert details["error"]["message"] == "stopped by the control script"
        assert details["error"]["code"] == "UserStop"
    else:
        assert "error" not in details
    events = run.get_events()
    assert events[-1]["status"] == expected and "by caller" in events[-1]["cause"]
    time.sleep(0.5)  # the runner's own report of being stopped must not replace the status
    assert run.get_status() == expected

    # bad input: a run that has ended cannot be failed or completed again
    for again in (lambda: run.fail("again"), run.complete):
        with pytest.raises(InvalidTransition, match=f"already ended {expected}") as err:
            again()
        assert isinstance(err.value, UserErrorException)
    assert run.get_status() == expected
    assert len(run.get_events()) == len(events)


def test_start_logging_creates_and_collects_outputs(ws: Workspace, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Experiment(ws, "notebook")
    run = exp.start_logging(snapshot_directory=None)
    assert (tmp_path / "outputs").is_dir()  # created, as v1 did
    (tmp_path / "outputs" / "result.json").write_text('{"acc": 0.9}')
    run.log("batches", 12)
    run.complete()
    assert run.get_status() == "Completed"
    assert "outputs/result.json" in run.get_file_names()
    assert run.get_metrics() == {"batches": 12} and type(run.get_metrics()["batches"]) is int
    with pytest.raises(InvalidTransition, match="already ended"):
        run.fail("too late")
    assert run.get_status() == "Completed"


def test_experiment_archive_and_list_view_types(ws: Workspace) -> None:
    a, b = Experiment(ws, "keep"), Experiment(ws, "old")
    _ = a.id, b.id  # recorded
    b.archive()
    assert b.archived and not a.archived
    names = [e.name for e in Experiment.list(ws)]
    assert "keep" in names and "old" not in names
    assert [e.name for e in Experiment.list(ws, view_type="ArchivedOnly")] == ["old"]
    assert {"keep", "old"} <= {e.name for e in ExperimentFromModule.list(ws, view_type="All")}
    with pytest.raises(InvalidParameter, match="view_type"):
        Experiment.list(ws, view_type="Everything")
    with pytest.raises(NotSupported, match="rename"):
        b.reactivate(new_name="renamed")
    b.reactivate()
    assert "old" in [e.name for e in Experiment.list(ws)]


V1_RUNCONFIG = """\
script: train.py
arguments: [--epochs, '3']
target: local
framework: Python
communicator: None
autoPrepareEnvironment: true
maxRunDurationSeconds:
nodeCount: 1
environment:
  environmentVariables: {EXAMPLE_ENV_VAR: EXAMPLE_VALUE}
  python: {userManagedDependencies: true, interpreterPath: python}
history: {outputCollection: true, snapshotProject: true}
spark: {configuration: {spark.app.name: Azure ML Experiment, spark.yarn.maxAppAttempts: 1}}
hdi: {yarnDeployMode: cluster}
tensorflow: {workerCount: 1, parameterServerCount: 1}
mpi: {processCountPerNode: 1}
dataReferences: {}
sourceDirectoryDataStore:
amlcompute: {vmSize:, vmPriority:, retainCluster: false, name:, clusterMaxNodeCount: 1}
"""


def test_runconfig_save_and_load_in_v1_places(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    rc = RunConfiguration(script="train.py", arguments=["--lr", "0.1"])
    rc.environment.python.user_managed_dependencies = True
    rc.node_count = 2
    file = rc.save(path=str(project), name="mine")
    assert file == project / ".azureml" / "mine.runconfig"
    data = yaml.safe_load(file.read_text())
    assert data["script"] == "train.py" and data["nodeCount"] == 2
    assert data["environment"]["python"]["userManagedDependencies"] is True
    for loaded in (RunConfiguration.load(str(project), "mine"),
                   RunConfiguration.load(path=str(file)),
                   RunConfiguration.load(project_object=str(project), run_config_name="mine")):
        assert loaded.to_dict() == rc.to_dict()
    # a project with aml_config/ keeps its run configurations there, as v1 did
    (project / "aml_config").mkdir()
    assert rc.save(str(project), "old") == project / "aml_config" / "old.runconfig"
    assert RunConfiguration.load(str(project), "old").node_count == 2
    # a file written by the v1 SDK (2019 sample layout) loads
    (project / ".azureml" / "v1.runconfig").write_text(V1_RUNCONFIG)
    v1 = RunConfiguration.load(str(project), "v1")
    assert v1.arguments == ["--epochs", "3"] and v1.environment.python.user_managed_dependencies
    assert v1.environment.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    with pytest.raises(UserErrorException, match="'absent'"):
        RunConfiguration.load(str(project), "absent")
    RunConfiguration.delete(str(project), "v1")
    assert not (project / ".azureml" / "v1.runconfig").exists()


def test_cluster_wait_for_completion_waits_for_min_node_count(ws: Workspace) -> None:
    pytest.importorskip("ray")
    from runyard.compat.azureml.core.compute import AmlCompute, ComputeTarget
    from runyard.compute.cluster.ray import head as headmod

    watcher = headmod.guard(os.getpid(), ws.data_dir)  # no cluster outlives a killed test
    try:
        cfg = AmlCompute.provisioning_configuration(vm_size="local-1cpu", min_nodes=0,
                                                    max_nodes=1,
                                                    idle_seconds_before_scaledown=600)
        target = ComputeTarget.create(ws, "cpu-cluster", cfg)
        try:
            first = target.wait_for_completion(show_output=False, timeout_in_minutes=3)
            assert first.provisioning_state == "Succeeded"  # min_nodes 0: no node wait
            target.update(min_nodes=1)
            out = io.StringIO()
            with redirect_stdout(out):
                st = target.wait_for_completion(show_output=False, timeout_in_minutes=4)
            assert st.current_node_count >= 1, st  # waited for the cluster's min_nodes
            assert out.getvalue() == ""  # show_output=False prints nothing
            assert target.wait_for_completion(min_node_count=1).current_node_count >= 1
            status = target.get_status().serialize()
            assert status["provisioningState"] == "Succeeded"
            assert status["currentNodeCount"] >= 1
            assert set(status["nodeStateCounts"]) == {
                "preparingNodeCount", "runningNodeCount", "idleNodeCount",
                "unusableNodeCount", "leavingNodeCount", "preemptedNodeCount"}
            assert status["scaleSettings"] == {"minNodeCount": 1, "maxNodeCount": 1,
                                               "nodeIdleTimeBeforeScaleDown": "PT600S"}
            json.dumps(status)  # plain data
            # a count the cluster cannot reach: returns at the timeout, does not raise
            started = time.monotonic()
            short = target.wait_for_completion(min_node_count=5, timeout_in_minutes=0.05)
            assert short.current_node_count < 5 and time.monotonic() - started >= 2.5
            with pytest.raises(InvalidParameter, match="min_node_count"):
                target.wait_for_completion(min_node_count=-1)
        finally:
            target.delete(force=True)
    finally:
        watcher.kill()
        watcher.wait()
