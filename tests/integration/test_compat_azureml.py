"""Azure ML v1 scripts run on runyard by changing their imports only.

The samples below are copied verbatim from the seed document (shared/reference/
seed-compute-targets.md) with ``azureml`` rewritten to ``runyard.compat.azureml``; the
``<placeholders>`` are filled with valid values. Each runs for real: samples of kinds that exist
complete, samples of kinds that have not landed raise ``NotSupported`` naming what is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard import Workspace
from runyard.errors import NotSupported

SRC = str(Path(__file__).resolve().parents[2] / "src")


def rewrite(sample: str) -> str:
    """The only change made to a sample: its imports (and dotted references) of azureml."""
    return textwrap.dedent(sample).replace("azureml.", "runyard.compat.azureml.")


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    return Workspace.create("compat", tmp_path)


def run_sample(sample: str, **namespace: Any) -> dict[str, Any]:
    import runyard.compat.azureml.core.runconfig  # noqa: F401  (dotted references)
    ns: dict[str, Any] = {"os": os, "runyard": sys.modules["runyard"], **namespace}
    exec(compile(rewrite(sample), "<sample>", "exec"), ns)  # noqa: S102
    return ns


LOCAL_USER_MANAGED = """
from azureml.core.runconfig import RunConfiguration

# Edit a run configuration property on the fly.
run_config_user_managed = RunConfiguration()

run_config_user_managed.environment.python.user_managed_dependencies = True

# Choose a specific Python environment by pointing to a Python path. For example:
# run_config.environment.python.interpreter_path = '/home/ninghai/miniconda3/envs/sdk2/bin/python'
"""

LOCAL_SYSTEM_MANAGED = """
from azureml.core.runconfig import RunConfiguration
from azureml.core.conda_dependencies import CondaDependencies

run_config_system_managed = RunConfiguration()

run_config_system_managed.environment.python.user_managed_dependencies = False
run_config_system_managed.auto_prepare_environment = True

# Specify the conda dependencies with scikit-learn

run_config_system_managed.environment.python.conda_dependencies = CondaDependencies.create(conda_packages=['scikit-learn'])
"""

SUBMIT = """
src = ScriptRunConfig(source_directory = script_folder, script = 'train.py', run_config = run_config_system_managed)
run = exp.submit(src)
run.wait_for_completion(show_output = True)
"""

AML_RUN_BASED = """
from azureml.core.compute import ComputeTarget, AmlCompute

# First, list the supported VM families for Azure Machine Learning Compute
AmlCompute.supported_vmsizes()

from azureml.core.runconfig import RunConfiguration

# Create a new runconfig object
run_config = RunConfiguration()

# Signal that you want to use AmlCompute to execute the script
run_config.target = "amlcompute"

# AmlCompute is created in the same region as your workspace
# Set the VM size for AmlCompute from the list of supported_vmsizes
run_config.amlcompute.vm_size = 'STANDARD_D2_V2'
"""

AML_PERSISTENT_BASIC = """
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException

# Choose a name for your CPU cluster
cpu_cluster_name = "cpucluster"

# Verify that the cluster doesn't already exist
try:
    cpu_cluster = ComputeTarget(workspace=ws, name=cpu_cluster_name)
    print('Found existing cluster, use it.')
except ComputeTargetException:
    compute_config = AmlCompute.provisioning_configuration(vm_size='STANDARD_D2_V2',
                                                           max_nodes=4)
    cpu_cluster = ComputeTarget.create(ws, cpu_cluster_name, compute_config)

cpu_cluster.wait_for_completion(show_output=True)
"""

AML_PERSISTENT_ADVANCED = """
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException

# Choose a name for your CPU cluster
cpu_cluster_name = "cpucluster"

# Verify that the cluster doesn't already exist
try:
    cpu_cluster = ComputeTarget(workspace=ws, name=cpu_cluster_name)
    print('Found existing cluster, use it.')
except ComputeTargetException:
    compute_config = AmlCompute.provisioning_configuration(vm_size='STANDARD_D2_V2',
                                                           vm_priority='lowpriority',
                                                           min_nodes=2,
                                                           max_nodes=4,
                                                           idle_seconds_before_scaledown='300',
                                                           vnet_resourcegroup_name='my-resource-group',
                                                           vnet_name='my-vnet-name',
                                                           subnet_name='my-subnet-name')
    cpu_cluster = ComputeTarget.create(ws, cpu_cluster_name, compute_config)

cpu_cluster.wait_for_completion(show_output=True)
"""

REMOTE_ATTACH = """
from azureml.core.compute import RemoteCompute, ComputeTarget

# Create the compute config
attach_config = RemoteCompute.attach_configuration(address = "ipaddress",
                                                   ssh_port=22,
                                                   username='username',
                                                   password="password")

# If you use SSH instead of a password, use this code:
#                                                  ssh_port=22,
#                                                  username='<username>',
#                                                  password=None,
#                                                  private_key_file="path-to-file",
#                                                  private_key_passphrase="passphrase")

# Attach the compute target
compute = ComputeTarget.attach(ws, "attach-dsvm", attach_config)

compute.wait_for_completion(show_output=True)
"""

DATABRICKS = """
databricks_compute_name = os.environ.get("AML_DATABRICKS_COMPUTE_NAME", "databricks-1")
databricks_workspace_name = os.environ.get("AML_DATABRICKS_WORKSPACE", "dbx-workspace")
databricks_resource_group = os.environ.get("AML_DATABRICKS_RESOURCE_GROUP", "dbx-rg")
databricks_access_token = os.environ.get("AML_DATABRICKS_ACCESS_TOKEN", "dapi-token")

try:
    databricks_compute = ComputeTarget(workspace=ws, name=databricks_compute_name)
    print('Compute target already exists')
except ComputeTargetException:
    print('compute not found')
    print('databricks_compute_name {}'.format(databricks_compute_name))
    print('databricks_workspace_name {}'.format(databricks_workspace_name))
    print('databricks_access_token {}'.format(databricks_access_token))

    # Create the attach config
    attach_config = DatabricksCompute.attach_configuration(resource_group = databricks_resource_group,
                                                           workspace_name = databricks_workspace_name,
                                                           access_token = databricks_access_token)
    databricks_compute = ComputeTarget.attach(
             ws,
             databricks_compute_name,
             attach_config
         )

    databricks_compute.wait_for_completion(True)
"""

ADLA = """
adla_compute_name = os.environ.get("AML_ADLA_COMPUTE_NAME", "adla-1")
adla_resource_group = os.environ.get("AML_ADLA_RESOURCE_GROUP", "adla-rg")
adla_account_name = os.environ.get("AML_ADLA_ACCOUNT_NAME", "adlaaccount")

try:
    adla_compute = ComputeTarget(workspace=ws, name=adla_compute_name)
    print('Compute target already exists')
except ComputeTargetException:
    print('compute not found')
    print('adla_compute_name {}'.format(adla_compute_name))
    print('adla_resource_id {}'.format(adla_resource_group))
    print('adla_account_name {}'.format(adla_account_name))

    # Create the attach config
    attach_config = AdlaCompute.attach_configuration(resource_group = adla_resource_group,
                                                     account_name = adla_account_name)
    # Attach the ADLA
    adla_compute = ComputeTarget.attach(
             ws,
             adla_compute_name,
             attach_config
         )

    adla_compute.wait_for_completion(True)
"""


def _script_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent("""
        from runyard.compat.azureml.core import Run
        run = Run.get_context()
        run.log("accuracy", 0.75)
    """))
    return folder


def test_local_user_managed_sample_runs(ws: Workspace, tmp_path: Path) -> None:
    from runyard.compat.azureml.core import Experiment, ScriptRunConfig

    ns = run_sample(LOCAL_USER_MANAGED)
    ns["run_config_system_managed"] = ns["run_config_user_managed"]
    ns.update(ScriptRunConfig=ScriptRunConfig, script_folder=str(_script_folder(tmp_path)),
              exp=Experiment(ws, "compat-local"))
    ns = run_sample(SUBMIT, **ns)
    assert ns["run"].get_status() == "Completed"
    assert ns["run"].get_metrics() == {"accuracy": 0.75}


def test_local_system_managed_sample_builds_and_runs(ws: Workspace, tmp_path: Path) -> None:
    from runyard.compat.azureml.core import Experiment, ScriptRunConfig

    folder = _script_folder(tmp_path)
    (folder / "train.py").write_text(textwrap.dedent("""
        import sklearn
        from runyard.compat.azureml.core import Run
        Run.get_context().log("sklearn", sklearn.__version__)
    """))
    ns = run_sample(LOCAL_SYSTEM_MANAGED)
    ns.update(ScriptRunConfig=ScriptRunConfig, script_folder=str(folder),
              exp=Experiment(ws, "compat-system"))
    ns = run_sample(SUBMIT, **ns)
    run = ns["run"]
    assert run.get_status() == "Completed"
    assert run.get_metrics()["sklearn"][0].isdigit()
    assert "environment_key" in run.get_properties()


def test_run_based_amlcompute_sample_runs_on_a_cluster_made_for_it(ws: Workspace,
                                                                   tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from runyard.compat.azureml.core import Experiment, ScriptRunConfig
    from runyard.compute.cluster.ray import head as headmod

    ns = run_sample(AML_RUN_BASED, ws=ws)
    assert ns["run_config"].amlcompute.vm_size == "STANDARD_D2_V2"
    cfg = ScriptRunConfig(str(_script_folder(tmp_path)), "train.py",
                          run_config=ns["run_config"])
    run = Experiment(ws, "compat-aml").submit(cfg)
    name = run.get_details()["target"]
    hs = ws.get_target(name).head_state()  # type: ignore[attr-defined]
    try:
        assert run.wait_for_completion(timeout=180)["status"] == "Completed"
        assert name not in ws.compute_targets  # the cluster went with its run
    finally:
        if name in ws.compute_targets:
            ws.get_target(name).delete(force=True)
        headmod.stop_processes(hs.uid, hs.sid)


@pytest.mark.parametrize("sample", [AML_PERSISTENT_BASIC, AML_PERSISTENT_ADVANCED],
                         ids=["basic", "advanced"])
def test_persistent_amlcompute_samples_create_a_ray_cluster(ws: Workspace,
                                                            sample: str) -> None:
    pytest.importorskip("ray")
    from runyard.computetarget import ClusterCompute

    try:
        ns = run_sample(sample, ws=ws)
        cluster = ns["cpu_cluster"]
        assert isinstance(cluster, ClusterCompute)
        st = cluster.get_status()
        assert st.provisioning_state == "Succeeded", st.errors
        assert cluster.config["vm_size"] == "STANDARD_D2_V2" and cluster.config["max_nodes"] == 4
        if sample is AML_PERSISTENT_ADVANCED:
            assert cluster.config["vm_priority"] == "lowpriority"
            assert cluster.config["idle_seconds_before_scaledown"] == 300
        again = run_sample(sample, ws=ws)  # the sample's lookup finds it now
        assert again["cpu_cluster"].name == "cpucluster"
    finally:
        for rec in ws.store.list_compute_targets():
            ws.get_target(rec.name).delete(force=True)
    assert ws.store.list_compute_targets() == []


@pytest.fixture(scope="module")
def ssh_host() -> Iterator[Any]:
    """The test SSH host of tests/integration/sshhost.py (a network namespace)."""
    from sshhost import missing_tools, start_host, stop_host

    from runyard.compute.remote.ssh.connection import POOL

    if missing_tools():
        pytest.fail(f"the remote-VM sample needs {', '.join(missing_tools())} (scripts/test "
                    "installs openssh-server)", pytrace=False)
    host = start_host()
    try:
        yield host
    finally:
        POOL.close_all()
        stop_host(host)


def test_remote_vm_sample_attaches_the_test_host(ws: Workspace, ssh_host: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from runyard.compat.azureml.core import Experiment, ScriptRunConfig
    from runyard.compat.azureml.core.compute_target import ComputeTargetException

    home = tmp_path / "home"  # ~/.ssh/known_hosts, as the sample relies on, knows the host
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(ssh_host.known_hosts.read_text())
    monkeypatch.setenv("HOME", str(home))
    sample = (REMOTE_ATTACH.replace('"ipaddress"', repr(ssh_host.address))
              .replace("ssh_port=22,", f"ssh_port={ssh_host.port},", 1)
              .replace("'username'", repr(ssh_host.username))
              .replace('"password"', repr(ssh_host.password)))
    ns = run_sample(sample, ws=ws)
    assert "attach-dsvm: Succeeded" in capsys.readouterr().out
    compute = ns["compute"]
    assert compute.config["host_key"] == ssh_host.host_key_line
    rc = ns["attach_config"]
    folder = tmp_path / "remote-scripts"  # the host has the runtime bundle (runyard.Run)
    folder.mkdir()
    (folder / "train.py").write_text("from runyard import Run\n"
                                     "Run.get_context().log('accuracy', 0.75)\n")
    cfg = ScriptRunConfig(str(folder), "train.py", compute_target="attach-dsvm")
    run = Experiment(ws, "compat-remote").submit(cfg)
    assert run.wait_for_completion()["status"] == "Completed"
    assert run.get_metrics() == {"accuracy": 0.75}
    assert "password" not in repr(rc) or "***" in repr(rc)
    bad = sample.replace(repr(ssh_host.password), "'wrong-password'").replace(
        "attach-dsvm", "attach-bad")
    with pytest.raises(ComputeTargetException, match="wrong password"):
        run_sample(bad, ws=ws)
    assert [r.name for r in ws.store.list_compute_targets()] == ["attach-dsvm"]


@pytest.mark.parametrize(("sample", "cls", "missing"), [
    (DATABRICKS, "DatabricksCompute", "databricks"), (ADLA, "AdlaCompute", "sql kind")])
def test_pipeline_only_kind_samples_raise_not_supported(ws: Workspace, sample: str, cls: str,
                                                        missing: str) -> None:
    from runyard.compat.azureml.core import compute
    from runyard.compat.azureml.core.compute_target import ComputeTargetException

    with pytest.raises(NotSupported, match=missing):
        run_sample(sample, ws=ws, ComputeTarget=compute.ComputeTarget,
                   ComputeTargetException=ComputeTargetException, **{cls: getattr(compute, cls)})


def test_module_tree_mirrors_azureml() -> None:
    import runyard
    from runyard.compat.azureml.core import (
        ComputeTarget,
        Environment,
        Experiment,
        Run,
        RunConfiguration,
        ScriptRunConfig,
        Workspace,
    )
    from runyard.compat.azureml.core.compute import (
        AdlaCompute,
        AmlCompute,
        DatabricksCompute,
        HDInsightCompute,
        RemoteCompute,
    )
    from runyard.compat.azureml.core.runconfig import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE

    assert Experiment is runyard.Experiment and Run is runyard.Run
    assert ScriptRunConfig is runyard.ScriptRunConfig
    assert RunConfiguration is runyard.RunConfiguration and Environment is runyard.Environment
    assert issubclass(Workspace, runyard.Workspace)
    assert DEFAULT_CPU_IMAGE.endswith("base:0.2.4") and "gpu" in DEFAULT_GPU_IMAGE
    assert issubclass(AmlCompute, ComputeTarget) and issubclass(RemoteCompute, ComputeTarget)
    for cls in (AdlaCompute, DatabricksCompute, HDInsightCompute):
        with pytest.raises(NotSupported, match="does not include"):
            cls.attach_configuration()
    from runyard.compat.azureml.pipeline import core as pipeline_core
    from runyard.compat.azureml.train import hyperdrive

    with pytest.raises(NotSupported, match="pipelines"):
        _ = pipeline_core.Pipeline
    from runyard.sweeps import HyperDriveConfig  # sweeps have landed: the same class

    assert hyperdrive.HyperDriveConfig is HyperDriveConfig


def test_azure_workspace_constructor_and_ignored_arguments(ws: Workspace,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    from runyard.compat.azureml.core import Workspace as AzWorkspace

    monkeypatch.chdir(tmp_path)
    opened = AzWorkspace("sub-id", "my-rg", "compat", auth=object())
    assert opened == ws and opened.subscription_id == "sub-id"
    assert opened.resource_group == "my-rg"
    created = AzWorkspace.create("other", path=tmp_path / "o", subscription_id="s",
                                 resource_group="r", location="westeurope")
    assert created.name == "other"
    cfg = (tmp_path / "o" / ".runyard" / "config.json").read_text()
    import json

    stored = json.loads(cfg)  # the Azure identity is stored (issue 11: ws.location, ...)
    assert (stored["subscription_id"], stored["resource_group"], stored["location"]) == (
        "s", "r", "westeurope")
    assert (created.subscription_id, created.location) == ("s", "westeurope")
    from runyard.errors import NotFound

    with pytest.raises(NotFound, match="not 'elsewhere'"):
        AzWorkspace("s", "r", "elsewhere")


def test_script_with_compat_imports_runs_directly(tmp_path: Path) -> None:
    script = _script_folder(tmp_path) / "train.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    out = subprocess.run([sys.executable, str(script)], env={**env, "PYTHONPATH": SRC},
                         capture_output=True, text=True, check=True)
    assert "accuracy = 0.75" in out.stdout
