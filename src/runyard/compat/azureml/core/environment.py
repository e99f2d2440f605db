"""``azureml.core.environment``."""

from runyard.compat.azureml._missing import partly
from runyard.environment import DockerSection, Environment, PythonSection
from runyard.environments.conda_dependencies import CondaDependencies

__all__ = ["CondaDependencies", "DockerSection", "Environment", "PythonSection"]

#: v1 names of this module whose runyard feature has not landed: name -> what is missing.
__getattr__ = partly("azureml.core.environment", {
    "SparkSection": "the spark kind", "DatabricksSection": "the databricks kind",
    "RSection": "R environments", "ImageBuildDetails": "remote image builds",
})
