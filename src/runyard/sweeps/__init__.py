"""Hyperparameter sweeps (Azure ML v1's HyperDrive): expressions, samplings, policies, config.

Names are re-exported lazily so that ``import runyard.sweeps`` stays cheap; nothing here imports
Optuna (the search does, when a sweep runs). See :mod:`runyard.sweeps.config` for
``HyperDriveConfig``'s rules and :mod:`runyard.services.sweeps.policies` for the exact policy
semantics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    **{n: "runyard.sweeps.expressions" for n in (
        "choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal",
        "qnormal", "lognormal", "qlognormal")},
    **{n: "runyard.sweeps.sampling" for n in (
        "HyperParameterSampling", "RandomParameterSampling", "GridParameterSampling",
        "BayesianParameterSampling")},
    **{n: "runyard.sweeps.policies" for n in (
        "EarlyTerminationPolicy", "BanditPolicy", "MedianStoppingPolicy",
        "TruncationSelectionPolicy", "NoTerminationPolicy")},
    **{n: "runyard.sweeps.config" for n in (
        "HyperDriveConfig", "PrimaryMetricGoal", "MAX_DURATION_MINUTES")},
}

__all__ = [
    "BanditPolicy",
    "BayesianParameterSampling",
    "EarlyTerminationPolicy",
    "GridParameterSampling",
    "HyperDriveConfig",
    "HyperParameterSampling",
    "MAX_DURATION_MINUTES",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "PrimaryMetricGoal",
    "RandomParameterSampling",
    "TruncationSelectionPolicy",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]

if TYPE_CHECKING:
    from runyard.sweeps.config import MAX_DURATION_MINUTES, HyperDriveConfig, PrimaryMetricGoal
    from runyard.sweeps.expressions import (
        choice,
        lognormal,
        loguniform,
        normal,
        qlognormal,
        qloguniform,
        qnormal,
        quniform,
        randint,
        uniform,
    )
    from runyard.sweeps.policies import (
        BanditPolicy,
        EarlyTerminationPolicy,
        MedianStoppingPolicy,
        NoTerminationPolicy,
        TruncationSelectionPolicy,
    )
    from runyard.sweeps.sampling import (
        BayesianParameterSampling,
        GridParameterSampling,
        HyperParameterSampling,
        RandomParameterSampling,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runyard.sweeps' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
