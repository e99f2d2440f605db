"""``azureml.train.hyperdrive``: not landed yet (every name raises ``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.train.hyperdrive", "hyperparameter sweeps")
