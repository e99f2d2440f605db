"""Entry-point discovery (lazy): compute kinds, stores and, later, samplers.

Built-in names always win over entry points of the same name, and a plugin that fails to load
raises an error naming it (never swallowed).
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from runyard.errors import NotFound, RunyardError


@cache
def _entry_points(group: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=group)}


def plugin_names(group: str, builtin: dict[str, str]) -> dict[str, str]:
    """Map of name to ``module:attr`` for ``group``: built-ins, then entry points."""
    names = dict(builtin)
    for name, value in _entry_points(group).items():
        names.setdefault(name, value)
    return names


def load_plugin(group: str, name: str, builtin: dict[str, str], what: str) -> Any:
    """Import plugin ``name`` of ``group`` (``what`` names it in errors: "compute kind");
    ``NotFound`` for an unknown name."""
    names = plugin_names(group, builtin)
    if name not in names:
        raise NotFound(f"unknown {what} {name!r}; known {what.split()[-1]}s: "
                       f"{', '.join(sorted(names))}")
    module, _, attr = names[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise RunyardError(f"{what} {name!r} could not be loaded from "
                           f"{names[name]!r}: {exc}") from exc
