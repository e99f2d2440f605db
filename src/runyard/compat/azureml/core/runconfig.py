"""``azureml.core.runconfig``."""

from runyard.compat.azureml._missing import partly
from runyard.environment import (
    DEFAULT_CPU_IMAGE,
    DEFAULT_GPU_IMAGE,
    DockerSection,
    Environment,
    PythonSection,
)
from runyard.runconfig import (
    HistoryConfiguration,
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
)

EnvironmentDefinition = Environment
PythonEnvironment = PythonSection
DockerEnvironment = DockerSection
MPI_CPU_IMAGE = DEFAULT_CPU_IMAGE
MPI_GPU_IMAGE = DEFAULT_GPU_IMAGE

__all__ = ["DEFAULT_CPU_IMAGE", "DEFAULT_GPU_IMAGE", "MPI_CPU_IMAGE", "MPI_GPU_IMAGE",
           "DockerEnvironment", "EnvironmentDefinition", "HistoryConfiguration",
           "MpiConfiguration", "PythonEnvironment", "PyTorchConfiguration", "RunConfiguration"]

#: v1 names of this module whose runyard feature has not landed: name -> what is missing.
__getattr__ = partly("azureml.core.runconfig", {
    "DataReferenceConfiguration": "data references",
    "SparkConfiguration": "the spark kind",
    "HdiConfiguration": "the spark kind (HDInsight)",
    "TensorflowConfiguration": "TensorFlow parameter-server training",
    "DockerConfiguration": "the top-level docker configuration (use environment.docker)",
    "ParallelTaskConfiguration": "parallel tasks",
    "AzureContainerInstanceConfiguration": "Azure Container Instances",
    "SparkEnvironment": "the spark kind",
})
