"""``azureml.core``: Workspace, Experiment, Run, ScriptRunConfig, Environment, ComputeTarget."""

from __future__ import annotations

from runyard.compat.azureml.core.compute import ComputeTarget
from runyard.compat.azureml.core.workspace import Workspace
from runyard.environment import Environment
from runyard.experiment import Experiment
from runyard.run import Run
from runyard.runconfig import RunConfiguration, ScriptRunConfig

ScriptRun = Run

__all__ = ["ComputeTarget", "Environment", "Experiment", "Run", "RunConfiguration",
           "ScriptRun", "ScriptRunConfig", "Workspace"]
