"""Data and models end to end, on every target: a Blob datastore on a real Azurite, a CSV folder
uploaded to it, a registered tabular dataset passed as a named input to runs on the local
target, the namespace SSH host and a local Ray cluster; each run registers the model it wrote,
and the models list their lineage (run, experiment, input dataset)."""

from __future__ import annotations

import os
import pickle
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sshhost import SSHHost, running_host

from datastores_support import ACCOUNT, KEY
from runyard import Environment, Experiment, ScriptRunConfig, Workspace
from runyard.compute.cluster.ray import head as headmod
from runyard.computetarget import ClusterCompute, ComputeTarget, RemoteCompute
from runyard.dataio import OutputFileDatasetConfig
from runyard.dataset import Dataset
from runyard.datastore import Datastore
from runyard.model import Model

pytestmark = pytest.mark.integration

TRAIN = """
    import os, pickle, sys
    from runyard import Run
    run = Run.get_context()
    df = run.input_datasets["train"].to_pandas_dataframe()
    print("argument", sys.argv[1], "rows", len(df), flush=True)
    files = sorted(os.listdir(sys.argv[2]))
    print("raw files", files, flush=True)
    model = {"rows": len(df), "mean_b": float(df["b"].mean()), "where": sys.argv[3]}
    run.log("rows", len(df))
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    with open(os.path.join(sys.argv[4], "summary.csv"), "w") as fh:
        fh.write(f"rows,{len(df)}\\n")
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("data-e2e")
    old = os.environ.get("RUNYARD_CONFIG_HOME")
    os.environ["RUNYARD_CONFIG_HOME"] = str(root / "config")
    w = Workspace.create("data-e2e", root / "ws")
    watcher = headmod.guard(os.getpid(), w.data_dir)  # no cluster outlives a killed test run
    yield w
    w.close()
    watcher.kill()
    watcher.wait()
    if old is None:
        os.environ.pop("RUNYARD_CONFIG_HOME", None)
    else:
        os.environ["RUNYARD_CONFIG_HOME"] = old


@pytest.fixture(scope="module")
def host() -> Iterator[SSHHost]:
    with running_host("the data end-to-end test") as h:
        yield h


@pytest.fixture(scope="module")
def cluster(ws: Workspace) -> Iterator[ClusterCompute]:
    cfg = ClusterCompute.provisioning_configuration(
        vm_size="local-1cpu", min_nodes=0, max_nodes=1, idle_seconds_before_scaledown=60)
    target = ComputeTarget.create(ws, "data-cluster", cfg)
    assert isinstance(target, ClusterCompute)
    st = target.wait_for_completion(show_output=False, timeout=180)
    assert st.provisioning_state == "Succeeded", st.errors
    yield target
    target.delete(force=True)


def csv_folder(root: Path) -> Path:
    (root / "2024").mkdir(parents=True)
    for i in range(4):
        (root / ("2024" if i % 2 else "") / f"part{i}.csv").write_text(
            "a,b\n" + "".join(f"{i},{j}\n" for j in range(25)))
    return root


def test_blob_data_reaches_every_target_and_models_carry_lineage(
        ws: Workspace, host: SSHHost, cluster: ClusterCompute, azurite: Any,
        tmp_path: Path) -> None:
    store = Datastore.register_azure_blob_container(ws, "lake", "training", ACCOUNT,
                                                    account_key=KEY, endpoint=azurite.url,
                                                    create_if_not_exists=True)
    store.upload(str(csv_folder(tmp_path / "csv")), "iris", show_progress=False)
    tab = Dataset.Tabular.from_delimited_files((store, "iris/**/*.csv")).register(
        ws, "iris", description="four CSV parts")
    raw = Dataset.File.from_files((store, "iris/**/*.csv")).register(ws, "iris-files")
    assert (tab.id, raw.id) == ("iris:1", "iris-files:1")

    ComputeTarget.attach(ws, "box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(host.key_file), known_hosts_file=str(host.known_hosts)))
    src = tmp_path / "project"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(TRAIN))
    (tmp_path / "req.txt").write_text("pandas\n")
    pandas_env = Environment.from_pip_requirements("pandas-env", str(tmp_path / "req.txt"))

    runs = {}
    for target in ("local", "box", "data-cluster"):
        out = OutputFileDatasetConfig("summary", destination=(store, "summaries/{run-id}"))
        cfg = ScriptRunConfig(
            str(src), "train.py", compute_target=target,
            arguments=[tab.as_named_input("train"), raw.as_named_input("raw").as_mount(),
                       target, out.register_on_complete("summaries")],
            # the SSH host's python has no pandas: a built environment brings it
            environment=pandas_env if target == "box" else None)
        runs[target] = Experiment(ws, "data-e2e").submit(cfg)
    for target, run in runs.items():
        details = run.wait_for_completion(timeout=300)
        log = run.get_details_with_logs()["logFiles"]
        driver = next(v for k, v in log.items() if k.endswith("driver_log.txt"))
        assert details["status"] == "Completed", (target, details.get("error"), driver)
        assert "argument iris:1 rows 100" in driver, driver
        assert "raw files ['2024', 'part0.csv', 'part2.csv']" in driver
        assert "[runyard] inputs ready: 2 input(s), 8 file(s)" in driver
        used = {d["dataset"]["id"]: d["consumptionDetails"]
                for d in run.get_details()["inputDatasets"]}
        assert used == {"iris:1": {"type": "RunInput", "inputName": "train",
                                   "mechanism": "Direct", "kind": "tabular"},
                        "iris-files:1": {"type": "RunInput", "inputName": "raw",
                                         "mechanism": "Mount", "kind": "file"}}
        assert run.get_metrics()["rows"] == 100
        model = run.register_model("iris-model", "outputs/model.pkl", tags={"target": target})
        path = Path(model.download(str(tmp_path / f"m-{target}"), exist_ok=True))
        assert pickle.loads(path.read_bytes())["where"] == target
        props = run.get_properties()
        assert props["runyard.output.summary"] == f"lake:summaries/{run.id}"
        summary = Dataset.get_by_id(ws, props["runyard.output.summary.dataset"])
        assert [f.path for f in summary.files] == [f"summaries/{run.id}/summary.csv"]

    models = Model.list(ws, name="iris-model")
    assert sorted(m.version for m in models) == [1, 2, 3]
    by_target = {m.tags["target"]: m for m in models}
    for target, run in runs.items():
        m = by_target[target]
        assert m.run_id == run.id and m.experiment_name == "data-e2e"
        assert m.datasets == {"training": ["iris:1", "iris-files:1"]}
    assert len(Dataset.get_by_name(ws, "summaries", version="latest").files) == 1
    assert Dataset.get_by_name(ws, "summaries").version == 3
