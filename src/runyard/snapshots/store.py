"""The content-addressed snapshot store.

Layout under the store root (created on the first snapshot that passes the limits)::

    blobs/ab/<62 more hex digits>     file contents, named by their sha256, stored once
    manifests/<snapshot id>.json      canonical manifest (see runyard.snapshots.manifest)
    statcache/<sha256 of source>.json per-source-directory stat cache
    tmp/                              temp files, renamed into place (same filesystem)

Every file is written to ``tmp/`` and moved into place with ``os.replace``, so two processes
snapshotting at once (into the same store, from the same or different trees) never see or leave
a partial blob or manifest. A manifest is written only after all its blobs are in place, so an
existing manifest means a complete snapshot.

Reading is one pass per file: small files are read whole, hashed, and written only if the
store lacks the blob; large files are copied into a temp file in chunks while a second thread
hashes the same chunks (so copying and hashing overlap, and the blob's name is the hash of
exactly the bytes written), and the temp file is dropped if the blob already exists. Files are
hashed on a thread pool (file I/O and hashlib release the GIL). Unchanged files are not read at
all (see runyard.snapshots.statcache).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from runyard.errors import InvalidParameter, NotFound, WorkspaceError
from runyard.snapshots.atomic import atomic_write_bytes, create_temp, write_all
from runyard.snapshots.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    check_limits,
    validate_limits,
)
from runyard.snapshots.manifest import (
    ManifestEntry,
    ManifestRow,
    SnapshotInfo,
    decode_manifest,
    encode_manifest_rows,
    is_sha256_hex,
    manifest_id,
    mode_of,
)
from runyard.snapshots.statcache import CacheRow, StatCache, cache_row, is_racy, stat_key
from runyard.snapshots.walk import collect_files, resolve_source_dir

SMALL_FILE_BYTES = 4 * 1024 * 1024
"""Files up to this size are read whole; larger ones are streamed into a temp file."""

CHUNK_BYTES = 256 * 1024
"""Read size when streaming large files (measured: 1-2 MiB writes were up to 2x slower into
ext4's page cache than 256 KiB ones)."""

STREAM_BUFFERS = 8
"""Chunks in flight between the copying and the hashing thread of one large file."""

MAX_WORKERS = 8
"""Upper bound on the hashing/copying threads."""

_O_BINARY = getattr(os, "O_BINARY", 0)

FICLONE = 0x40049409
"""Linux ``ioctl`` that makes a file share another's bytes copy-on-write (a reflink)."""
_FICLONE_SUPPORTED = sys.platform.startswith("linux")
#: What ``FICLONE`` answers where the filesystem (or the pair of files) cannot share bytes.
_NO_REFLINK_ERRNOS = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL,
                                errno.ENOTTY, errno.ENOSYS, errno.EPERM, errno.EBADF})
GC_LOCK = "gc.lock"
"""Lock file in the store root: shared while a snapshot is taken, exclusive while collecting."""
_T = TypeVar("_T")
_R = TypeVar("_R")


def _worker_count() -> int:
    return max(2, min(MAX_WORKERS, (os.cpu_count() or 1) + 2))


def _blob_present(path: str, size: int | None) -> bool:
    """True if the blob file exists (and has ``size`` bytes, when given)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return size is None or st.st_size == size


@dataclass(frozen=True)
class Garbage:
    """One file :meth:`SnapshotStore.collect_garbage` removed (or would remove)."""

    kind: str  # "snapshot", "blob" or "temp file"
    name: str  # snapshot id, blob hash or temp file name
    bytes: int
    path: str


@dataclass(frozen=True)
class _Hashed:
    blob: str
    size: int
    stable: bool  # the file's stat did not change while it was read: safe to cache


class _Ingest:
    """Writes the blobs of one ``take`` call; counts what it had to write."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.tmp_dir = str(store.root / "tmp")
        self._lock = threading.Lock()
        self._claimed: set[str] = set()
        self.new_blobs = 0
        self.new_bytes = 0

    def claim(self, blob: str, size: int) -> str | None:
        """The path to write ``blob`` to if the caller must write it, else None.

        None when the store already has the blob (with ``size`` bytes) or another file of this
        call already claimed it.
        """
        if blob in self._claimed:
            return None
        path = self.store._blob_file(blob)
        present = _blob_present(path, size)
        with self._lock:
            if blob in self._claimed:
                return None
            self._claimed.add(blob)
        if present:
            return None
        self.store._ensure_dir(os.path.dirname(path))
        return path

    def count(self, size: int) -> None:
        """Record one blob of ``size`` bytes written by this call."""
        with self._lock:
            self.new_blobs += 1
            self.new_bytes += size


def _read_small(fd: int, size: int) -> bytes:
    """Read a file expected to hold ``size`` bytes to its end."""
    data = os.read(fd, size + 1)
    if len(data) == size:  # what fstat said, and no byte beyond it: at EOF
        return data
    parts = [data]
    while chunk := os.read(fd, max(size, CHUNK_BYTES)):
        parts.append(chunk)
    return b"".join(parts)


def _hash_file(path: str, expected: os.stat_result, ingest: _Ingest) -> _Hashed | None:
    """Read ``path`` once: hash it and store its blob if the store lacks it.

    Returns None if the file vanished. The result covers exactly the bytes read; ``stable`` is
    False if the file changed between the walk's ``stat`` (``expected``) and the end of the read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY)
    except FileNotFoundError:
        return None
    try:
        if expected.st_size <= SMALL_FILE_BYTES:
            data = _read_small(fd, expected.st_size)
            after = os.fstat(fd)
            size = len(data)
            blob = hashlib.sha256(data).hexdigest()
            target = ingest.claim(blob, size)
            if target is not None:
                atomic_write_bytes(target, data, ingest.tmp_dir)
                ingest.count(size)
        else:
            blob, size = _stream_file(fd, ingest)
            after = os.fstat(fd)
    finally:
        os.close(fd)
    stable = size == expected.st_size and stat_key(expected) == stat_key(after)
    return _Hashed(blob, size, stable)


def _stream_file(fd: int, ingest: _Ingest) -> tuple[str, int]:
    """Copy ``fd`` into a temp file while hashing it; move that into place if needed.

    Returns ``(blob, size)``: the sha256 and length of exactly the bytes written (a file that
    changes meanwhile is stored under the hash of what was read, never a stale one).
    """
    out, tmp = create_temp(ingest.tmp_dir, "blob-")
    try:
        try:
            blob, size = _copy_hashing(fd, out)
        finally:
            os.close(out)
        target = ingest.claim(blob, size)
        if target is not None:
            os.replace(tmp, target)
            ingest.count(size)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return blob, size


def _copy_hashing(src: int, dst: int) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` from the current offset to EOF, hashing each chunk on a second
    thread while the next one is read and written; returns ``(sha256 hex, bytes copied)``.

    Both threads spend their time in system calls or hashlib, which release the GIL, so a
    large file costs about the longer of hashing and copying instead of their sum.
    """
    h = hashlib.sha256()
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    failed: list[BaseException] = []
    for _ in range(STREAM_BUFFERS):
        free.put(bytearray(CHUNK_BYTES))

    def hash_chunks() -> None:
        try:
            while (item := full.get()) is not None:
                buf, n = item
                with memoryview(buf) as view:
                    h.update(view[:n])
                free.put(buf)
        except BaseException as err:  # handed to the copying thread, which re-raises it
            failed.append(err)
            free.put(None)

    hasher = threading.Thread(target=hash_chunks, name="runyard-hash", daemon=True)
    hasher.start()
    size = 0
    try:
        with open(src, "rb", buffering=0, closefd=False) as f:
            while True:
                buf = free.get()
                if buf is None:
                    raise failed[0]
                n = f.readinto(buf)
                if not n:
                    break
                with memoryview(buf) as view:
                    write_all(dst, view[:n])
                size += n
                full.put((buf, n))
    finally:
        full.put(None)
        hasher.join()
    if failed:
        raise failed[0]
    return h.hexdigest(), size


def _parallel(
    items: Sequence[_T], fn: Callable[[_T], _R], workers: int, weight: Callable[[_T], int]
) -> list[_R]:
    """``[fn(x) for x in items]`` on ``workers`` threads, heaviest items first."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    results: list[_R | None] = [None] * len(items)
    order = iter(sorted(range(len(items)), key=lambda i: -weight(items[i])))
    lock = threading.Lock()
    failed = threading.Event()

    def work() -> None:
        while not failed.is_set():
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runyard-snapshot") as ex:
        futures = [ex.submit(work) for _ in range(min(workers, len(items)))]
        for future in futures:
            future.result()
    return results  # type: ignore[return-value]  # every slot was filled


class SnapshotStore:
    """Content-addressed store of source-directory snapshots under ``root``.

    ``root`` is typically ``<workspace>/.runyard/snapshots``; it is created on the first
    snapshot. All methods are safe to call from several threads and processes at once.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs_dir = str(self.root / "blobs")
        self._made_dirs: set[str] = set()
        #: Per destination filesystem (``st_dev``): whether ``FICLONE`` works there.
        self._reflink_ok: dict[int, bool] = {}

    # -- paths ---------------------------------------------------------------------------

    def _blob_file(self, blob: str) -> str:
        return f"{self._blobs_dir}{os.sep}{blob[:2]}{os.sep}{blob[2:]}"

    def _manifest_path(self, snapshot_id: str) -> Path:
        return self.root / "manifests" / f"{snapshot_id}.json"

    def _statcache_path(self, source: Path) -> Path:
        key = hashlib.sha256(os.fsencode(source)).hexdigest()
        return self.root / "statcache" / f"{key}.json"

    def _ensure_dir(self, path: str) -> None:
        if path not in self._made_dirs:
            os.makedirs(path, exist_ok=True)
            self._made_dirs.add(path)

    def blob_path(self, blob: str) -> Path:
        """Where the content with hex sha256 ``blob`` is (or would be) stored."""
        if not is_sha256_hex(blob):
            raise InvalidParameter("blob", f"not a hex sha256: {blob!r}")
        return Path(self._blob_file(blob))

    # -- queries -------------------------------------------------------------------------

    def exists(self, snapshot_id: str) -> bool:
        """True if the store holds the (complete) snapshot ``snapshot_id``."""
        return is_sha256_hex(snapshot_id) and self._manifest_path(snapshot_id).is_file()

    def manifest(self, snapshot_id: str) -> list[ManifestEntry]:
        """The files of snapshot ``snapshot_id``, sorted by path.

        Raises NotFound if the store does not hold it, WorkspaceError if its manifest is
        corrupt.
        """
        if not is_sha256_hex(snapshot_id):
            raise NotFound(
                f"snapshot {snapshot_id!r} not found: not a snapshot id",
                details={"snapshot_id": snapshot_id},
            )
        path = self._manifest_path(snapshot_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"snapshot {snapshot_id} not found in {self.root}",
                details={"snapshot_id": snapshot_id},
            ) from None
        try:
            if manifest_id(data) != snapshot_id:
                raise ValueError("content does not match its id")
            return decode_manifest(data)
        except ValueError as err:
            raise WorkspaceError(
                f"snapshot manifest {path} is corrupt ({err}); take the snapshot again",
                details={"snapshot_id": snapshot_id, "path": str(path)},
            ) from err

    def missing_blobs(self, blobs: Iterable[str]) -> list[str]:
        """The blobs of ``blobs`` the store lacks (first-seen order, without duplicates)."""
        seen: set[str] = set()
        missing: list[str] = []
        for blob in blobs:
            if blob in seen:
                continue
            seen.add(blob)
            if not _blob_present(str(self.blob_path(blob)), None):
                missing.append(blob)
        return missing

    # -- take ----------------------------------------------------------------------------

    def take(
        self,
        source_dir: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
        exclude: Sequence[str | Path] = (),
    ) -> SnapshotInfo:
        """Snapshot ``source_dir`` into the store and return its id and counts.

        Files are selected by :func:`runyard.snapshots.collect_files` (ignore files, default
        excludes, ``exclude`` paths; the store root is always excluded). Limits apply to the
        selected files; over a limit, SnapshotTooLarge is raised before anything is written.
        InvalidParameter if ``source_dir`` is not a directory or a file cannot be read.
        A file that vanishes during the snapshot is left out; one that changes is recorded as
        read.
        """
        validate_limits(max_bytes, max_files)
        start_ns = time.time_ns()
        source = resolve_source_dir(source_dir)
        files = collect_files(source, [*exclude, self.root])
        check_limits(str(source), files, max_bytes=max_bytes, max_files=max_files)

        cache = StatCache.load(self._statcache_path(source))
        cached: dict[int, str] = {}
        todo: list[int] = []
        for i, (rel, st) in enumerate(files):
            blob = cache.lookup(rel, st)
            if blob is None:
                todo.append(i)
            else:
                cached[i] = blob

        with self._gc_lock(exclusive=False):  # no collection while blobs are written
            tmp_dir = self.root / "tmp"
            if not os.path.isdir(self._blobs_dir):
                self._made_dirs.clear()  # the store was removed since: forget the shard dirs
            for sub in ("blobs", "manifests", "statcache", "tmp"):
                os.makedirs(self.root / sub, exist_ok=True)
            ingest = _Ingest(self)
            hashed = self._hash_many(source, files, todo, ingest)
            entries, rows = _assemble(files, cached, hashed, start_ns)
            data = encode_manifest_rows(entries)
            snapshot_id = manifest_id(data)
            if not self._manifest_path(snapshot_id).exists():
                # Blobs known from the stat cache may have been removed from the store since.
                lost = [
                    i
                    for i, blob in cached.items()
                    if not _blob_present(self._blob_file(blob), files[i][1].st_size)
                ]
                if lost:
                    for i in lost:
                        del cached[i]
                    hashed.update(self._hash_many(source, files, lost, ingest))
                    entries, rows = _assemble(files, cached, hashed, start_ns)
                    data = encode_manifest_rows(entries)
                    snapshot_id = manifest_id(data)
                path = self._manifest_path(snapshot_id)
                if not path.exists():
                    atomic_write_bytes(path, data, tmp_dir)
            else:  # taken again: mark it used now (garbage collection keeps recent snapshots)
                with contextlib.suppress(FileNotFoundError):
                    os.utime(self._manifest_path(snapshot_id))
            cache.save(rows, tmp_dir)
        return SnapshotInfo(
            id=snapshot_id,
            file_count=len(entries),
            total_bytes=sum(e[2] for e in entries),
            new_blobs=ingest.new_blobs,
            new_bytes=ingest.new_bytes,
        )

    def _hash_many(
        self,
        source: Path,
        files: Sequence[tuple[str, os.stat_result]],
        indexes: Sequence[int],
        ingest: _Ingest,
    ) -> dict[int, _Hashed | None]:
        src = str(source)

        def one(i: int) -> _Hashed | None:
            rel, st = files[i]
            try:
                return _hash_file(f"{src}{os.sep}{rel}", st, ingest)
            except (PermissionError, IsADirectoryError) as err:
                raise InvalidParameter(
                    "source_directory",
                    f"cannot read {rel}: {err.strerror or err}; fix its permissions or add it "
                    "to .runyardignore",
                    details={"path": rel},
                ) from err

        total = sum(files[i][1].st_size for i in indexes)
        workers = _worker_count() if len(indexes) > 4 and total > 256 * 1024 else 1
        results = _parallel(indexes, one, workers, weight=lambda i: files[i][1].st_size)
        return dict(zip(indexes, results, strict=True))

    def ingest_files(self, source: str | Path, paths: Sequence[str]) -> list[tuple[str, int]]:
        """Store the files ``paths`` (relative to the folder ``source``) as blobs; returns
        each file's ``(blob, size)`` in order.

        The same one-pass hash-and-copy as :meth:`take` (a blob the store has is not written
        again) and the same stat cache of ``source``: an unchanged file is not read at all.
        No manifest is written: the caller records the blobs (the model registry does) and
        passes them to :meth:`collect_garbage` as ``keep_blobs``. InvalidParameter if a file
        is missing or unreadable.
        """
        start_ns = time.time_ns()
        src = Path(source)
        files: list[tuple[str, os.stat_result]] = []
        for rel in paths:
            try:
                files.append((rel, os.stat(src / rel)))
            except OSError as err:
                raise InvalidParameter("path", f"cannot read {src / rel}: "
                                       f"{err.strerror or err}", details={"path": rel}) from err
        cache = StatCache.load(self._statcache_path(src))
        cached: dict[int, str] = {}
        todo: list[int] = []
        for i, (rel, st) in enumerate(files):
            blob = cache.lookup(rel, st)
            if blob is not None and _blob_present(self._blob_file(blob), st.st_size):
                cached[i] = blob
            else:
                todo.append(i)
        with self._gc_lock(exclusive=False):
            if not os.path.isdir(self._blobs_dir):
                self._made_dirs.clear()
            for sub in ("blobs", "manifests", "statcache", "tmp"):  # as take: gc looks here
                os.makedirs(self.root / sub, exist_ok=True)
            hashed = self._hash_many(src, files, todo, _Ingest(self))
            out: list[tuple[str, int]] = []
            rows: dict[str, CacheRow] = {}
            for i, (rel, st) in enumerate(files):
                if i in cached:
                    out.append((cached[i], st.st_size))
                    rows[rel] = cache_row(st, cached[i])
                    continue
                h = hashed.get(i)
                if h is None:
                    raise InvalidParameter("path", f"{src / rel} vanished while it was read",
                                           details={"path": rel})
                out.append((h.blob, h.size))
                if h.stable and not is_racy(st, start_ns):
                    rows[rel] = cache_row(st, h.blob)
            cache.save({**cache._rows, **rows}, self.root / "tmp")  # keep the rows of other files
        return out

    # -- restore -------------------------------------------------------------------------

    def restore(self, snapshot_id: str, dest: str | Path) -> Path:
        """Write the files of snapshot ``snapshot_id`` into ``dest`` (created) and return it.

        Each file is a private copy the run may change freely: a reflink (``FICLONE``: the
        bytes are shared copy-on-write with the blob, so a restore costs no disk) where the
        filesystem has them (btrfs, XFS, bcachefs), else a plain copy. Never a hard link: as
        root (or as the owner, after a ``chmod``) a script could write through a hard link into
        the store. Files get their recorded mode (0o755 or 0o644). Existing files (or links) at
        the same paths are replaced, never written through; other files in ``dest`` are left
        alone. NotFound if the snapshot or one of its blobs is missing.
        """
        entries = self.manifest(snapshot_id)
        lacking = [e.blob for e in entries if not _blob_present(self._blob_file(e.blob), e.size)]
        if lacking:
            raise NotFound(
                f"snapshot {snapshot_id} is incomplete: {len(lacking)} blob(s) missing or "
                f"damaged in {self.root} (first: {lacking[0]})",
                details={"snapshot_id": snapshot_id, "missing_blobs": lacking[:20]},
            )
        dest_path = Path(dest)
        dest_path.mkdir(parents=True, exist_ok=True)
        base = str(dest_path)
        for d in sorted({e.path.rpartition("/")[0] for e in entries} - {""}):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        dev = os.stat(base).st_dev

        def copy(e: ManifestEntry) -> None:
            target = os.path.join(base, e.path)
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)  # never write through a link (symbolic or hard)
            self._clone_or_copy(self._blob_file(e.blob), target, dev)
            os.chmod(target, e.mode)

        workers = _worker_count() if len(entries) > 16 else 1
        _parallel(entries, copy, workers, weight=lambda e: e.size)
        return dest_path

    def reflinks(self, dest_dir: str | Path) -> bool | None:
        """Whether restores into ``dest_dir``'s filesystem use reflinks (None: not tried yet)."""
        return self._reflink_ok.get(os.stat(dest_dir).st_dev)

    def _clone_or_copy(self, src: str, dst: str, dev: int) -> None:
        """A reflink of ``src`` at ``dst`` (a new file) where the filesystem can, else a copy.

        The answer is remembered per destination filesystem, so a filesystem without
        reflinks costs one failed ``ioctl`` per store, not one per file.
        """
        if _FICLONE_SUPPORTED and self._reflink_ok.get(dev, True):
            src_fd = os.open(src, os.O_RDONLY | _O_BINARY)
            try:
                dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
                try:
                    fcntl.ioctl(dst_fd, FICLONE, src_fd)
                except OSError as err:
                    if err.errno not in _NO_REFLINK_ERRNOS:
                        raise
                    self._reflink_ok[dev] = False
                else:
                    self._reflink_ok[dev] = True
                    return
                finally:
                    os.close(dst_fd)
            finally:
                os.close(src_fd)
            os.unlink(dst)
        shutil.copyfile(src, dst)

    # -- garbage -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _gc_lock(self, exclusive: bool) -> Iterator[None]:
        """Held shared by every ``take`` while it writes, exclusive by :meth:`collect_garbage`
        (so a blob written by a snapshot in progress is never collected)."""
        os.makedirs(self.root, exist_ok=True)
        fd = os.open(self.root / GC_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def snapshot_ids(self) -> list[str]:
        """Ids of the snapshots in the store, sorted."""
        try:
            names = os.listdir(self.root / "manifests")
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and is_sha256_hex(n[:-5]))

    def collect_garbage(
        self, keep: Iterable[str], *, unused_since: float, dry_run: bool = False,
        keep_blobs: Iterable[str] = (),
    ) -> list[Garbage]:
        """Remove the snapshots not in ``keep`` that were not taken or used since
        ``unused_since`` (a time stamp), the blobs no remaining snapshot refers to, and temp
        files older than ``unused_since``; returns what was (with ``dry_run``: would be)
        removed. Blobs in ``keep_blobs`` (referred to outside snapshots: registered models)
        are always kept.

        Runs under the store's exclusive lock: a snapshot being taken meanwhile waits (and
        a blob it wrote is never taken from under it). A remaining manifest that cannot be read
        keeps every blob (nothing is collected but unreferenced manifests and temp files).
        """
        wanted = set(keep)
        out: list[Garbage] = []
        if not (self.root / "manifests").is_dir():
            return out
        with self._gc_lock(exclusive=True):
            remaining: list[str] = []
            for sid in self.snapshot_ids():
                path = self._manifest_path(sid)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if sid in wanted or st.st_mtime >= unused_since:
                    remaining.append(sid)
                else:
                    out.append(Garbage("snapshot", sid, st.st_size, str(path)))
            referenced: set[str] = set(keep_blobs)
            readable = True
            for sid in remaining:
                try:
                    referenced.update(e.blob for e in self.manifest(sid))
                except (NotFound, WorkspaceError):
                    readable = False
            if readable:
                out.extend(self._unreferenced_blobs(referenced))
            out.extend(self._old_temp_files(unused_since))
            if not dry_run:
                for item in out:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(item.path)
                if any(item.kind == "blob" for item in out):
                    self._made_dirs.clear()  # shard folders stay, but forget them anyway
        return out

    def _unreferenced_blobs(self, referenced: set[str]) -> list[Garbage]:
        out: list[Garbage] = []
        try:
            shards = sorted(os.scandir(self._blobs_dir), key=lambda d: d.name)
        except FileNotFoundError:
            return out
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            for f in os.scandir(shard.path):
                blob = shard.name + f.name
                if blob in referenced or not is_sha256_hex(blob):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    out.append(Garbage("blob", blob, f.stat(follow_symlinks=False).st_size,
                                       f.path))
        return out

    def _old_temp_files(self, before: float) -> list[Garbage]:
        out: list[Garbage] = []
        try:
            entries = list(os.scandir(self.root / "tmp"))
        except FileNotFoundError:
            return out
        for f in entries:
            with contextlib.suppress(FileNotFoundError):
                st = f.stat(follow_symlinks=False)
                if f.is_file(follow_symlinks=False) and st.st_mtime < before:
                    out.append(Garbage("temp file", f.name, st.st_size, f.path))
        return out


def _assemble(
    files: Sequence[tuple[str, os.stat_result]],
    cached: dict[int, str],
    hashed: dict[int, _Hashed | None],
    start_ns: int,
) -> tuple[list[ManifestRow], dict[str, CacheRow]]:
    """Manifest rows and new stat-cache rows from cache hits and freshly hashed files."""
    entries: list[ManifestRow] = []
    rows: dict[str, CacheRow] = {}
    for i, (rel, st) in enumerate(files):
        mode = mode_of(st.st_mode)
        blob = cached.get(i)
        if blob is not None:
            entries.append((rel, blob, st.st_size, mode))
            rows[rel] = cache_row(st, blob)
            continue
        h = hashed.get(i)
        if h is None:
            continue  # vanished
        entries.append((rel, h.blob, h.size, mode))
        if h.stable and not is_racy(st, start_ns):
            rows[rel] = cache_row(st, h.blob)
    return entries, rows
