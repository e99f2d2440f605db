"""Folder datastores: the runyard-managed ``workspaceblobstore`` (a folder under the
workspace data dir) and registered local folders (``Datastore.register_local_folder``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from runyard.datastores.base import DatastoreBackend, RemoteEntry, sha256_file
from runyard.errors import InvalidParameter

__all__ = ["FolderBackend", "check_folder"]


def check_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` resolved, or :class:`InvalidParameter` (``path``) when it is no readable folder."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = p.resolve()
    if not p.is_dir():
        raise InvalidParameter("path", f"{p} is not an existing folder; create it or give the "
                               "path of an existing folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise InvalidParameter("path", f"{p} is not readable by this user; fix its permissions")
    return p.resolve()


class FolderBackend(DatastoreBackend):
    """Files in a folder on this machine (names are paths relative to it)."""

    workers = 4

    def __init__(self, name: str, root: Path) -> None:
        super().__init__(name)
        self.root = root

    def describe(self) -> str:
        return f"datastore {self.name!r} ({self.root})"

    def _path(self, name: str) -> Path:
        p = self.root / name
        real = p.resolve()
        if not real.is_relative_to(self.root.resolve()):
            raise InvalidParameter("target_path", f"{name!r} resolves to {real}, outside the "
                                   f"datastore folder {self.root} (a symbolic link); remove it")
        return p

    def listing(self, prefix: str) -> dict[str, RemoteEntry]:
        base = self._path(prefix) if prefix else self.root
        out: dict[str, RemoteEntry] = {}
        if base.is_file():
            return {prefix: RemoteEntry(base.stat().st_size)}
        if not base.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(base):
            for fn in files:
                p = Path(dirpath) / fn
                if fn.endswith(".part") and fn.startswith("."):
                    continue
                out[p.relative_to(self.root).as_posix()] = RemoteEntry(p.stat().st_size)
        return out

    def remote_sha256(self, name: str) -> str:
        return sha256_file(self._path(name))

    def put(self, local: Path, name: str, sha256: str) -> None:
        dest = self._path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(local, tmp)
        os.replace(tmp, dest)

    def get(self, name: str, local: Path) -> None:
        shutil.copyfile(self._path(name), local)
