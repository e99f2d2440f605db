"""Choosing the workspace store by the URL's scheme.

``sqlite`` and ``postgresql`` (any ``+driver``) open the SQLAlchemy store; other schemes come
from the ``runyard.stores`` entry-point group (``name = "module:Class"``, the class taking the
URL). An unknown scheme is refused with the schemes that are known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runyard.errors import WorkspaceError
from runyard.plugins import load_plugin, plugin_names

if TYPE_CHECKING:
    from runyard.store.base import WorkspaceStore

GROUP = "runyard.stores"
BUILTIN_STORES = {
    "sqlite": "runyard.store.sqlalchemy.store:SqlWorkspaceStore",
    "postgresql": "runyard.store.sqlalchemy.store:SqlWorkspaceStore",
}


def scheme_of(url: str) -> str:
    """``postgresql+psycopg://...`` -> ``postgresql``."""
    head, sep, _ = url.partition("://")
    if not sep:
        head, sep, _ = url.partition(":")
    return head.split("+", 1)[0].lower() if sep else ""


def open_store(url: str) -> WorkspaceStore:
    """Open the store for ``url`` (its scheme picks the implementation)."""
    scheme = scheme_of(url)
    known = plugin_names(GROUP, BUILTIN_STORES)
    if scheme not in known:
        raise WorkspaceError(
            f"database_url: no store for the scheme {scheme or '(none)'!r}; use one of "
            f"{', '.join(sorted(known))} (for example sqlite:///path/runyard.db or "
            "postgresql+psycopg://user@host/db)")
    cls = load_plugin(GROUP, scheme, BUILTIN_STORES, "store")
    store: WorkspaceStore = cls(url)
    return store
