"""``azureml.train.hyperdrive.runconfig``: ``HyperDriveConfig`` and the 2018
``HyperDriveRunConfig`` (estimator first; ``policy`` positional, ``None`` allowed). The 2018
positional order is taken from the notebooks' keyword calls and is **unconfirmed**: pass
keywords."""

from __future__ import annotations

from typing import Any

from runyard.sweeps.config import HyperDriveConfig, PrimaryMetricGoal
from runyard.sweeps.policies import EarlyTerminationPolicy
from runyard.sweeps.sampling import HyperParameterSampling

__all__ = ["HyperDriveConfig", "HyperDriveRunConfig", "PrimaryMetricGoal"]


class HyperDriveRunConfig(HyperDriveConfig):
    """v1's 2018 name of :class:`HyperDriveConfig` (an estimator-based sweep)."""

    def __init__(self, estimator: Any, hyperparameter_sampling: HyperParameterSampling,
                 policy: EarlyTerminationPolicy | None, primary_metric_name: str,
                 primary_metric_goal: PrimaryMetricGoal | str, max_total_runs: int,
                 max_concurrent_runs: int | None = None, max_duration_minutes: float = 10080,
                 ) -> None:
        super().__init__(hyperparameter_sampling=hyperparameter_sampling,
                         primary_metric_name=primary_metric_name,
                         primary_metric_goal=primary_metric_goal,
                         max_total_runs=max_total_runs, max_concurrent_runs=max_concurrent_runs,
                         max_duration_minutes=max_duration_minutes, policy=policy,
                         estimator=estimator)
