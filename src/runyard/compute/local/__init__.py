"""The ``local`` kind: a detached process group on this machine."""

from __future__ import annotations

from typing import Any

from runyard.compute.config import LocalProvisioningConfiguration
from runyard.compute.local.kind import LocalHandle, LocalKind
from runyard.compute.procs import process_start_time, reap

__all__ = ["LocalHandle", "LocalKind", "LocalProvisioningConfiguration", "process_start_time",
           "reap"]


def __getattr__(name: str) -> Any:
    """``LocalTarget`` moved to ``runyard.computetarget`` (this name is a deprecated alias)."""
    from runyard.compute.moved import moved_name  # noqa: PLC0415

    return moved_name(__name__, name, ("LocalTarget",))
