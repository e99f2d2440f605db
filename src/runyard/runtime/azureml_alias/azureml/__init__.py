"""``azureml``: an alias of :mod:`runyard.compat.azureml` for unchanged v1 training scripts.

Importing ``azureml.X`` (``azureml.core``, ``azureml.core.run``, ...) gives the module
``runyard.compat.azureml.X`` itself (one module object under both names, so ``azureml.core.Run
is runyard.run.Run``). A name runyard does not provide fails the way a missing module does
(``ModuleNotFoundError`` naming ``azureml.X``). Put on a script's path by the runner for
system-managed environments only (see :mod:`runyard.runtime.azureml_alias`). Standard library
only, Python >= 3.8.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_TARGET = "runyard.compat.azureml"
_PREFIX = __name__ + "."


class _AliasLoader(importlib.abc.Loader):
    """Hands back the already-imported runyard module instead of making a new one."""

    def __init__(self, real: str) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.real)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was executed under its runyard name."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Maps ``azureml.X`` to ``runyard.compat.azureml.X``."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        real = _TARGET + fullname[len(__name__):]
        try:
            found = importlib.util.find_spec(real)
        except ModuleNotFoundError:
            return None
        if found is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(real),
            is_package=found.submodule_search_locations is not None)


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())


def __getattr__(name: str) -> Any:
    """``azureml.X`` as an attribute: the aliased module, else the name from
    ``runyard.compat.azureml``."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return importlib.import_module(_PREFIX + name)
    except ModuleNotFoundError:
        pass
    return getattr(importlib.import_module(_TARGET), name)
