"""``azureml.core.image``: deployment images are not part of runyard (``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.core.image", "container images for deployment")
