"""Configuration of the ``cluster`` kind: ``ClusterProvisioningConfiguration``, the resources a
run asks of a node, and the checks of run-based creation (``target="amlcompute"``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runyard.compute.base import RUN_BASED_TAG
from runyard.compute.config import ComputeConfiguration, check_int
from runyard.compute.vmsizes import (
    VM_PRIORITIES,
    check_run_based,
    get_vm_size,
    request_of,
    requested_resources,
)
from runyard.errors import ComputeTargetInvalid

__all__ = ["RUN_BASED_TAG", "VM_PRIORITIES", "ClusterProvisioningConfiguration", "check_run_based",
           "request_of", "requested_resources"]

PROVIDERS = ("local", "azure", "aws", "gcp", "kubernetes")
#: How long a node that died unexpectedly counts as preempted / unusable.
DEAD_NODE_WINDOW_S = 120.0
#: How long ``submit`` waits for a cluster that is still being created.
READY_TIMEOUT_S = 180.0


@dataclass(repr=False)
class ClusterProvisioningConfiguration(ComputeConfiguration):
    """``vm_size``, ``vm_priority``, ``min_nodes``..``max_nodes``, idle scale-down, provider."""

    kind: ClassVar[str] = "cluster"
    secret_fields: ClassVar[tuple[str, ...]] = ("cluster_token",)
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
    #: Bearer token of the cluster's Ray API (generated; stored encrypted, never shown).
    cluster_token: Any = None

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
        if self.cluster_token is None:
            from runyard.secrets import Secret  # noqa: PLC0415

            self.cluster_token = Secret(secrets.token_urlsafe(24))
