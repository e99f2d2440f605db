"""``azureml.train.sklearn``: estimators have not landed; use ``ScriptRunConfig`` with an
``Environment`` (every name raises ``NotSupported``)."""

from runyard.compat.azureml._missing import missing

__getattr__ = missing("azureml.train.sklearn",
                      "estimators (use ScriptRunConfig with an Environment)")
