"""Choosing the workspace store by the URL's scheme.

``sqlite`` and ``postgresql`` (any ``+driver``) open the SQLAlchemy store; other schemes come
from the ``runyard.stores`` entry-point group (``name = "module:Class"``, the class taking the
URL). An unknown scheme is refused with the schemes that are known.

The built-in store also takes ``create`` (whether a missing database may be created: only
workspace creation passes True) and ``busy_timeout_s``; a plugin store is given the URL alone
and decides for itself.
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


def open_store(url: str, *, create: bool = False,
               busy_timeout_s: float | None = None) -> WorkspaceStore:
    """Open the store for ``url`` (its scheme picks the implementation).

    ``create``: whether a missing database may be created (``Workspace.create`` only); else a
    missing database is a :class:`~runyard.errors.DatabaseMissing`. ``busy_timeout_s``: how
    long to wait for a database another process holds (built-in stores; default 30 s).
    """
    scheme = scheme_of(url)
    known = plugin_names(GROUP, BUILTIN_STORES)
    if scheme not in known:
        raise WorkspaceError(
            f"database_url: no store for the scheme {scheme or '(none)'!r}; use one of "
            f"{', '.join(sorted(known))} (for example sqlite:///path/runyard.db or "
            "postgresql+psycopg://user@host/db)")
    cls = load_plugin(GROUP, scheme, BUILTIN_STORES, "store")
    if known[scheme] == BUILTIN_STORES.get(scheme):
        builtin: WorkspaceStore = cls(url, create=create, busy_timeout_s=busy_timeout_s)
        return builtin
    store: WorkspaceStore = cls(url)
    return store
