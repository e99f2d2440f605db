"""Ray cluster configs generated from one ``ClusterProvisioningConfiguration``.

* ``local``: a Ray cluster-launcher config for Ray's autoscaler with the fake multi-node
  provider (our subclass, :mod:`runyard.compute.cluster.ray.local_provider`), written whole
  because the Ray wheel ships no ``example.yaml`` for it.
* ``azure``, ``aws``, ``gcp``: Ray cluster-launcher configs (``ray up``) where ``vm_size`` becomes
  the cloud's instance type and ``lowpriority`` becomes spot / preemptible capacity.
* ``kubernetes``: a KubeRay ``RayCluster`` manifest with in-tree autoscaling.

The generators are plain functions of the configuration (no Ray import);
:func:`validate_launcher_config` and :func:`validate_kuberay_manifest` check the results with
Ray's own schema and code (they import Ray lazily).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runyard.compute.vmsizes import VM_SIZES, VmSize, get_vm_size
from runyard.errors import ComputeTargetInvalid

if TYPE_CHECKING:
    from runyard.compute.cluster.config import ClusterProvisioningConfiguration

HEAD_TYPE = "ray.head.default"
#: Object store of a local node: small (it is shared memory on the one machine).
LOCAL_OBJECT_STORE_BYTES = 100 * 1024 * 1024
RAY_IMAGE = "rayproject/ray:2.60.0-py311"
LOCAL_PROVIDER_MODULE = "runyard.compute.cluster.ray.local_provider.LocalNodeProvider"
#: Commands that bring a fresh cloud VM up; no ``ray stop``: each VM runs only its own Ray.
_SETUP = ['python3 -m pip install -q "ray[default]>=2.9"']
_HEAD_START = ["ulimit -n 65536; ray start --head --port=6379 --num-cpus=0 "
               "--autoscaling-config=~/ray_bootstrap_config.yaml --dashboard-host=0.0.0.0"]
_WORKER_START = ["ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379"]

#: Sections every launcher config carries (Ray's validator insists on some of them).
_BOILERPLATE: dict[str, Any] = {
    "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
    "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
    "worker_setup_commands": [], "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
}


@dataclass(frozen=True)
class InstanceType:
    """One cloud instance type."""

    name: str
    vcpus: int
    memory_gb: float
    gpus: int = 0
    accelerator: str | None = None


AWS_TYPES = (
    InstanceType("t3.small", 2, 2), InstanceType("t3.medium", 2, 4),
    InstanceType("m5.large", 2, 8), InstanceType("c5.xlarge", 4, 8),
    InstanceType("m5.xlarge", 4, 16), InstanceType("r5.large", 2, 16),
    InstanceType("r5.xlarge", 4, 32), InstanceType("m5.2xlarge", 8, 32),
    InstanceType("r5.2xlarge", 8, 64), InstanceType("m5.4xlarge", 16, 64),
    InstanceType("r5.4xlarge", 16, 128), InstanceType("m5.8xlarge", 32, 128),
    InstanceType("r5.8xlarge", 32, 256), InstanceType("r5.16xlarge", 64, 512),
    InstanceType("g4dn.xlarge", 4, 16, 1), InstanceType("g4dn.4xlarge", 16, 64, 1),
    InstanceType("g4dn.8xlarge", 32, 128, 1), InstanceType("p3.2xlarge", 8, 61, 1),
    InstanceType("g4dn.12xlarge", 48, 192, 4), InstanceType("p3.8xlarge", 32, 244, 4),
    InstanceType("p3.16xlarge", 64, 488, 8),
)
GCP_TYPES = (
    InstanceType("e2-small", 2, 2), InstanceType("n1-standard-1", 1, 3.75),
    InstanceType("n1-standard-2", 2, 7.5), InstanceType("n1-standard-4", 4, 15),
    InstanceType("n1-highmem-2", 2, 13), InstanceType("n1-highmem-4", 4, 26),
    InstanceType("n1-standard-8", 8, 30), InstanceType("n1-highmem-8", 8, 52),
    InstanceType("n1-standard-16", 16, 60), InstanceType("n1-highmem-16", 16, 104),
    InstanceType("n1-standard-32", 32, 120), InstanceType("n1-highmem-32", 32, 208),
    InstanceType("n1-highmem-64", 64, 416),
)


def _cover(catalog: tuple[InstanceType, ...], size: VmSize) -> InstanceType:
    """The smallest instance type with at least the size's vCPUs and memory."""
    fits = [t for t in catalog if t.vcpus >= size.vcpus and t.memory_gb >= size.memory_gb * 0.85
            and t.gpus >= size.gpus]
    if not fits:
        raise ComputeTargetInvalid("vm_size", f"no instance type covers {size.name} "
                                   f"({size.vcpus} vCPUs, {size.memory_gb} GB, {size.gpus} GPUs)")
    return min(fits, key=lambda t: (t.gpus, t.vcpus, t.memory_gb))


def azure_vm_size(size: VmSize) -> str:
    """Azure's spelling of a size (``STANDARD_D2S_V3`` -> ``Standard_D2s_v3``)."""
    if size.family == "local":  # a local shape: the smallest Azure size that covers it
        azure = tuple(InstanceType(v.name, v.vcpus, v.memory_gb, v.gpus)
                      for v in VM_SIZES if v.family != "local")
        size = get_vm_size(_cover(azure, size).name)
    parts = size.name.split("_")[1:]
    core = parts[0]
    if re.fullmatch(r"[A-Z]+\d+S", core):
        core = core[:-1] + "s"
    rest = [p.lower() for p in parts[1:]]
    return "_".join(["Standard", core, *rest])


def aws_instance_type(size: VmSize) -> str:
    """The AWS instance type for a size (smallest that covers its shape)."""
    return _cover(AWS_TYPES, size).name


def gcp_machine(size: VmSize) -> tuple[str, int]:
    """(GCP machine type, number of T4 GPUs to attach) for a size."""
    cpu_only = VmSize(size.name, size.vcpus, size.memory_gb, 0, size.family)
    return _cover(GCP_TYPES, cpu_only).name, size.gpus


def node_type_name(config: ClusterProvisioningConfiguration) -> str:
    """The worker node type of a cluster (Ray node-type names allow these characters)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", config.vm_size.lower())
    return f"{base}-spot" if config.vm_priority == "lowpriority" else base


def node_resources(size: VmSize) -> dict[str, int]:
    """CPU, GPU and memory (bytes) of one node, as Ray resources."""
    out = {"CPU": size.vcpus, "memory": int(size.memory_gb * 1024 ** 3)}
    if size.gpus:
        out["GPU"] = size.gpus
    return out


def _common(config: ClusterProvisioningConfiguration, name: str) -> dict[str, Any]:
    assert config.max_nodes is not None
    return {
        "cluster_name": f"runyard-{name}",
        "max_workers": config.max_nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": round(config.idle_seconds_before_scaledown / 60.0, 4),
        **copy.deepcopy(_BOILERPLATE),
    }


def _worker(config: ClusterProvisioningConfiguration, node_config: dict[str, Any],
            resources: dict[str, Any]) -> dict[str, Any]:
    return {"min_workers": config.min_nodes, "max_workers": config.max_nodes,
            "resources": resources, "node_config": node_config}


# -- local ---------------------------------------------------------------------------------------
def local_config(config: ClusterProvisioningConfiguration, name: str, gcs_address: str,
                 nodes_file: str) -> dict[str, Any]:
    """The autoscaler config of a ``local`` cluster (nodes are raylets on this machine)."""
    size = get_vm_size(config.vm_size)
    resources: dict[str, Any] = {**node_resources(size),
                                 "object_store_memory": LOCAL_OBJECT_STORE_BYTES}
    out = _common(config, name)
    out["provider"] = {
        "type": "external", "module": LOCAL_PROVIDER_MODULE, "gcs_address": gcs_address,
        "use_node_id_as_ip": True, "disable_node_updaters": True,
        "disable_launch_config_check": True, "runyard_nodes_file": nodes_file,
        "launch_multiple": True,
    }
    out["auth"] = {}
    out["available_node_types"] = {
        HEAD_TYPE: {"resources": {}, "node_config": {}, "max_workers": 0},
        node_type_name(config): _worker(config, {}, resources),
    }
    out["head_node_type"] = HEAD_TYPE
    return out


# -- clouds --------------------------------------------------------------------------------------
def _cloud_nodes(out: dict[str, Any], config: ClusterProvisioningConfiguration, size: VmSize,
                 head: tuple[str, dict[str, Any]], worker_type: str,
                 worker: dict[str, Any]) -> dict[str, Any]:
    """Finish a cloud config: a CPU-less head, one worker type, Ray's start commands."""
    head_type, head_node_config = head
    out["available_node_types"] = {
        head_type: {"resources": {"CPU": 0}, "node_config": head_node_config},
        worker_type: _worker(config, worker, node_resources(size)),
    }
    out["head_node_type"] = head_type
    out["setup_commands"] = list(_SETUP)
    out["head_start_ray_commands"] = list(_HEAD_START)
    out["worker_start_ray_commands"] = list(_WORKER_START)
    return out


def azure_config(config: ClusterProvisioningConfiguration, name: str) -> dict[str, Any]:
    """A ``ray up`` config for Azure (VM scale of ``vm_size``; lowpriority -> Spot)."""
    size = get_vm_size(config.vm_size)
    out = _common(config, name)
    provider: dict[str, Any] = {
        "type": "azure", "location": "westus2",
        "resource_group": config.vnet_resourcegroup_name or f"runyard-{name}",
        "cache_stopped_nodes": False,
    }
    if config.tags:
        provider["tags"] = dict(config.tags)
    if config.vnet_name and config.subnet_name:
        subscription = os.environ.get("AZURE_SUBSCRIPTION_ID", "<subscription-id>")
        provider["subnet_id"] = (
            f"/subscriptions/{subscription}/resourceGroups/"
            f"{config.vnet_resourcegroup_name or provider['resource_group']}/providers/"
            f"Microsoft.Network/virtualNetworks/{config.vnet_name}/subnets/{config.subnet_name}")
    out["provider"] = provider
    out["auth"] = {"ssh_user": config.admin_username or "ubuntu",
                   "ssh_private_key": "~/.ssh/id_rsa", "ssh_public_key": "~/.ssh/id_rsa.pub"}
    image = {"imagePublisher": "microsoft-dsvm", "imageOffer": "ubuntu-2204",
             "imageSku": "2204-gen2", "imageVersion": "latest"}
    worker_arm: dict[str, Any] = {"vmSize": azure_vm_size(size), **image}
    if config.vm_priority == "lowpriority":
        worker_arm["priority"] = "Spot"
    return _cloud_nodes(out, config, size, (HEAD_TYPE, {"azure_arm_parameters": {
        "vmSize": "Standard_D2s_v3", **image}}), node_type_name(config),
        {"azure_arm_parameters": worker_arm})


def aws_config(config: ClusterProvisioningConfiguration, name: str) -> dict[str, Any]:
    """A ``ray up`` config for AWS EC2 (lowpriority -> spot instances)."""
    size = get_vm_size(config.vm_size)
    out = _common(config, name)
    out["provider"] = {"type": "aws", "region": "us-west-2", "cache_stopped_nodes": False}
    out["auth"] = {"ssh_user": config.admin_username or "ubuntu"}
    worker: dict[str, Any] = {"InstanceType": aws_instance_type(size)}
    if config.vm_priority == "lowpriority":
        worker["InstanceMarketOptions"] = {"MarketType": "spot"}
    if config.subnet_name:
        worker["SubnetIds"] = [config.subnet_name]
    if config.tags:
        worker["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [
            {"Key": k, "Value": v} for k, v in sorted(config.tags.items())]}]
    return _cloud_nodes(out, config, size, (HEAD_TYPE, {"InstanceType": "m5.large"}),
                        node_type_name(config), worker)


def gcp_config(config: ClusterProvisioningConfiguration, name: str) -> dict[str, Any]:
    """A ``ray up`` config for GCP (lowpriority -> SPOT provisioning)."""
    size = get_vm_size(config.vm_size)
    out = _common(config, name)
    out["provider"] = {"type": "gcp", "region": "us-west1", "availability_zone": "us-west1-a",
                       "project_id": os.environ.get("GOOGLE_CLOUD_PROJECT", "<project-id>")}
    out["auth"] = {"ssh_user": config.admin_username or "ubuntu"}
    disks = [{"boot": True, "autoDelete": True, "type": "PERSISTENT", "initializeParams": {
        "diskSizeGb": 50,
        "sourceImage": "projects/deeplearning-platform-release/global/images/family/common-cpu"}}]
    machine, gpus = gcp_machine(size)
    worker: dict[str, Any] = {"machineType": machine, "disks": copy.deepcopy(disks)}
    if gpus:
        worker["guestAccelerators"] = [{"acceleratorType": "nvidia-tesla-t4",
                                        "acceleratorCount": gpus}]
        worker["scheduling"] = [{"onHostMaintenance": "TERMINATE"}]
    if config.vm_priority == "lowpriority":
        worker["scheduling"] = [{"provisioningModel": "SPOT", "preemptible": True,
                                 "onHostMaintenance": "TERMINATE"}]
    if config.subnet_name:
        worker["networkInterfaces"] = [{"subnetwork": config.subnet_name}]
    if config.tags:
        worker["labels"] = {k.lower(): str(v).lower() for k, v in config.tags.items()}
    return _cloud_nodes(out, config, size, ("ray_head_default", {
        "machineType": "n1-standard-2", "disks": disks}),
        node_type_name(config).replace(".", "_"), worker)


def launcher_config(config: ClusterProvisioningConfiguration, name: str) -> dict[str, Any]:
    """The cluster-launcher config for the configuration's cloud provider."""
    makers = {"azure": azure_config, "aws": aws_config, "gcp": gcp_config}
    if config.provider not in makers:
        raise ComputeTargetInvalid("provider", f"{config.provider!r} has no cluster-launcher "
                                   f"config; one of {', '.join(makers)}")
    return makers[config.provider](config, name)


# -- KubeRay -------------------------------------------------------------------------------------
def kuberay_manifest(config: ClusterProvisioningConfiguration, name: str,
                     namespace: str = "default") -> dict[str, Any]:
    """A KubeRay ``RayCluster`` (ray.io/v1) with Ray's autoscaler in the head pod."""
    size = get_vm_size(config.vm_size)
    limits: dict[str, str] = {"cpu": str(size.vcpus), "memory": f"{int(size.memory_gb)}Gi"}
    if size.gpus:
        limits["nvidia.com/gpu"] = str(size.gpus)
    worker_pod: dict[str, Any] = {"containers": [{
        "name": "ray-worker", "image": RAY_IMAGE,
        "resources": {"limits": dict(limits), "requests": dict(limits)}}]}
    if config.vm_priority == "lowpriority":  # schedule workers on spot node pools
        worker_pod["tolerations"] = [{"key": "kubernetes.azure.com/scalesetpriority",
                                      "operator": "Equal", "value": "spot",
                                      "effect": "NoSchedule"}]
        worker_pod["nodeSelector"] = {"kubernetes.azure.com/scalesetpriority": "spot"}
    labels = {"app.kubernetes.io/managed-by": "runyard", **{
        k: str(v) for k, v in config.tags.items()}}
    head_limits = {"cpu": "1", "memory": "2Gi"}
    return {
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": f"runyard-{name}".lower(), "namespace": namespace,
                     "labels": labels},
        "spec": {
            "rayVersion": RAY_IMAGE.split(":")[1].split("-")[0],
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {"idleTimeoutSeconds": config.idle_seconds_before_scaledown,
                                  "upscalingMode": "Default"},
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                "template": {"spec": {"containers": [{
                    "name": "ray-head", "image": RAY_IMAGE,
                    "resources": {"limits": head_limits, "requests": head_limits},
                    "ports": [{"containerPort": 6379, "name": "gcs"},
                              {"containerPort": 8265, "name": "dashboard"}]}]}},
            },
            "workerGroupSpecs": [{
                "groupName": node_type_name(config), "replicas": config.min_nodes,
                "minReplicas": config.min_nodes, "maxReplicas": config.max_nodes,
                "rayStartParams": {}, "template": {"spec": worker_pod},
            }],
        },
    }


# -- validation with Ray's own schema ------------------------------------------------------------
def validate_launcher_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Ray's schema check of a launcher config; returns it with Ray's defaults filled in."""
    from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: PLC0415

    if cfg.get("provider", {}).get("type") == "external":
        validate_config(cfg)
        return cfg
    full: dict[str, Any] = prepare_config(copy.deepcopy(cfg))
    validate_config(full)
    return full


def validate_kuberay_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """Turn the manifest into an autoscaler config with KubeRay's own code, then validate it."""
    from ray.autoscaler._private.kuberay.autoscaling_config import (  # noqa: PLC0415
        _derive_autoscaling_config_from_ray_cr,
    )
    from ray.autoscaler._private.util import validate_config  # noqa: PLC0415

    derived: dict[str, Any] = _derive_autoscaling_config_from_ray_cr(copy.deepcopy(manifest))
    validate_config(derived)
    return derived
