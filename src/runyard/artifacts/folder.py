"""``FolderArtifactStore``: ``<root>/<run id>/artifacts/<name>`` on a local filesystem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from runyard.artifacts.base import ArtifactStore, check_name
from runyard.errors import InvalidParameter, NotFound


class FolderArtifactStore(ArtifactStore):
    """Artifacts as files under ``root`` (the workspace's ``runs`` folder)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def local_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id in (".", "..") or "\x00" in run_id:
            raise InvalidParameter("run_id", f"{run_id!r} is not a run id")
        return self.root / run_id / "artifacts"

    def _path(self, run_id: str, name: str) -> Path:
        base = self.local_dir(run_id)
        path = base / check_name(name)
        # confined again after resolving links: a link planted by a script cannot lead out
        real_base = os.path.realpath(base)
        if not os.path.realpath(path).startswith(real_base + os.sep):
            raise InvalidParameter("name", f"{name!r} leads outside the run's artifacts")
        return path

    def read(self, run_id: str, name: str, offset: int = 0, size: int = -1) -> bytes:
        try:
            with open(self._path(run_id, name), "rb") as fh:
                fh.seek(offset)
                return fh.read(size)
        except (FileNotFoundError, IsADirectoryError):
            return b""

    def size(self, run_id: str, name: str) -> int | None:
        try:
            path = self._path(run_id, name)
            return path.stat().st_size if path.is_file() else None
        except FileNotFoundError:
            return None

    def write(self, run_id: str, name: str, data: bytes | BinaryIO) -> int:
        dest = self._path(run_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                shutil.copyfileobj(data, fh)
        return dest.stat().st_size

    def append(self, run_id: str, name: str, data: bytes) -> int:
        dest = self._path(run_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, data)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def put_file(self, run_id: str, name: str, source: Path) -> int:
        dest = self._path(run_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(source).resolve() != dest.resolve():
            shutil.copyfile(source, dest)
        return dest.stat().st_size

    def get_file(self, run_id: str, name: str, dest: Path) -> Path:
        src = self._path(run_id, name)
        if not src.is_file():
            raise NotFound(f"run {run_id} has no file {name!r}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest
