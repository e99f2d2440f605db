"""``azureml.train.sklearn``: v1's ``SKLearn`` estimator (see ``docs/estimators.md``)."""

from __future__ import annotations

from typing import ClassVar

from runyard.compat.azureml.train.estimator import _FrameworkEstimator

__all__ = ["SKLearn"]


class SKLearn(_FrameworkEstimator):
    """A scikit-learn script: ``SKLearn(source_directory, entry_script=..., script_params=...,
    framework_version=None, ...)`` with :class:`~runyard.compat.azureml.train.estimator.Estimator`'s
    arguments. The environment installs the ``framework_version`` pins of
    :mod:`runyard.environments.frameworks` (None: the newest listed). One process on one node,
    as in v1."""

    _FRAMEWORK = "SKLearn"
    _BACKENDS_OK: ClassVar[tuple[str, ...]] = ()
