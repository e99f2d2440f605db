"""The ignore-filtered walk of a source directory (what a snapshot contains).

Rules, in order:

* Always excluded, at any depth: anything named ``.git``, ``__pycache__`` or ``.runyard``;
  files ending in ``.pyc``; directories named ``.venv`` or ``venv``; any directory below the
  root that contains a ``pyvenv.cfg`` (a virtualenv). ``.azureml`` and ``aml_config`` are kept.
* Paths given in ``exclude`` (absolute, or relative to the source directory; a file or a whole
  directory); those outside the source directory are ignored.
* Ignore files: in each directory, ``.runyardignore`` if present, else ``.gitignore``. Their
  patterns apply to that directory and below; a deeper file's decision overrides a shallower
  one (as git does with nested ``.gitignore`` files). The ignore files themselves are included.
* Symlinks: a symlink to a regular file whose real path lies inside the source directory is
  followed (the snapshot stores the target's content and mode under the link's path, even if
  the target itself is ignored or excluded). Symlinks
  to directories, to files outside the source directory, and dangling ones are skipped.
  Sockets, FIFOs and devices are skipped.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from runyard.errors import InvalidParameter
from runyard.snapshots.ignore import GITIGNORE, RUNYARDIGNORE, IgnoreRules

EXCLUDED_NAMES: frozenset[str] = frozenset({".git", "__pycache__", ".runyard"})
"""Names excluded at any depth, whatever their type."""

EXCLUDED_DIR_NAMES: frozenset[str] = frozenset({".venv", "venv"})
"""Directory names excluded at any depth."""

EXCLUDED_SUFFIXES: tuple[str, ...] = (".pyc",)
"""File name endings excluded at any depth."""

VENV_MARKER = "pyvenv.cfg"
"""A directory (below the root) holding this file is a virtualenv and is excluded."""

_FIELD = "source_directory"


def resolve_source_dir(source_dir: str | Path) -> Path:
    """Return the real path of ``source_dir``; InvalidParameter if it is not a directory."""
    path = Path(source_dir).expanduser()
    if not path.exists():
        raise InvalidParameter(_FIELD, f"{path} does not exist", details={"path": str(path)})
    if not path.is_dir():
        raise InvalidParameter(_FIELD, f"{path} is not a directory", details={"path": str(path)})
    return Path(os.path.realpath(path))


def _excluded_rel_paths(root: str, exclude: Sequence[str | Path]) -> frozenset[str]:
    rels: set[str] = set()
    for item in exclude:
        path = Path(item).expanduser()
        if not path.is_absolute():
            path = Path(root) / path
        try:
            rel = os.path.relpath(os.path.realpath(path), root)
        except ValueError:  # another drive on Windows
            continue
        if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            continue
        rels.add(rel.replace(os.sep, "/"))
    return frozenset(rels)


def _is_ignored(rules: tuple[IgnoreRules, ...], rel: str, is_dir: bool) -> bool:
    for r in rules:  # deepest ignore file first; the first one with an opinion decides
        decision = r.match(rel, is_dir)
        if decision is not None:
            return decision
    return False


def _unreadable(rel: str, err: OSError) -> InvalidParameter:
    return InvalidParameter(
        _FIELD,
        f"cannot read {rel or '.'}: {err.strerror or err}; fix its permissions or add it to "
        f"{RUNYARDIGNORE}",
        details={"path": rel},
    )


def collect_files(
    source_dir: str | Path, exclude: Sequence[str | Path] = ()
) -> list[tuple[str, os.stat_result]]:
    """List the files a snapshot of ``source_dir`` contains, with their ``stat`` results.

    Paths are relative, ``/``-separated and sorted. The stat result is the file's own (or, for
    a followed symlink, its target's). See the module docstring for the rules. Raises
    InvalidParameter (field ``source_directory``) if ``source_dir`` is not a directory or a
    directory inside it cannot be listed.
    """
    root = str(resolve_source_dir(source_dir))
    excluded = _excluded_rel_paths(root, exclude)
    root_prefix = root.rstrip(os.sep) + os.sep
    out: list[tuple[str, os.stat_result]] = []
    stack: list[tuple[str, str, tuple[IgnoreRules, ...]]] = [(root, "", ())]
    while stack:
        abs_dir, rel_dir, rules = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = list(it)
        except FileNotFoundError:
            continue  # removed while we walked
        except OSError as err:
            raise _unreadable(rel_dir, err) from err
        names = {e.name for e in entries}
        if rel_dir and VENV_MARKER in names:
            continue
        ignore_name = (
            RUNYARDIGNORE if RUNYARDIGNORE in names else GITIGNORE if GITIGNORE in names else None
        )
        if ignore_name is not None:
            path = os.path.join(abs_dir, ignore_name)
            if os.path.isfile(path):
                try:
                    rules = (IgnoreRules.from_file(path, rel_dir), *rules)
                except OSError as err:
                    raise _unreadable(f"{rel_dir}/{ignore_name}".lstrip("/"), err) from err
        for entry in entries:
            name = entry.name
            if name in EXCLUDED_NAMES:
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel in excluded:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name in EXCLUDED_DIR_NAMES or (rules and _is_ignored(rules, rel, True)):
                        continue
                    stack.append((entry.path, rel, rules))
                    continue
                if name.endswith(EXCLUDED_SUFFIXES):
                    continue
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not target.startswith(root_prefix):
                        continue
                    try:
                        st = os.stat(entry.path)
                    except OSError:
                        continue  # dangling, a loop, or unreachable: skipped
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                else:
                    continue
            except FileNotFoundError:
                continue  # vanished, or a dangling symlink
            if not stat.S_ISREG(st.st_mode) or (rules and _is_ignored(rules, rel, False)):
                continue
            out.append((rel, st))
    out.sort(key=lambda item: item[0])
    return out
