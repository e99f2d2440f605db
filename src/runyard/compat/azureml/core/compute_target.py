"""``azureml.core.compute_target``: every compute-target error is a ``ComputeTargetException``."""

from runyard.errors import ComputeTargetError as ComputeTargetException

__all__ = ["ComputeTargetException"]
