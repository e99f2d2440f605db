"""Module-level ``__getattr__`` for compat modules whose runyard feature has not landed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runyard.errors import NotSupported


def missing(module: str, feature: str) -> Callable[[str], Any]:
    """A ``__getattr__`` raising ``NotSupported`` for every public name of ``module``."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotSupported(f"{module}.{name}: runyard does not include {feature} yet")

    return __getattr__


def partly(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for a module that has some of v1's names: each name in ``names``
    (name -> the missing feature) raises ``NotSupported``; any other name is an ordinary
    ``AttributeError`` (it was never part of v1's documented surface)."""

    def __getattr__(name: str) -> Any:
        feature = names.get(name)
        if feature is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        raise NotSupported(f"{module}.{name}: runyard does not include {feature} yet")

    return __getattr__
