"""Module-level ``__getattr__`` for compat modules whose runyard feature has not landed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runyard.errors import NotSupported


def missing(module: str, feature: str) -> Callable[[str], Any]:
    """A ``__getattr__`` raising ``NotSupported`` for every public name of ``module``."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotSupported(f"{module}.{name}: runyard does not include {feature} yet")

    return __getattr__
