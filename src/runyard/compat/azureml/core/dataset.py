"""``azureml.core.dataset``: datasets have not landed (every name: ``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.core.dataset", "datasets")
