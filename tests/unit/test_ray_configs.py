"""Ray configs generated from cluster provisioning configurations, checked with Ray's own code.

Cloud launcher configs go through ``ray.autoscaler._private.util.prepare_config`` (Ray's
defaults merged in, then ``validate_config`` with Ray's ``ray-schema.json``); KubeRay manifests
go through KubeRay's own RayCluster -> autoscaler-config conversion, then the same schema. Also:
the bad-input errors of clusters and of runs that ask more than a node has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runyard.compute.cluster import (
    ClusterKind,
    ClusterProvisioningConfiguration,
    check_run_based,
    requested_resources,
)
from runyard.compute.cluster.ray import configs
from runyard.compute.vmsizes import get_vm_size
from runyard.computetarget import ClusterCompute
from runyard.errors import ComputeTargetInvalid, InvalidParameter
from runyard.runconfig import (
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    ScriptRunConfig,
)
from runyard.runtime.clusteragent import decode_spec, encode_spec, node_run_id, rank_env

ray = pytest.importorskip("ray")


def cfg(**kw: Any) -> ClusterProvisioningConfiguration:
    base: dict[str, Any] = {"vm_size": "STANDARD_D2_V2", "max_nodes": 4}
    base.update(kw)
    return ClusterCompute.provisioning_configuration(**base)


def worker(full: dict[str, Any]) -> dict[str, Any]:
    head = full["head_node_type"]
    (name,) = [n for n in full["available_node_types"] if n != head]
    node: dict[str, Any] = full["available_node_types"][name]
    return node


# -- cloud launcher configs ----------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["azure", "aws", "gcp"])
@pytest.mark.parametrize("priority", ["dedicated", "lowpriority"])
def test_launcher_configs_pass_rays_schema(provider: str, priority: str) -> None:
    c = cfg(provider=provider, vm_priority=priority, min_nodes=1, max_nodes=3,
            idle_seconds_before_scaledown=300, tags={"team": "vision"})
    raw = configs.launcher_config(c, "cpu-cluster")
    full = configs.validate_launcher_config(raw)
    assert full["cluster_name"] == "runyard-cpu-cluster"
    assert full["max_workers"] == 3 and full["idle_timeout_minutes"] == 5.0
    w = worker(full)
    assert (w["min_workers"], w["max_workers"]) == (1, 3)
    assert w["resources"]["CPU"] == 2 and w["resources"]["memory"] == 7 * 1024 ** 3
    node = json.dumps(w["node_config"])
    spot = {"azure": '"priority": "Spot"', "aws": '"MarketType": "spot"',
            "gcp": '"provisioningModel": "SPOT"'}[provider]
    assert (spot in node) == (priority == "lowpriority")
    assert not any("ray stop" in cmd for cmd in full["head_start_ray_commands"]
                   + full["worker_start_ray_commands"])


def test_vm_size_becomes_the_instance_type() -> None:
    azure = configs.launcher_config(cfg(provider="azure", vm_size="standard_nc6s_v3"), "g")
    assert worker(azure)["node_config"]["azure_arm_parameters"]["vmSize"] == "Standard_NC6s_v3"
    assert worker(azure)["resources"]["GPU"] == 1
    aws = configs.launcher_config(cfg(provider="aws", vm_size="STANDARD_D4_V2"), "g")
    assert worker(aws)["node_config"]["InstanceType"] == "m5.2xlarge"
    gcp = configs.launcher_config(cfg(provider="gcp", vm_size="STANDARD_NC6"), "g")
    node = worker(gcp)["node_config"]
    assert node["machineType"].startswith("n1-")
    assert node["guestAccelerators"] == [{"acceleratorType": "nvidia-tesla-t4",
                                          "acceleratorCount": 1}]
    assert configs.azure_vm_size(get_vm_size("STANDARD_DS3_V2")) == "Standard_DS3_v2"
    assert configs.azure_vm_size(get_vm_size("STANDARD_D2S_V3")) == "Standard_D2s_v3"
    assert configs.aws_instance_type(get_vm_size("STANDARD_NC24")) == "p3.8xlarge"


def test_azure_vnet_settings_reach_the_config() -> None:
    c = cfg(provider="azure", vnet_resourcegroup_name="net-rg", vnet_name="vnet1",
            subnet_name="sub1")
    prov = configs.launcher_config(c, "x")["provider"]
    assert prov["resource_group"] == "net-rg"
    assert prov["subnet_id"].endswith("/resourceGroups/net-rg/providers/Microsoft.Network/"
                                      "virtualNetworks/vnet1/subnets/sub1")


def test_kuberay_manifest_passes_kuberays_conversion_and_rays_schema() -> None:
    c = cfg(provider="kubernetes", vm_size="STANDARD_NC6", vm_priority="lowpriority",
            min_nodes=0, max_nodes=5, idle_seconds_before_scaledown=90)
    manifest = configs.kuberay_manifest(c, "gpu-pool")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    derived = configs.validate_kuberay_manifest(manifest)
    assert derived["idle_timeout_minutes"] == 1.5
    (group,) = manifest["spec"]["workerGroupSpecs"]
    node = derived["available_node_types"][group["groupName"]]
    assert (node["min_workers"], node["max_workers"]) == (0, 5)
    assert node["resources"]["CPU"] == 6 and node["resources"]["GPU"] == 1
    pod = group["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.azure.com/scalesetpriority": "spot"}
    assert ClusterCompute.cluster_config(c, "gpu-pool") == manifest


def test_local_config_is_complete_and_valid() -> None:
    c = cfg(vm_size="local-2cpu", min_nodes=1, max_nodes=2, idle_seconds_before_scaledown=6)
    raw = configs.local_config(c, "lc", "127.0.0.1:6399", "/tmp/nodes.json")
    assert configs.validate_launcher_config(raw) is raw
    assert raw["provider"]["type"] == "external"
    assert raw["provider"]["module"] == configs.LOCAL_PROVIDER_MODULE
    assert raw["provider"]["gcs_address"] == "127.0.0.1:6399"
    w = worker(raw)
    assert w["resources"] == {"CPU": 2, "memory": 2 * 1024 ** 3,
                              "object_store_memory": configs.LOCAL_OBJECT_STORE_BYTES}
    assert raw["idle_timeout_minutes"] == 0.1


# -- bad input -----------------------------------------------------------------------------------
def test_unknown_vm_size_lists_the_closest() -> None:
    with pytest.raises(ComputeTargetInvalid, match="closest: STANDARD_D2_V2"):
        cfg(vm_size="STANDARD_D2_V9")


def test_max_below_min_is_refused() -> None:
    with pytest.raises(ComputeTargetInvalid, match=r"min_nodes \(3\) is above max_nodes \(2\)"):
        cfg(min_nodes=3, max_nodes=2)


def test_cloud_provider_is_refused_before_anything_is_stored() -> None:
    from runyard.errors import ComputeTargetNotSupported

    with pytest.raises(ComputeTargetNotSupported, match="credentials"):
        ClusterKind.preflight(cfg(provider="gcp"))


def test_requests_beyond_the_vm_size() -> None:
    size = get_vm_size("local-1cpu")
    assert requested_resources(size, {}) == {"CPU": 1.0}
    assert requested_resources(size, {"cpu": 0.5, "memory_gb": 0.5}) == {
        "CPU": 0.5, "memory": float(512 * 1024 ** 2)}
    with pytest.raises(InvalidParameter, match="asks for 2 CPUs per node, but a local-1cpu"):
        requested_resources(size, {"cpu": 2})
    with pytest.raises(InvalidParameter, match="GPU vm_size"):
        requested_resources(size, {"gpu": 1})
    with pytest.raises(InvalidParameter, match="memory_gb"):
        requested_resources(size, {"memory_gb": 8})
    assert requested_resources(get_vm_size("STANDARD_NC12"), {"gpu": 1})["GPU"] == 1.0


def test_run_based_checks() -> None:
    rc = RunConfiguration()
    rc.target = "amlcompute"
    with pytest.raises(InvalidParameter, match="amlcompute.vm_size"):
        rc.validate()
    rc.amlcompute.vm_size = "STANDARD_D2_V9"
    with pytest.raises(InvalidParameter, match="closest"):
        rc.validate()
    rc.amlcompute.vm_size = "STANDARD_D2_V2"
    rc.node_count = 2
    with pytest.raises(InvalidParameter, match="_cluster_max_node_count"):
        check_run_based(rc)
    rc.amlcompute._cluster_max_node_count = 2
    rc.resources.cpu = 3
    with pytest.raises(InvalidParameter, match="3 CPUs"):
        rc.validate()
    rc.resources.cpu = 2
    rc.validate()


def test_distributed_job_configs_set_nodes_and_processes(tmp_path: Path) -> None:
    src = ScriptRunConfig(tmp_path, "t.py", distributed_job_config=MpiConfiguration(
        process_count_per_node=2, node_count=3))
    rc = src.effective_run_config()
    assert (rc.node_count, rc.mpi.process_count_per_node) == (3, 2)
    src = ScriptRunConfig(tmp_path, "t.py", distributed_job_config=PyTorchConfiguration(
        process_count=8, node_count=2))
    rc = src.effective_run_config()
    assert (rc.node_count, rc.mpi.process_count_per_node) == (2, 4)
    with pytest.raises(InvalidParameter, match="multiple"):
        ScriptRunConfig(tmp_path, "t.py", distributed_job_config=PyTorchConfiguration(
            process_count=3, node_count=2))
    back = RunConfiguration.from_dict(rc.to_dict())
    assert back.to_dict() == rc.to_dict()


def test_rank_environment_and_spec_round_trip(tmp_path: Path) -> None:
    env = rank_env(1, ["10.0.0.1", "10.0.0.2"], 2, ("10.0.0.1", 29500), tmp_path)
    assert env["RANK"] == "2" and env["WORLD_SIZE"] == "4" and env["NODE_RANK"] == "1"
    assert env["LOCAL_RANK"] == "0" and env["LOCAL_WORLD_SIZE"] == "2"
    assert env["MASTER_ADDR"] == "10.0.0.1" and env["MASTER_PORT"] == "29500"
    assert env["AZ_BATCH_HOST_LIST"] == "10.0.0.1,10.0.0.2"
    assert Path(env["RUNYARD_HOSTFILE"]).read_text() == ("10.0.0.1 slots=2\n"
                                                         "10.0.0.2 slots=2\n")
    spec = {"run_id": "r_1", "attempt": 2, "command": ["python", "a b.py"]}
    assert decode_spec(encode_spec(spec)) == spec
    assert node_run_id(spec, 0) == "r_1" and node_run_id(spec, 1) == "r_1_a2_node1"
