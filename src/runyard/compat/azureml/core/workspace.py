"""``azureml.core.workspace``: the Azure constructor mapped onto a runyard workspace."""

from __future__ import annotations

import os
from typing import Any

from runyard.errors import NotFound
from runyard.workspace import Workspace as _Workspace


class Workspace(_Workspace):
    """``Workspace(subscription_id, resource_group, workspace_name)`` opens the runyard workspace
    found from the current folder upwards (``.runyard/config.json``) and checks its name.

    ``subscription_id``, ``resource_group``, ``auth`` and the other Azure-only arguments are
    kept as attributes and otherwise ignored. ``create``, ``get`` and ``from_config`` are
    runyard's own.
    """

    def __init__(self, subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: Any = None, _location: Any = None,
                 _disable_service_check: bool = False, _workspace_id: Any = None,
                 sku: str = "basic", tags: Any = None, _cloud: str = "AzureCloud",
                 path: str | os.PathLike[str] | None = None) -> None:
        found = _Workspace.from_config(path)
        if workspace_name is not None and found.name != workspace_name:
            raise NotFound(f"the workspace found from {os.getcwd()} is {found.name!r}, "
                           f"not {workspace_name!r}")
        _Workspace.__init__(self, found.name, found.path, config=found._config)
        self.subscription_id = subscription_id
        self.resource_group = resource_group


__all__ = ["Workspace"]
