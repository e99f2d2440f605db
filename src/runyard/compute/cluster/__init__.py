"""The ``cluster`` kind (managed compute): an autoscaling Ray cluster.

``config`` holds the provisioning configuration and run-based checks, ``kind`` the contract
implementation (``ClusterKind``), ``ray/`` the Ray head, autoscaler configs, REST client and
node files. The user-facing class is ``runyard.computetarget.ClusterCompute``.
"""

from __future__ import annotations

from typing import Any

from runyard.compute.cluster.config import (
    RUN_BASED_TAG,
    ClusterProvisioningConfiguration,
    check_run_based,
    requested_resources,
)
from runyard.compute.cluster.kind import ClusterHandle, ClusterKind

__all__ = ["RUN_BASED_TAG", "ClusterHandle", "ClusterKind", "ClusterProvisioningConfiguration",
           "check_run_based", "requested_resources"]


def __getattr__(name: str) -> Any:
    """``ClusterCompute`` moved to ``runyard.computetarget`` (this name is a deprecated alias)."""
    from runyard.compute.moved import moved_name  # noqa: PLC0415

    return moved_name(__name__, name, ("ClusterCompute",))
