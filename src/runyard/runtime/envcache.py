"""The cache of built environments in a target's ``cache_dir``.

Standard library only (see :mod:`runyard.runtime.envbuild`). The cache key is the hash of the
normalized spec (``spec_hash``), the builder, the resolved interpreter (implementation and full
version) and the platform. Layout of ``cache_dir``::

    <key>                  symlink to .builds/<key>-<rand>, created by an atomic rename
    .builds/<key>-<rand>/  the environment; .runyard-env.json inside marks it complete
    .locks/<key>.build     held exclusively while the environment is being built
    .locks/<key>.use       held shared by every run using it (prune needs it free)
    .tools/uv/             uv, installed here once when none is found

At most one build per key runs at a time (the others wait on ``<key>.build`` and reuse the
result); a build happens in its own folder and is published only when complete, so a
half-built environment is never used and a failed one leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from runyard.runtime.envbuilders import _Builder, _open_lock, _token, platform_tag

MARKER = ".runyard-env.json"
KEY_FORMAT = 1
_HELD_LOCKS: list[int] = []  # shared "use" locks, held until the runner exits


# -- locks ------------------------------------------------------------------------------------
def _try_lock(path: Path, mode: int) -> int | None:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


# -- the cache --------------------------------------------------------------------------------
def cache_key(request: dict[str, Any], identity: str) -> str:
    """32 hex digits from the spec hash, the builder and the target identity."""
    text = f"{KEY_FORMAT}|{request.get('builder')}|{request['spec_hash']}|{identity}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read_marker(entry: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((entry / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _use(cache: Path, key: str) -> tuple[Path, dict[str, Any]] | None:
    """The complete environment ``key`` with a shared use-lock held, or None."""
    entry = cache / key
    if not (entry / MARKER).is_file():
        return None
    fd = _open_lock(cache / ".locks" / f"{key}.use")
    fcntl.flock(fd, fcntl.LOCK_SH)
    marker = _read_marker(entry)
    if marker is None:  # pruned between the check and the lock
        os.close(fd)
        return None
    _HELD_LOCKS.append(fd)
    with contextlib.suppress(OSError):
        os.utime(entry / MARKER)  # last used (prune --older-than)
    return Path(os.path.realpath(entry)), marker


def _sweep(cache: Path, key: str) -> None:
    """Remove leftovers of earlier failed or killed builds of ``key`` (build lock held)."""
    live = os.path.realpath(cache / key) if (cache / key).is_symlink() else None
    for folder, prefix in ((cache / ".builds", f"{key}-"), (cache, f".link-{key}-")):
        with contextlib.suppress(FileNotFoundError):
            for child in os.scandir(folder):
                if child.name.startswith(prefix) and os.path.realpath(child.path) != live:
                    if child.is_dir(follow_symlinks=False):
                        shutil.rmtree(child.path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(child.path)
    entry = cache / key
    if entry.exists() and not entry.is_symlink() and _read_marker(entry) is None:
        shutil.rmtree(entry, ignore_errors=True)


def _build_and_publish(builder: _Builder, cache: Path, key: str) -> None:
    builds = cache / ".builds"
    builds.mkdir(parents=True, exist_ok=True)
    real = builds / f"{key}-{_token()}"
    link = cache / f".link-{key}-{_token()}"
    log = builder.log
    request = builder.request
    for note in builder.plan.get("notes", []):
        log.say(f"note: {note}")
    t0 = time.monotonic()
    log.say(f"building environment {key} with {builder.name} ({builder.ident})")
    try:
        extra = builder.build(real, key)
        real.mkdir(exist_ok=True)
        marker = {"format": KEY_FORMAT, "key": key, "builder": builder.name,
                  "spec_hash": request.get("spec_hash"), "spec": request.get("spec"),
                  "name": request.get("name"), "version": request.get("version"),
                  "platform": platform_tag(), "created": time.time(),
                  "build_seconds": round(time.monotonic() - t0, 3), **extra}
        tmp = real / f"{MARKER}.tmp"
        tmp.write_text(json.dumps(marker, indent=2))
        os.replace(tmp, real / MARKER)
        os.symlink(os.path.join(".builds", real.name), link)
        os.replace(link, cache / key)  # publish: atomic
    except BaseException:
        shutil.rmtree(real, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        raise
    log.say(f"built environment {key} in {time.monotonic() - t0:.1f} s")


# -- listing and pruning ----------------------------------------------------------------------
def _size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def _in_use(cache: Path, key: str) -> bool:
    for name in (f"{key}.build", f"{key}.use"):
        fd = _try_lock(cache / ".locks" / name, fcntl.LOCK_EX)
        if fd is None:
            return True
        os.close(fd)
    return False


def list_cache(cache_dir: str | os.PathLike[str], sizes: bool = True) -> list[dict[str, Any]]:
    """Environments in a cache folder, newest use first."""
    cache = Path(cache_dir)
    out: list[dict[str, Any]] = []
    try:
        entries = sorted((e for e in os.scandir(cache) if not e.name.startswith(".")),
                         key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for e in entries:
        entry = cache / e.name
        marker = _read_marker(entry)
        item: dict[str, Any] = {"key": e.name, "path": os.path.realpath(entry),
                                "complete": marker is not None}
        if marker is not None:
            spec = marker.get("spec") or {}
            item.update({
                "builder": marker.get("builder"), "python": marker.get("python"),
                "platform": marker.get("platform"), "created": marker.get("created"),
                "last_used": (entry / MARKER).stat().st_mtime,
                "name": marker.get("name"), "version": marker.get("version"),
                "packages": [*spec.get("conda_packages", []), *spec.get("pip_packages", [])],
                "image": marker.get("image"), "build_seconds": marker.get("build_seconds")})
        if sizes:
            item["size_bytes"] = _size(item["path"])
        item["in_use"] = _in_use(cache, e.name)
        out.append(item)
    out.sort(key=lambda i: -(i.get("last_used") or 0))
    return out


def prune_cache(cache_dir: str | os.PathLike[str], older_than_seconds: float,
                dry_run: bool = False, now: float | None = None) -> list[dict[str, Any]]:
    """Remove environments unused for ``older_than_seconds`` and leftovers of failed builds.

    An environment a run is using or building is skipped. Returns what was (or, with
    ``dry_run``, would be) removed.
    """
    cache = Path(cache_dir)
    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed: list[dict[str, Any]] = []
    for item in list_cache(cache, sizes=False):
        key = item["key"]
        if item["complete"] and (item.get("last_used") or 0) > cutoff:
            continue
        fds = [_try_lock(cache / ".locks" / f"{key}.{n}", fcntl.LOCK_EX) for n in
               ("build", "use")]
        try:
            if any(fd is None for fd in fds):
                continue
            item["reason"] = "unused" if item["complete"] else "incomplete"
            removed.append(item)
            if dry_run:
                continue
            entry = cache / key
            real = os.path.realpath(entry)
            with contextlib.suppress(FileNotFoundError):
                if entry.is_symlink():
                    os.unlink(entry)
            shutil.rmtree(real, ignore_errors=True)
            if item.get("image"):
                engine = shutil.which("docker") or shutil.which("podman")
                if engine:
                    subprocess.run([engine, "rmi", str(item["image"])], capture_output=True,
                                   check=False)
        finally:
            for fd in fds:
                if fd is not None:
                    os.close(fd)
    linked = {os.path.realpath(cache / i["key"]) for i in list_cache(cache, sizes=False)}
    with contextlib.suppress(FileNotFoundError):
        for child in os.scandir(cache / ".builds"):
            if os.path.realpath(child.path) in linked:
                continue
            key = child.name.split("-")[0].split(".")[0]
            fd = _try_lock(cache / ".locks" / f"{key}.build", fcntl.LOCK_EX)
            if fd is None:
                continue  # a build in progress
            try:
                removed.append({"key": key, "path": child.path, "complete": False,
                                "reason": "failed build leftover"})
                if not dry_run:
                    if child.is_dir(follow_symlinks=False):
                        shutil.rmtree(child.path, ignore_errors=True)
                    else:
                        os.unlink(child.path)
            finally:
                os.close(fd)
    return removed
