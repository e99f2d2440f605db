"""``azureml.core.environment``."""

from runyard.environment import DockerSection, Environment, PythonSection

__all__ = ["DockerSection", "Environment", "PythonSection"]
