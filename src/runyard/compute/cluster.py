"""The ``cluster`` kind (managed compute, Azure ML ``AmlCompute``): configuration and checks.

The cluster runs on Ray with Ray's own autoscaler; provisioning arrives with the managed-compute
issue. Until then creating one is refused with ``ComputeTargetNotSupported`` after the
configuration has been fully validated, so scripts get the same errors they will get later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from runyard.compute.base import ComputeTarget, JobEvents, JobSpec, TargetStatus
from runyard.compute.capabilities import CLUSTER
from runyard.compute.config import ComputeConfiguration, check_int
from runyard.compute.vmsizes import get_vm_size, supported_vmsizes
from runyard.errors import ComputeTargetInvalid, ComputeTargetNotSupported

VM_PRIORITIES = ("dedicated", "lowpriority")
PROVIDERS = ("local", "azure", "aws", "gcp", "kubernetes")
NOT_LANDED = ("the cluster kind runs on Ray with Ray's autoscaler, which this build does not "
              "include yet (managed-compute feature); use the 'local' target meanwhile")


@dataclass(repr=False)
class ClusterProvisioningConfiguration(ComputeConfiguration):
    """``vm_size``, ``vm_priority``, ``min_nodes``..``max_nodes``, idle scale-down, provider."""

    kind: ClassVar[str] = "cluster"
    vm_size: str = ""
    vm_priority: str = "dedicated"
    min_nodes: int = 0
    max_nodes: int | None = None
    idle_seconds_before_scaledown: int = 120
    provider: str = "local"
    vnet_resourcegroup_name: str | None = None
    vnet_name: str | None = None
    subnet_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    admin_username: str | None = None
    remote_login_port_public_access: str | None = None

    def validate(self) -> None:
        self.vm_size = get_vm_size(self.vm_size).name
        if self.vm_priority not in VM_PRIORITIES:
            raise ComputeTargetInvalid("vm_priority", f"{self.vm_priority!r} is not one of "
                                       f"{', '.join(VM_PRIORITIES)}")
        if self.max_nodes is None:
            raise ComputeTargetInvalid("max_nodes", "is required (the most nodes to scale to)")
        self.min_nodes = check_int("min_nodes", self.min_nodes, 0)
        self.max_nodes = check_int("max_nodes", self.max_nodes, 1)
        if self.min_nodes > self.max_nodes:
            raise ComputeTargetInvalid("min_nodes", f"min_nodes ({self.min_nodes}) is above "
                                       f"max_nodes ({self.max_nodes}); lower min_nodes or "
                                       "raise max_nodes")
        self.idle_seconds_before_scaledown = check_int(
            "idle_seconds_before_scaledown", self.idle_seconds_before_scaledown, 0)
        if self.provider not in PROVIDERS:
            raise ComputeTargetInvalid("provider", f"{self.provider!r} is not one of "
                                       f"{', '.join(PROVIDERS)}")


class ClusterCompute(ComputeTarget):
    """A managed, autoscaling cluster (Azure ML ``AmlCompute``)."""

    kind: ClassVar[str] = "cluster"
    capabilities = CLUSTER
    managed: ClassVar[bool] = True
    config_class: ClassVar[type[ComputeConfiguration]] = ClusterProvisioningConfiguration
    updatable: ClassVar[tuple[str, ...]] = ("min_nodes", "max_nodes",
                                            "idle_seconds_before_scaledown")

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> ClusterProvisioningConfiguration:
        """Validate and return a cluster configuration (see the class fields)."""
        return ClusterProvisioningConfiguration.build(**kwargs)

    @staticmethod
    def supported_vmsizes(workspace: Any = None, location: str | None = None) -> list[dict[str,
                                                                                         Any]]:
        """The VM sizes a cluster can use (name, vcpus, memory_gb, gpus, family)."""
        return supported_vmsizes()

    @classmethod
    def preflight(cls, config: ComputeConfiguration) -> None:
        raise ComputeTargetNotSupported(NOT_LANDED)

    def status(self) -> TargetStatus:
        rec = self.record
        return TargetStatus(rec.state if rec else "Unknown", list(rec.errors) if rec else [])

    def submit(self, job: JobSpec) -> dict[str, Any]:
        raise ComputeTargetNotSupported(NOT_LANDED)

    def poll(self, handle: dict[str, Any], offsets: dict[str, int]) -> JobEvents:
        raise ComputeTargetNotSupported(NOT_LANDED)

    def cancel(self, handle: dict[str, Any]) -> None:
        raise ComputeTargetNotSupported(NOT_LANDED)
