"""``azureml.core.webservice``: model deployment is not part of runyard (``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.core.webservice", "model deployment (web services)")
