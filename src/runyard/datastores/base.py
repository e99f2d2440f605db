"""What every datastore kind shares: safe relative paths, content hashes, and the upload and
download loops (skip-unchanged by size and sha256, a thread pool, progress on a TTY).

A kind implements four primitives on POSIX-style names relative to the datastore root:
:meth:`DatastoreBackend.listing`, :meth:`~DatastoreBackend.remote_sha256`,
:meth:`~DatastoreBackend.put` and :meth:`~DatastoreBackend.get`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from runyard.errors import InvalidParameter

__all__ = ["DatastoreBackend", "RemoteEntry", "TransferReport", "clean_relpath", "sha256_file",
           "source_files"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def clean_relpath(path: str | None, field_name: str) -> str:
    """``path`` as a normalised POSIX path relative to a datastore root ("" for the root).

    Refused with :class:`InvalidParameter` naming ``field_name``: an absolute path, a drive, a
    ``..`` component (anything that could leave the datastore) and a NUL byte.
    """
    if path is None:
        return ""
    text = os.fspath(path).replace("\\", "/")
    if "\x00" in text:
        raise InvalidParameter(field_name, "must not contain a NUL byte")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise InvalidParameter(field_name, f"{path!r} is absolute; give a path relative to the "
                               "datastore root (e.g. 'data/train')")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidParameter(field_name, f"{path!r} leaves the datastore ('..' is not allowed "
                               "in a datastore path); give a path inside the datastore")
    return posixpath.join(*parts) if parts else ""


def _join(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def source_files(src_dir: Path) -> list[tuple[Path, str]]:
    """Every file under ``src_dir`` as (path, POSIX name relative to it), sorted.

    A symbolic link that points outside ``src_dir`` is refused (``src_dir`` field): uploading
    it would copy data from elsewhere on the machine.
    """
    root = src_dir.resolve()
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(src_dir, followlinks=True):
        here = Path(dirpath)
        for name in list(dirnames) + filenames:
            p = here / name
            if p.is_symlink() and not p.resolve().is_relative_to(root):
                raise InvalidParameter(
                    "src_dir", f"{p} is a symbolic link to {os.readlink(p)}, outside "
                    f"{src_dir}; copy the file into the folder or remove the link")
        dirnames.sort()
        for name in sorted(filenames):
            p = here / name
            if p.is_file():
                out.append((p, p.relative_to(src_dir).as_posix()))
    return out


@dataclass(frozen=True)
class RemoteEntry:
    """A file on a datastore: its size, and its sha256 when the datastore knows it cheaply."""

    size: int
    sha256: str | None = None


@dataclass
class TransferReport:
    """What an upload or download did."""

    #: Files whose bytes were sent (upload) or fetched (download).
    transferred: list[str] = field(default_factory=list)
    #: Files already there with the same size and sha256.
    unchanged: list[str] = field(default_factory=list)
    #: Files already there with other content, kept because ``overwrite`` was False.
    kept: list[str] = field(default_factory=list)
    #: Bytes transferred.
    bytes: int = 0


class _Progress:
    """A rich progress bar on stderr when asked for and stderr is a TTY, else a summary line."""

    def __init__(self, show: bool, verb: str, total_files: int, total_bytes: int) -> None:
        self.verb = verb
        self.show = show
        self._lock = threading.Lock()
        self._bar = None
        self._task = None
        if show and sys.stderr.isatty() and total_files:
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                DownloadColumn,
                Progress,
                TransferSpeedColumn,
            )

            self._bar = Progress("[progress.description]{task.description}", BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(f"{verb} {total_files} files", total=total_bytes)

    def advance(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            with self._lock:
                self._bar.advance(self._task, n)

    def close(self, report: TransferReport, where: str) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self.show:
            extra = f", {len(report.kept)} kept (different, overwrite=False)" if report.kept else ""
            print(f"{self.verb} {len(report.transferred)} files ({report.bytes} bytes) "
                  f"{where}; {len(report.unchanged)} unchanged{extra}", file=sys.stderr)


class DatastoreBackend(ABC):
    """One datastore's storage (see the module docs for the primitives a kind implements)."""

    #: Files moved at once by :meth:`upload` / :meth:`download`.
    workers: int = 4

    def __init__(self, name: str) -> None:
        self.name = name
        #: Where upload keeps stat caches of its source folders (the snapshot store's
        #: :class:`~runyard.snapshots.statcache.StatCache`: an unchanged file is not read
        #: again to learn its sha256); None: hash every file every time.
        self.hash_cache_dir: Path | None = None

    # -- primitives --------------------------------------------------------------------------
    @abstractmethod
    def listing(self, prefix: str) -> dict[str, RemoteEntry]:
        """Every file whose name starts with the folder ``prefix`` ("" = all): name -> entry."""

    @abstractmethod
    def remote_sha256(self, name: str) -> str:
        """The sha256 of a stored file (called only when :meth:`listing` did not give it)."""

    @abstractmethod
    def put(self, local: Path, name: str, sha256: str) -> None:
        """Store ``local``'s bytes as ``name`` (replacing it), recording ``sha256`` if it can."""

    @abstractmethod
    def get(self, name: str, local: Path) -> None:
        """Write the stored file ``name`` to ``local`` (its folder exists)."""

    def describe(self) -> str:
        """Where the data lives, for messages (never a secret)."""
        return f"datastore {self.name!r}"

    # -- transfers ---------------------------------------------------------------------------
    def _same(self, entry: RemoteEntry | None, name: str, size: int,
              local_sha: Callable[[], str]) -> bool:
        if entry is None or entry.size != size:
            return False
        remote = entry.sha256 or self.remote_sha256(name)
        return remote == local_sha()

    def upload(self, files: Sequence[tuple[Path, str]], target_path: str, *, overwrite: bool,
               show_progress: bool, source_root: Path | None = None) -> TransferReport:
        """Send (local path, relative name) pairs under ``target_path``; see the module docs.

        ``source_root``: the folder the relative names are relative to (keys the stat cache).
        """
        from runyard.snapshots.statcache import (  # noqa: PLC0415
            StatCache,
            cache_row,
            is_racy,
            stat_key,
        )

        prefix = clean_relpath(target_path, "target_path")
        names = [(p, rel, _join(prefix, clean_relpath(rel, "files"))) for p, rel in files]
        cache: StatCache | None = None
        if self.hash_cache_dir is not None and source_root is not None:
            key = hashlib.sha256(os.fsencode(source_root.resolve())).hexdigest()
            cache = StatCache.load(self.hash_cache_dir / f"{key}.json")
        rows: dict[str, list[int | str]] = {}
        start_ns = time.time_ns()
        remote = self.listing(prefix)
        report = TransferReport()
        todo: list[tuple[Path, str, str, int]] = []
        lock = threading.Lock()

        def check(item: tuple[Path, str, str]) -> None:
            path, rel, name = item
            st = path.stat()
            size = st.st_size
            digest = cache.lookup(rel, st) if cache is not None else None
            if digest is None:
                digest = sha256_file(path)
                # cached only when the file did not change while (or just before) hashing
                if (cache is not None and stat_key(path.stat()) == stat_key(st)
                        and not is_racy(st, start_ns)):
                    with lock:
                        rows[rel] = cache_row(st, digest)
            elif cache is not None:
                with lock:
                    rows[rel] = cache_row(st, digest)
            entry = remote.get(name)
            if entry is not None and self._same(entry, name, size, lambda: digest):
                with lock:
                    report.unchanged.append(name)
            elif entry is not None and not overwrite:
                with lock:
                    report.kept.append(name)
            else:
                with lock:
                    todo.append((path, name, digest, size))

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(check, names))
        if cache is not None and self.hash_cache_dir is not None:
            cache.save(rows, self.hash_cache_dir)
        progress = _Progress(show_progress, "uploaded", len(todo), sum(t[3] for t in todo))

        def send(item: tuple[Path, str, str, int]) -> None:
            path, name, digest, size = item
            self.put(path, name, digest)
            with lock:
                report.transferred.append(name)
                report.bytes += size
            progress.advance(size)

        try:
            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(send, todo))
        finally:
            progress.close(report, f"to {self.describe()}")
        return report

    def download(self, target: Path, prefix: str | None, *, overwrite: bool,
                 show_progress: bool) -> TransferReport:
        """Fetch every file under ``prefix`` into ``target`` keeping relative names."""
        clean = clean_relpath(prefix, "prefix")
        remote = self.listing(clean)
        report = TransferReport()
        todo: list[tuple[str, Path, int]] = []
        for name, entry in sorted(remote.items()):
            rel = clean_relpath(name, "prefix")  # a stored name with '..' is refused too
            local = target / rel
            if local.is_file():
                if self._same(entry, name, local.stat().st_size,
                              lambda p=local: sha256_file(p)):  # type: ignore[misc]
                    report.unchanged.append(name)
                    continue
                if not overwrite:
                    report.kept.append(name)
                    continue
            todo.append((name, local, entry.size))
        progress = _Progress(show_progress, "downloaded", len(todo), sum(t[2] for t in todo))
        lock = threading.Lock()

        def fetch(item: tuple[str, Path, int]) -> None:
            name, local, size = item
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.part")
            self.get(name, tmp)
            os.replace(tmp, local)
            with lock:
                report.transferred.append(name)
                report.bytes += size
            progress.advance(size)

        try:
            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(fetch, todo))
        finally:
            progress.close(report, f"from {self.describe()}")
        return report
