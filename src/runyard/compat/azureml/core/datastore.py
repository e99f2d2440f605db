"""``azureml.core.datastore``: datastores have not landed (every name: ``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.core.datastore", "datastores")
