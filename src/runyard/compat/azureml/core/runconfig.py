"""``azureml.core.runconfig``."""

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
