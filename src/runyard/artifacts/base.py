"""The ``ArtifactStore`` interface: where a run's files live, addressed by (run id, name).

Names are relative posix paths inside the run (``outputs/model.pkl``); they are confined here
(no absolute paths, no ``..``) whatever wrote them. A folder implementation exists now; an
object-store one plugs in behind the same methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from runyard.errors import InvalidParameter


def check_name(name: str) -> str:
    """``name`` as a clean relative posix path, or ``InvalidParameter``."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise InvalidParameter("name", "an artifact name must be a non-empty relative path")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise InvalidParameter("name", f"{name!r} must be a relative path inside the run (no "
                               "leading '/', no '..')")
    return str(p)


class ArtifactStore(ABC):
    """Files of runs."""

    @abstractmethod
    def read(self, run_id: str, name: str, offset: int = 0, size: int = -1) -> bytes:
        """Bytes of ``name`` from ``offset`` (``size`` -1: to the end); b'' when absent."""

    @abstractmethod
    def size(self, run_id: str, name: str) -> int | None:
        """Size of ``name`` in bytes, None when absent."""

    @abstractmethod
    def write(self, run_id: str, name: str, data: bytes | BinaryIO) -> int:
        """Store ``name`` (replacing it); returns its size."""

    @abstractmethod
    def append(self, run_id: str, name: str, data: bytes) -> int:
        """Add ``data`` at the end of ``name`` (created when absent); returns its new size."""

    @abstractmethod
    def put_file(self, run_id: str, name: str, source: Path) -> int:
        """Copy a local file in as ``name``; returns its size."""

    @abstractmethod
    def get_file(self, run_id: str, name: str, dest: Path) -> Path:
        """Copy ``name`` to the local file ``dest``."""

    @abstractmethod
    def local_dir(self, run_id: str) -> Path | None:
        """A local folder holding the run's artifacts that targets may write in place (None
        for stores that are not a local folder)."""
