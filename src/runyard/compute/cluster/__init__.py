"""The ``cluster`` kind (managed compute): an autoscaling Ray cluster.

``config`` holds the provisioning configuration and run-based checks, ``kind`` the contract
implementation (``ClusterKind``), ``ray/`` the Ray head, autoscaler configs, REST client and
node files. The user-facing class is ``runyard.computetarget.ClusterCompute``.
"""

from __future__ import annotations

from runyard.compute.cluster.config import (
    RUN_BASED_TAG,
    ClusterProvisioningConfiguration,
    check_run_based,
    requested_resources,
)
from runyard.compute.cluster.kind import ClusterHandle, ClusterKind

__all__ = ["RUN_BASED_TAG", "ClusterHandle", "ClusterKind", "ClusterProvisioningConfiguration",
           "check_run_based", "requested_resources"]
