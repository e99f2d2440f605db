"""What the SDK classes need of each other, as protocols (so their modules do not import one
another in a circle): a workspace has a name, a folder and a client; an experiment has a name
and a workspace. Also the tag/property filter shared by ``get_runs`` and ``get_children``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runyard.errors import InvalidParameter

if TYPE_CHECKING:
    from runyard.client.base import WorkspaceClient


class WorkspaceLike(Protocol):
    """The SDK ``Workspace`` as the other SDK classes use it."""

    name: str
    path: Path
    client: WorkspaceClient

    def _experiment(self, name: str) -> Any:
        """The SDK ``Experiment`` called ``name`` of this workspace."""
        ...

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run in the workspace."""
        ...


class ExperimentLike(Protocol):
    """The SDK ``Experiment`` as ``Run`` uses it."""

    name: str
    workspace: WorkspaceLike


def kv_filter(value: Any, field: str) -> dict[str, str | None] | None:
    """A tags/properties filter: a key, or a ``{key: value}`` dict (value None: any)."""
    if value is None:
        return None
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, dict):
        return {str(k): (None if v is None else str(v)) for k, v in value.items()}
    raise InvalidParameter(field, "give a key or a {key: value} dict")
