"""The ``remote`` kind: any SSH-reachable Linux host (Azure ML ``RemoteCompute``).

``config`` holds the attach configuration and its checks, ``kind`` the contract implementation
(``RemoteKind``), ``ssh/`` the connection pool, host-key policy, host agent and sync. The
user-facing class is ``runyard.computetarget.RemoteCompute``.
"""

from __future__ import annotations

from typing import Any

from runyard.compute.remote.config import RemoteAttachConfiguration
from runyard.compute.remote.kind import RemoteHandle, RemoteKind, require_ssh

__all__ = ["RemoteAttachConfiguration", "RemoteHandle", "RemoteKind", "require_ssh"]


def __getattr__(name: str) -> Any:
    """``RemoteCompute`` moved to ``runyard.computetarget`` (this name is a deprecated alias)."""
    from runyard.compute.moved import moved_name  # noqa: PLC0415

    return moved_name(__name__, name, ("RemoteCompute",))
