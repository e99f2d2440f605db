"""The client seam: the SDK talks to a workspace only through a ``WorkspaceClient``.

``LocalClient`` calls the services in-process (embedded workspaces); a REST client (team
server) implements the same protocol over HTTP, so the SDK does not change.
"""

from __future__ import annotations

from runyard.client.base import WorkspaceClient
from runyard.client.local import LocalClient

__all__ = ["LocalClient", "WorkspaceClient"]
