"""``ModelRecord``: one registered version of a model (a row of the ``models`` table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its path under the model's root, its content blob, its size."""

    path: str
    blob: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The manifest entry as stored (``{"path", "blob", "size"}``)."""
        return {"path": self.path, "blob": self.blob, "size": self.size}


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version: metadata, lineage and its files' manifest.

    ``root`` is the basename of the registered file or folder; ``files`` lists the model's
    files relative to the folder that holds ``root`` (so a single file's path is ``root``).
    """

    name: str
    version: int
    description: str | None = None
    framework: str | None = None
    framework_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    experiment: str | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    root: str = ""
    files: tuple[ModelFile, ...] = ()
    total_size: int = 0
    created_at: float = 0.0

    @property
    def id(self) -> str:
        """``<name>:<version>`` (v1's model id)."""
        return f"{self.name}:{self.version}"
