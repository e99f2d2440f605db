"""Deprecated aliases: names that moved out of ``runyard.compute`` into the SDK layer.

The user-facing compute classes live in :mod:`runyard.computetarget` now; their old import paths
(``runyard.compute.cluster.ClusterCompute``, ...) still work through :func:`moved_name`, which
warns with a ``DeprecationWarning``. This module's one import of the SDK layer is the only
upward import the architecture test allows (``tests/architecture``).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def moved_name(module: str, name: str, moved: tuple[str, ...]) -> Any:
    """The SDK class ``name`` for a module ``__getattr__`` (``AttributeError`` otherwise)."""
    if name not in moved:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved: import it from runyard.computetarget",
                  DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module("runyard.computetarget"), name)
