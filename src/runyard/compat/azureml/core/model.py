"""``azureml.core.model``: the model registry (``Model``); ``InferenceConfig`` (deployment)
has not landed (``NotSupported``).

This ``Model`` is runyard's, except that :meth:`Model.get_model_path` downloads to
``./azureml-models/<name>/<version>/`` as v1 did (runyard's own: ``./runyard-models/``).
"""

from __future__ import annotations

from typing import ClassVar

from runyard.compat.azureml._missing import partly
from runyard.model import Model as _Model

__all__ = ["Model"]


class Model(_Model):
    """v1's ``azureml.core.Model`` (see :class:`runyard.model.Model`)."""

    MODELS_DIR: ClassVar[str] = "azureml-models"


__getattr__ = partly("azureml.core.model", {"InferenceConfig": "model deployment"})
