"""Discovery of compute kinds: built-ins plus the ``runyard.compute`` entry-point group."""

from __future__ import annotations

from runyard.compute.base import ComputeKind
from runyard.errors import RunyardError
from runyard.plugins import load_plugin, plugin_names

GROUP = "runyard.compute"
#: Kinds that ship with runyard; entry points may add more (never silently replace these).
BUILTIN_KINDS = {
    "local": "runyard.compute.local:LocalKind",
    "cluster": "runyard.compute.cluster:ClusterKind",
    "remote": "runyard.compute.remote:RemoteKind",
}


def compute_kinds() -> dict[str, str]:
    """Map of kind name to ``module:Class``."""
    return plugin_names(GROUP, BUILTIN_KINDS)


def load_kind(kind: str) -> type[ComputeKind]:
    """The class of compute kind ``kind``; a broken plugin raises, never hides."""
    cls = load_plugin(GROUP, kind, BUILTIN_KINDS, "compute kind")
    if not (isinstance(cls, type) and issubclass(cls, ComputeKind)):
        raise RunyardError(f"compute kind {kind!r} is not a ComputeKind: {cls!r}")
    return cls
