"""``azureml.core``: Workspace, Experiment, Run, ScriptRunConfig, Environment, ComputeTarget.

Names resolve lazily, so ``from runyard.compat.azureml.core import Run`` works inside a script
on any target with only the runtime bundle (standard library) on its path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["ComputeTarget", "Environment", "Experiment", "Run", "RunConfiguration",
           "ScriptRun", "ScriptRunConfig", "Workspace"]

_LAZY = {
    "ComputeTarget": ("runyard.compat.azureml.core.compute", "ComputeTarget"),
    "Workspace": ("runyard.compat.azureml.core.workspace", "Workspace"),
    "Environment": ("runyard.environment", "Environment"),
    "Experiment": ("runyard.experiment", "Experiment"),
    "Run": ("runyard.run", "Run"),
    "ScriptRun": ("runyard.run", "Run"),
    "RunConfiguration": ("runyard.runconfig", "RunConfiguration"),
    "ScriptRunConfig": ("runyard.runconfig", "ScriptRunConfig"),
}

if TYPE_CHECKING:
    from runyard.compat.azureml.core.compute import ComputeTarget
    from runyard.compat.azureml.core.workspace import Workspace
    from runyard.environment import Environment
    from runyard.experiment import Experiment
    from runyard.run import Run
    from runyard.run import Run as ScriptRun
    from runyard.runconfig import RunConfiguration, ScriptRunConfig


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
