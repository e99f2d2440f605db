"""System-managed environments: specs, hashing, the conda-to-PyPI table, registration.

The builders themselves run next to the user's script and live in
:mod:`runyard.runtime.envbuild` (standard library only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runyard.environments.conda_dependencies import CondaDependencies

if TYPE_CHECKING:
    from runyard.workspace import Workspace

__all__ = ["CondaDependencies", "local_cache_dir"]


def local_cache_dir(ws: Workspace) -> Path:
    """The environment cache of the local target: ``<workspace>/.runyard/envs``."""
    return ws.data_dir / "envs"
