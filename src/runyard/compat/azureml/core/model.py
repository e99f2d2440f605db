"""``azureml.core.model``: the model registry has not landed (every name: ``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.core.model", "the model registry")
