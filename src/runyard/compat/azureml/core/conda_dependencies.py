"""``azureml.core.conda_dependencies``."""

from runyard.environments.conda_dependencies import CondaDependencies

__all__ = ["CondaDependencies"]
