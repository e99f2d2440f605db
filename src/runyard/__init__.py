"""runyard: write ``train.py`` once; run it locally, over SSH, on Ray or on Spark.

The public API is re-exported lazily so that ``import runyard`` stays cheap and needs nothing
outside the standard library (scripts import ``Run`` from here inside any environment).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Environment",
    "Experiment",
    "InvalidParameter",
    "NotFound",
    "NotSupported",
    "Run",
    "RunConfiguration",
    "RunFailed",
    "RunStatus",
    "RunyardError",
    "ScriptRunConfig",
    "TargetUnavailable",
    "Workspace",
    "__version__",
]

_LAZY = {
    "Workspace": "runyard.workspace",
    "Experiment": "runyard.experiment",
    "Run": "runyard.run",
    "RunConfiguration": "runyard.runconfig",
    "ScriptRunConfig": "runyard.runconfig",
    "Environment": "runyard.environment",
    "RunStatus": "runyard.entities",
    "RunyardError": "runyard.errors",
    "InvalidParameter": "runyard.errors",
    "NotFound": "runyard.errors",
    "NotSupported": "runyard.errors",
    "AlreadyExists": "runyard.errors",
    "TargetUnavailable": "runyard.errors",
    "RunFailed": "runyard.errors",
}

if TYPE_CHECKING:
    from runyard.entities import RunStatus
    from runyard.environment import Environment
    from runyard.errors import (
        AlreadyExists,
        InvalidParameter,
        NotFound,
        NotSupported,
        RunFailed,
        RunyardError,
        TargetUnavailable,
    )
    from runyard.experiment import Experiment
    from runyard.run import Run
    from runyard.runconfig import RunConfiguration, ScriptRunConfig
    from runyard.workspace import Workspace


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
