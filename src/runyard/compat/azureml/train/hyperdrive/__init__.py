"""``azureml.train.hyperdrive``: hyperparameter sweeps (runyard's :mod:`runyard.sweeps`).

Submodules mirror v1's paths: ``parameter_expressions``, ``sampling``, ``policy``,
``runconfig`` and ``run``. ``HyperDriveRun`` is resolved lazily from the SDK (the sweep run).
Divergence: runyard runs sweeps on every target, ``local`` included (v1 refused local).
"""

from __future__ import annotations

from typing import Any

from runyard.compat.azureml.train.hyperdrive.parameter_expressions import (
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
from runyard.compat.azureml.train.hyperdrive.policy import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from runyard.compat.azureml.train.hyperdrive.run import PrimaryMetricGoal, hyperdrive_run
from runyard.compat.azureml.train.hyperdrive.runconfig import (
    HyperDriveConfig,
    HyperDriveRunConfig,
)
from runyard.compat.azureml.train.hyperdrive.sampling import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
)

__all__ = [
    "BanditPolicy", "BayesianParameterSampling", "EarlyTerminationPolicy",
    "GridParameterSampling", "HyperDriveConfig", "HyperDriveRun", "HyperDriveRunConfig",
    "HyperParameterSampling", "MedianStoppingPolicy", "NoTerminationPolicy",
    "PrimaryMetricGoal", "RandomParameterSampling", "TruncationSelectionPolicy", "choice",
    "lognormal", "loguniform", "normal", "qlognormal", "qloguniform", "qnormal", "quniform",
    "randint", "uniform",
]


def __getattr__(name: str) -> Any:
    if name == "HyperDriveRun":
        return hyperdrive_run()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
