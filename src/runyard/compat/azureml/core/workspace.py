"""``azureml.core.workspace``: the Azure constructor mapped onto a runyard workspace."""

from __future__ import annotations

import os
import sys
from typing import Any

from runyard.errors import InvalidParameter, NotFound
from runyard.workspace import Workspace as _Workspace

__all__ = ["Workspace"]

#: Authentication classes already reported on stderr by this process (one note each).
_NOTED: set[str] = set()


def _note_auth(auth: Any) -> None:
    """Say once per process and class that ``auth`` is ignored (its class name only: never
    its fields, which may hold a password)."""
    if auth is None:
        return
    kind = type(auth).__name__
    if kind in _NOTED:
        return
    _NOTED.add(kind)
    print(f"runyard: auth={kind} ignored: this workspace is a local folder, which needs no "
          "authentication (no team server is configured)", file=sys.stderr, flush=True)


class Workspace(_Workspace):
    """Azure ML v1's ``Workspace``, mapped onto the runyard workspace found from the current
    folder upwards (``.runyard/config.json``, or an Azure ``config.json``: see
    :meth:`runyard.workspace.Workspace.from_config`).

    ``Workspace(subscription_id, resource_group, workspace_name)`` opens that workspace and
    checks its name (and its subscription id / resource group when it stored them). ``auth``
    objects are accepted and ignored (one note on stderr); ``sku``, ``tags`` and the private
    ``_``-arguments are ignored.
    """

    def __init__(self, subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: Any = None, _location: Any = None,
                 _disable_service_check: bool = False, _workspace_id: Any = None,
                 sku: str = "basic", tags: Any = None, _cloud: str = "AzureCloud",
                 path: str | os.PathLike[str] | None = None) -> None:
        _note_auth(auth)
        if workspace_name is None:
            raise InvalidParameter("workspace_name", "name the workspace: Workspace("
                                   "subscription_id, resource_group, workspace_name)")
        found = _Workspace.from_config(path)
        try:
            if found.name != workspace_name:
                raise NotFound(f"the workspace found from {path or os.getcwd()} is "
                               f"{found.name!r}, not {workspace_name!r}; create it with "
                               "Workspace.create(name, path) or run from its folder")
            found._check_azure_identity(
                {"subscription_id": subscription_id, "resource_group": resource_group},
                where="Workspace(...)")
        finally:
            found.close()
        # a workspace that stored no Azure identity shows the one given, on this object only
        given = {k: v for k, v in (("subscription_id", subscription_id),
                                   ("resource_group", resource_group),
                                   ("location", _location)) if isinstance(v, str) and v}
        _Workspace.__init__(self, found.name, found.path, config={**given, **found._config})

    @classmethod
    def get(cls, name: str, auth: Any = None, subscription_id: str | None = None,  # type: ignore[override]
            resource_group: str | None = None, location: str | None = None,
            cloud: str = "AzureCloud", id: str | None = None,  # noqa: A002  (v1's name)
            path: str | os.PathLike[str] | None = None) -> Workspace:
        """v1's ``Workspace.get(name, auth, subscription_id, resource_group, ...)``: the
        workspace ``name`` found from ``path`` (default: cwd) upwards."""
        _note_auth(auth)
        ws = cls.from_config(path)
        if ws.name != name:
            ws.close()
            raise NotFound(f"the workspace found from {path or os.getcwd()} is {ws.name!r}, "
                           f"not {name!r}")
        ws._check_azure_identity({"subscription_id": subscription_id,
                                  "resource_group": resource_group}, where="Workspace.get")
        return ws

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, auth: Any = None,
                    _logger: Any = None, _file_name: str | None = None,
                    **_kwargs: Any) -> Workspace:
        """v1's ``Workspace.from_config``: runyard's or Azure's config from ``path`` upwards
        (``_file_name`` names another file than ``config.json`` in ``path``)."""
        _note_auth(auth)
        if _file_name is not None:
            path = os.path.join(path or ".", _file_name)
        ws = _Workspace.from_config.__func__(cls, path)  # type: ignore[attr-defined]
        assert isinstance(ws, Workspace)
        return ws

    @classmethod
    def create(cls, name: str, auth: Any = None, subscription_id: str | None = None,  # type: ignore[override]
               resource_group: str | None = None, location: str | None = None,
               exist_ok: bool = False, path: str | os.PathLike[str] = ".",
               **more: Any) -> Workspace:
        """v1's ``Workspace.create``: a runyard workspace in ``path`` (default: cwd) storing
        the subscription id, resource group and location given."""
        if isinstance(auth, (str, os.PathLike)):
            raise InvalidParameter(
                "auth", f"got {os.fspath(auth)!r}, a path: in v1's Workspace.create the second "
                "argument is auth; pass the folder as path=... (or use runyard.Workspace.create("
                "name, path))")
        _note_auth(auth)
        more.pop("show_output", None)
        ws = cls._create(name, path, exist_ok=exist_ok, subscription_id=subscription_id,
                         resource_group=resource_group, location=location, **more)
        assert isinstance(ws, Workspace)
        return ws
