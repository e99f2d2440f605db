"""Discovery of compute kinds through the ``runyard.compute`` entry-point group (lazy)."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from runyard.errors import NotFound, RunyardError

if TYPE_CHECKING:
    from runyard.compute.base import ComputeTarget

#: Kinds that ship with runyard; entry points may add more (never silently replace these).
BUILTIN_KINDS = {"local": "runyard.compute.local:LocalTarget"}


@cache
def compute_kinds() -> dict[str, str]:
    """Map of kind name to ``module:Class`` from built-ins and entry points."""
    kinds = dict(BUILTIN_KINDS)
    for ep in entry_points(group="runyard.compute"):
        kinds.setdefault(ep.name, ep.value)
    return kinds


def load_kind(kind: str) -> type[ComputeTarget]:
    """Import the class of compute kind ``kind``; a broken plugin raises, never hides."""
    kinds = compute_kinds()
    if kind not in kinds:
        raise NotFound(f"unknown compute kind {kind!r}; known kinds: {', '.join(sorted(kinds))}")
    module, _, attr = kinds[kind].partition(":")
    try:
        cls: type[ComputeTarget] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise RunyardError(f"compute kind {kind!r} could not be loaded from "
                           f"{kinds[kind]!r}: {exc}") from exc
    return cls
