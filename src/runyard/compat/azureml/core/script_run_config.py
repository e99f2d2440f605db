"""``azureml.core.script_run_config``."""

from runyard.runconfig import ScriptRunConfig

__all__ = ["ScriptRunConfig"]
