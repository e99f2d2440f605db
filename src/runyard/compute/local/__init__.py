"""The ``local`` kind: a detached process group on this machine."""

from __future__ import annotations

from runyard.compute.config import LocalProvisioningConfiguration
from runyard.compute.local.kind import LocalHandle, LocalKind
from runyard.compute.procs import process_start_time, reap

__all__ = ["LocalHandle", "LocalKind", "LocalProvisioningConfiguration", "process_start_time",
           "reap"]
