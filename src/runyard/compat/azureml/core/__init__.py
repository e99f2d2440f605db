"""``azureml.core``: Workspace, Experiment, Run, ScriptRunConfig, Environment, ComputeTarget.

Names resolve lazily, so ``from runyard.compat.azureml.core import Run`` works inside a script
on any target with only the runtime bundle (standard library) on its path. ``VERSION`` is
runyard's version. v1 names whose runyard feature has not landed (``Image``,
``Webservice``, ...) raise ``NotSupported`` naming the feature. (Part of the runtime bundle:
standard library only, Python 3.8 syntax.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runyard import __version__ as VERSION  # noqa: N812  (v1's name)

__all__ = ["VERSION", "ComputeTarget", "Dataset", "Datastore", "Environment", "Experiment",
           "Model", "Run", "RunConfiguration",
           "ScriptRun", "ScriptRunConfig", "Workspace", "get_run"]

_LAZY = {
    "ComputeTarget": ("runyard.compat.azureml.core.compute", "ComputeTarget"),
    "Workspace": ("runyard.compat.azureml.core.workspace", "Workspace"),
    "Environment": ("runyard.environment", "Environment"),
    "Experiment": ("runyard.experiment", "Experiment"),
    "Run": ("runyard.run", "Run"),
    "ScriptRun": ("runyard.run", "Run"),
    "RunConfiguration": ("runyard.runconfig", "RunConfiguration"),
    "ScriptRunConfig": ("runyard.runconfig", "ScriptRunConfig"),
    "get_run": ("runyard.compat.azureml.core.run", "get_run"),
    "Model": ("runyard.compat.azureml.core.model", "Model"),
    "Datastore": ("runyard.compat.azureml.core.datastore", "Datastore"),
    "Dataset": ("runyard.compat.azureml.core.dataset", "Dataset"),
}

#: v1 names of ``azureml.core`` whose runyard feature has not landed: name -> feature.
_NOT_LANDED = {
    "Image": "container images for deployment", "Webservice": "model deployment",
    "Keyvault": "a workspace key vault", "LinkedService": "linked services",
    "ContainerRegistry": "container registries", "PrivateEndPointConfig": "private endpoints",
    "ComputeInstance": "compute instances", "InferenceConfig": "model deployment",
    "ScriptRunConfigBase": "ScriptRunConfigBase",
}

if TYPE_CHECKING:
    from runyard.compat.azureml.core.compute import ComputeTarget
    from runyard.compat.azureml.core.dataset import Dataset
    from runyard.compat.azureml.core.datastore import Datastore
    from runyard.compat.azureml.core.model import Model
    from runyard.compat.azureml.core.run import get_run
    from runyard.compat.azureml.core.workspace import Workspace
    from runyard.environment import Environment
    from runyard.experiment import Experiment
    from runyard.run import Run
    from runyard.run import Run as ScriptRun
    from runyard.runconfig import RunConfiguration, ScriptRunConfig


def __getattr__(name: str) -> Any:
    if name in _NOT_LANDED:
        from runyard.errors import NotSupported  # noqa: PLC0415

        raise NotSupported(f"azureml.core.{name}: runyard does not include "
                           f"{_NOT_LANDED[name]} yet")
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
