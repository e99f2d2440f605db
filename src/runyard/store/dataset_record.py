"""``DatasetRecord``: one registered version of a dataset (a row of the ``datasets`` table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DatasetFile:
    """One file a dataset version resolved to: where it is and which bytes it held."""

    datastore: str
    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """The entry as stored (``{"datastore", "path", "size", "sha256"}``)."""
        return {"datastore": self.datastore, "path": self.path, "size": self.size,
                "sha256": self.sha256}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DatasetFile:
        """The inverse of :meth:`to_json`."""
        return cls(str(d["datastore"]), str(d["path"]), int(d["size"]), str(d["sha256"]))


@dataclass(frozen=True)
class DatasetRecord:
    """A registered dataset version: ``kind`` (``file`` or ``tabular``), the ``definition``
    (datastore paths/globs and parse options) and the ``files`` it resolved to."""

    name: str
    version: int
    kind: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)
    files: tuple[DatasetFile, ...] = ()
    total_size: int = 0
    created_at: float = 0.0

    @property
    def id(self) -> str:
        """``<name>:<version>``."""
        return f"{self.name}:{self.version}"
