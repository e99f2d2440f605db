"""``azureml.data.output_dataset_config``: ``OutputFileDatasetConfig`` is runyard's
(:mod:`runyard.dataio`)."""

from runyard.dataio import OutputFileDatasetConfig

__all__ = ["OutputFileDatasetConfig"]
