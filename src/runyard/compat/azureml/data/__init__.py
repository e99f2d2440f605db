"""``azureml.data``: datasets and data references have not landed (``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.data", "datasets and data references")
