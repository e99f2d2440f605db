"""The runtime bundle: the files of ``runyard`` a target needs next to the user's script.

A remote host, a Ray worker or a Spark driver gets a folder holding a minimal ``runyard``
package (the runner, the spool, the run context and the few standard-library-only modules they
import). Putting that folder on ``PYTHONPATH`` makes ``from runyard import Run`` work there
without installing runyard. Standard library only.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent

#: Paths relative to the ``runyard`` package directory.
BUNDLE_FILES: tuple[str, ...] = (
    "__init__.py",
    "compat/__init__.py",
    "compat/azureml/__init__.py",
    "compat/azureml/core/__init__.py",
    "compat/azureml/core/run.py",
    "compat/azureml/exceptions.py",
    "compat/azureml/telemetry.py",
    "errors.py",
    "entities.py",
    "run.py",
    "runtime/__init__.py",
    "runtime/azureml_alias/__init__.py",
    "runtime/azureml_alias/azureml/__init__.py",
    "runtime/bindings.py",
    "runtime/bundle.py",
    "runtime/clusteragent.py",
    "runtime/context.py",
    "runtime/datasets.py",
    "runtime/envbuild.py",
    "runtime/envbuilders.py",
    "runtime/envcache.py",
    "runtime/envscrub.py",
    "runtime/jobwire.py",
    "runtime/procmarks.py",
    "runtime/runner.py",
    "runtime/spool.py",
)


def bundle_files() -> list[tuple[str, Path]]:
    """``(relative path inside the bundle folder, source file)`` pairs that exist."""
    out = []
    for rel in BUNDLE_FILES:
        src = PACKAGE_DIR / rel
        if src.is_file():
            out.append((f"runyard/{rel}", src))
    return out


def bundle_digest() -> str:
    """A hash of the bundle's contents (a target keeps one copy per digest)."""
    h = hashlib.sha256()
    for rel, src in bundle_files():
        h.update(rel.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def write_bundle(dest: str | Path) -> Path:
    """Copy the bundle into ``dest`` (which then goes on PYTHONPATH); returns ``dest``."""
    root = Path(dest)
    for rel, src in bundle_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return root
