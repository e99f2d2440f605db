"""``azureml.data.data_reference``: data references have not landed (``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.data.data_reference", "data references")
