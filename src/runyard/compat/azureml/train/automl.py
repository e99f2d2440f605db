"""``azureml.train.automl``: not landed yet (every name raises ``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.train.automl", "AutoML")
