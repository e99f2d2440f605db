"""The ``remote`` kind: any SSH-reachable Linux host (Azure ML ``RemoteCompute``).

``config`` holds the attach configuration and its checks, ``kind`` the contract implementation
(``RemoteKind``), ``ssh/`` the connection pool, host-key policy, host agent and sync. The
user-facing class is ``runyard.computetarget.RemoteCompute``.
"""

from __future__ import annotations

from runyard.compute.remote.config import RemoteAttachConfiguration
from runyard.compute.remote.kind import RemoteHandle, RemoteKind, require_ssh

__all__ = ["RemoteAttachConfiguration", "RemoteHandle", "RemoteKind", "require_ssh"]
