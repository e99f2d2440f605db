"""``azureml.data.dataset_consumption_config``: ``DatasetConsumptionConfig`` is runyard's
(:mod:`runyard.dataio`)."""

from runyard.dataio import DatasetConsumptionConfig

__all__ = ["DatasetConsumptionConfig"]
