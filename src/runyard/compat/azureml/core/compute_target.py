"""``azureml.core.compute_target``: v1's ``ComputeTargetException`` (runyard's compute-target
errors and ``TargetUnavailable`` are subclasses of it)."""

from runyard.errors import ComputeTargetException

__all__ = ["ComputeTargetException"]
