"""System-managed environments: specs, hashing, the conda-to-PyPI table, registration.

The builders themselves run next to the user's script and live in
:mod:`runyard.runtime.envbuild` (standard library only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runyard.environments.conda_dependencies import CondaDependencies

__all__ = ["CondaDependencies", "local_cache_dir"]


def local_cache_dir(workspace: Any) -> Path:
    """The environment cache of the local target: ``<workspace>/.runyard/envs`` (a
    ``Workspace`` or a ``WorkspaceContext``)."""
    return Path(workspace.data_dir) / "envs"
