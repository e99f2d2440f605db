"""``HyperDriveConfig`` and ``PrimaryMetricGoal`` (Azure ML v1 ``azureml.train.hyperdrive``).

Validation follows the reference (shared/reference/azureml-v1-api.md §6): exactly one of
``run_config`` (a :class:`runyard.runconfig.ScriptRunConfig`) or ``estimator`` (an object with a
``_script_run_config()`` method returning one); ``max_total_runs`` 1–1000;
``max_concurrent_runs`` 1–100, ``None`` meaning ``max_total_runs`` (capped at 100: the range
v1 documents); ``max_duration_minutes > 10080`` warns and is capped; ``policy=None`` means
:class:`NoTerminationPolicy`; Bayesian sampling refuses any other policy and warns when
``max_total_runs < 20 × parameters`` or ``max_concurrent_runs > 20``. Errors are
:class:`runyard.errors.InvalidParameter` (a ``UserErrorException``, as v1 raised).

Divergences: ``primary_metric_goal`` also accepts the strings ``"maximize"``/``"minimize"``
(any case), for specs written as YAML; ``resume_from`` takes sweep run ids (or objects with an
``id``), one or a list.
"""

from __future__ import annotations

import enum
import warnings
from typing import Any

from runyard.errors import InvalidParameter
from runyard.runconfig import ScriptRunConfig
from runyard.services.sweeps.policies import EarlyTerminationPolicy, NoTerminationPolicy
from runyard.sweeps.sampling import BayesianParameterSampling, HyperParameterSampling

__all__ = ["MAX_DURATION_MINUTES", "HyperDriveConfig", "PrimaryMetricGoal"]

#: The service limit on a sweep's duration (one week).
MAX_DURATION_MINUTES = 10080


class PrimaryMetricGoal(enum.Enum):
    """Whether the primary metric is to be maximized or minimized."""

    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"

    @classmethod
    def parse(cls, value: Any) -> PrimaryMetricGoal:
        """A goal from itself or its name in any case (``"maximize"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise InvalidParameter("primary_metric_goal", f"expected PrimaryMetricGoal.MAXIMIZE or "
                               f"PrimaryMetricGoal.MINIMIZE, got {value!r}")


def _int(field: str, value: Any, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidParameter(field, f"must be an integer between {lo} and {hi}, got {value!r}")
    return value


def _run_ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        run_id = item if isinstance(item, str) else getattr(item, "id", None)
        if not isinstance(run_id, str) or not run_id:
            raise InvalidParameter("resume_from", f"expected a finished sweep run or its id "
                                   f"(or a list of them), got {item!r}")
        out.append(run_id)
    return out


class HyperDriveConfig:
    """A hyperparameter sweep: what to run, the space, the metric, the budget, the policy."""

    def __init__(self, hyperparameter_sampling: HyperParameterSampling,
                 primary_metric_name: str, primary_metric_goal: PrimaryMetricGoal | str,
                 max_total_runs: int, max_concurrent_runs: int | None = None,
                 max_duration_minutes: float = MAX_DURATION_MINUTES,
                 policy: EarlyTerminationPolicy | None = None, estimator: Any = None,
                 run_config: ScriptRunConfig | None = None, resume_from: Any = None) -> None:
        if (estimator is None) == (run_config is None):
            raise InvalidParameter("run_config", "give exactly one of run_config (a "
                                   "ScriptRunConfig) or estimator")
        if run_config is not None:
            if not isinstance(run_config, ScriptRunConfig):
                raise InvalidParameter("run_config", f"expected a ScriptRunConfig, got "
                                       f"{type(run_config).__name__}")
            self._run_config = run_config
        else:
            make = getattr(estimator, "_script_run_config", None)
            if not callable(make):
                raise InvalidParameter("estimator", f"expected an estimator (Estimator, "
                                       f"SKLearn, PyTorch, ...), got {type(estimator).__name__}")
            src = make()
            if not isinstance(src, ScriptRunConfig):
                raise InvalidParameter("estimator", f"{type(estimator).__name__}."
                                       f"_script_run_config() did not return a ScriptRunConfig")
            self._run_config = src
        self.estimator = estimator
        if not isinstance(hyperparameter_sampling, HyperParameterSampling):
            raise InvalidParameter("hyperparameter_sampling", f"expected RandomParameterSampling,"
                                   f" GridParameterSampling or BayesianParameterSampling, got "
                                   f"{type(hyperparameter_sampling).__name__}")
        self.hyperparameter_sampling = hyperparameter_sampling
        if not isinstance(primary_metric_name, str) or not primary_metric_name.strip():
            raise InvalidParameter("primary_metric_name", "give the name of the metric the "
                                   "script logs with run.log(name, value)")
        self.primary_metric_name = primary_metric_name
        self.primary_metric_goal = PrimaryMetricGoal.parse(primary_metric_goal)
        self.max_total_runs = _int("max_total_runs", max_total_runs, 1, 1000)
        if max_concurrent_runs is None:
            self.max_concurrent_runs = min(self.max_total_runs, 100)
        else:
            self.max_concurrent_runs = _int("max_concurrent_runs", max_concurrent_runs, 1, 100)
        if (not isinstance(max_duration_minutes, (int, float))
                or isinstance(max_duration_minutes, bool) or not max_duration_minutes > 0
                or max_duration_minutes != max_duration_minutes):
            raise InvalidParameter("max_duration_minutes", f"must be a number of minutes > 0, "
                                   f"got {max_duration_minutes!r}")
        if max_duration_minutes > MAX_DURATION_MINUTES:
            warnings.warn(f"max_duration_minutes={max_duration_minutes} is above the limit of "
                          f"{MAX_DURATION_MINUTES} minutes (7 days); using "
                          f"{MAX_DURATION_MINUTES}", UserWarning, stacklevel=2)
            max_duration_minutes = MAX_DURATION_MINUTES
        self.max_duration_minutes = max_duration_minutes
        if policy is None:
            policy = NoTerminationPolicy()
        if not isinstance(policy, EarlyTerminationPolicy):
            raise InvalidParameter("policy", f"expected BanditPolicy, MedianStoppingPolicy, "
                                   f"TruncationSelectionPolicy or NoTerminationPolicy, got "
                                   f"{type(policy).__name__}")
        self.policy = policy
        if isinstance(hyperparameter_sampling, BayesianParameterSampling):
            self._check_bayesian()
        self.resume_from = _run_ids(resume_from)

    def _check_bayesian(self) -> None:
        if not isinstance(self.policy, NoTerminationPolicy):
            raise InvalidParameter("policy", f"Bayesian sampling does not support early "
                                   f"termination ({type(self.policy).__name__}); use "
                                   f"policy=None or RandomParameterSampling")
        n_params = len(self.hyperparameter_sampling.parameter_space)
        if self.max_total_runs < 20 * n_params:
            warnings.warn(f"Bayesian sampling works best with at least 20 runs per parameter: "
                          f"max_total_runs={self.max_total_runs} for {n_params} parameter(s); "
                          f"consider max_total_runs >= {20 * n_params}", UserWarning,
                          stacklevel=3)
        if self.max_concurrent_runs > 20:
            warnings.warn(f"Bayesian sampling learns from finished runs: "
                          f"max_concurrent_runs={self.max_concurrent_runs} (above 20) leaves it "
                          f"little to learn from; consider 20 or fewer", UserWarning,
                          stacklevel=3)

    @property
    def run_config(self) -> ScriptRunConfig:
        """The script each trial runs (the estimator's, when given one), before the trial's
        hyperparameters are appended to its arguments."""
        return self._run_config

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able sweep spec the controller stores (without the script)."""
        return {
            "sampling": self.hyperparameter_sampling.to_dict(),
            "primary_metric": {"name": self.primary_metric_name,
                               "goal": self.primary_metric_goal.value.lower()},
            "max_total_runs": self.max_total_runs,
            "max_concurrent_runs": self.max_concurrent_runs,
            "max_duration_minutes": self.max_duration_minutes,
            "policy": self.policy.to_dict(),
            "resume_from": list(self.resume_from),
        }

    def __repr__(self) -> str:
        return (f"HyperDriveConfig(sampling={self.hyperparameter_sampling.name}, "
                f"primary_metric={self.primary_metric_name!r} "
                f"{self.primary_metric_goal.value.lower()}, max_total_runs={self.max_total_runs},"
                f" policy={self.policy!r})")
