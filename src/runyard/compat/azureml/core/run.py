"""``azureml.core.run``."""

from runyard.run import Run

__all__ = ["Run"]
