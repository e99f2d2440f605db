"""``azureml`` (Azure Machine Learning SDK v1) import paths mapped onto runyard.

Change ``from azureml.core import ...`` to ``from runyard.compat.azureml.core import ...``; the
names are runyard's own classes (aliases and argument mapping only). Arguments that only mean
something in Azure (``subscription_id``, ``resource_group``, ``auth``, ...) are accepted, recorded
where it makes sense, and ignored. A feature whose runyard part has not landed raises
``NotSupported`` naming what is missing; nothing is a silent no-op.
"""
