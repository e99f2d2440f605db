"""Early-termination policies (Azure ML v1 HyperDrive) and their pure decision function.

The classes carry v1's constructors, validation and ``to_dict()``
(``{"name": "Bandit"|"MedianStopping"|"TruncationSelection"|"Default", "properties": {...}}``);
:func:`to_cancel` decides, from the logged primary-metric series alone, which running trials
to terminate now. It is a pure function of its arguments; the caller cancels each trial once.

How the reference (shared/reference/azureml-v1-api.md §6) is read here:

- **Intervals.** Each ``run.log(primary_metric, v)`` is one interval: ``series[t][i]`` is trial
  ``t``'s value at interval ``i + 1``. A trial *reached* interval ``s`` when it logged at least
  ``s`` values.
- **When a policy applies.** At every interval ``s`` that is a multiple of
  ``evaluation_interval`` and ``s >= delay_evaluation`` (so ``delay_evaluation=5`` first checks
  at interval 5, as v1's docs say: "applied at every interval starting at evaluation interval
  5"; ``delay_evaluation=0`` first checks at ``evaluation_interval``).
- **Which interval a running trial is judged at.** Its latest such interval: the largest
  ``s <= len(series[t])`` satisfying the rule above (none yet: it is not judged). Every trial
  that reached ``s`` takes part in the comparison, running or finished (v1's
  ``exclude_finished_jobs=False``); a trial in ``finished`` (completed, failed or already
  cancelled) is never cancelled. A controller that polls less often than the script logs skips
  the checks in between, as v1's service did between its own polls.
- **A trial's metric at s** is its best value over intervals ``1..s`` ("best metric at the
  interval"); best means highest for ``maximize``, lowest for ``minimize``. A NaN counts as the
  worst possible value.
- **Bandit.** ``best`` = the best of those metrics over the trials that reached ``s``. With
  ``slack_factor``, maximize: cancel when metric < ``best / (1 + slack_factor)``; minimize:
  cancel when metric > ``best * (1 + slack_factor)``. With ``slack_amount``: metric <
  ``best - slack_amount`` (maximize), > ``best + slack_amount`` (minimize). *Extension:* v1 gives
  the factor rule for positive metrics only; for a negative ``best`` the threshold is mirrored
  (maximize: ``best * (1 + f)``, minimize: ``best / (1 + f)``) so it is always on the worse side.
- **Median stopping.** For each trial that reached ``s`` (the judged one included), its running
  average over intervals ``1..s``; cancel when the judged trial's metric (best up to ``s``) is
  strictly worse than the median of those averages (``statistics.median``: the mean of the two
  middle values for an even count).
- **Truncation selection.** Rank the metrics at ``s`` of the ``n`` trials that reached ``s``;
  the lowest ``floor(n * truncation_percentage / 100)`` are cut, and a running trial among them
  is cancelled when its metric is strictly worse than the best metric not cut (ties with the
  cut-off survive).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from runyard.errors import InvalidParameter


def _int(field: str, value: Any, lo: int, hi: int | None = None) -> int:
    if (not isinstance(value, int) or isinstance(value, bool) or value < lo
            or (hi is not None and value > hi)):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise InvalidParameter(field, f"must be an integer {bound}, got {value!r}")
    return value


def _slack(field: str, value: Any) -> float | int:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise InvalidParameter(field, f"must be a number >= 0, got {value!r}")
    return value


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class EarlyTerminationPolicy:
    """Base of the early-termination policies (v1 name)."""

    _name = ""

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        self.evaluation_interval = _int("evaluation_interval", evaluation_interval, 1)
        self.delay_evaluation = _int("delay_evaluation", delay_evaluation, 0)

    @property
    def name(self) -> str:
        """The policy's v1 name (``Bandit``, ``MedianStopping``, ...)."""
        return self._name

    def _properties(self) -> dict[str, Any]:
        return {"evaluation_interval": self.evaluation_interval,
                "delay_evaluation": self.delay_evaluation}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form v1 stored: ``{"name": ..., "properties": {...}}``."""
        return {"name": self._name, "properties": self._properties()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EarlyTerminationPolicy) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._properties().items()
                         if k != "exclude_finished_jobs")
        return f"{type(self).__name__}({args})"

    # -- decision ----------------------------------------------------------------------------

    def _interval(self, length: int) -> int | None:
        """The latest evaluation interval a trial with ``length`` values reached."""
        s = length - length % self.evaluation_interval
        return s if s >= 1 and s >= self.delay_evaluation else None

    def _judge(self, goal: str, s: int, metric: float, scores: list[float],
               averages: list[float]) -> str | None:
        """The reason to cancel a trial whose metric at ``s`` is ``metric`` (None: keep)."""
        return None

    def decide(self, goal: str, series: Mapping[str, Sequence[float]],
               finished: Collection[str]) -> dict[str, str]:
        """``{trial_id: reason}`` for the running trials to cancel now (see the module doc)."""
        goal = _goal(goal)
        if type(self)._judge is EarlyTerminationPolicy._judge:
            return {}
        clean = {t: [_sanitize(v, goal) for v in vals] for t, vals in series.items()}
        by_interval: dict[int, tuple[list[float], list[float]]] = {}
        out: dict[str, str] = {}
        for trial in sorted(clean):
            if trial in finished:
                continue
            s = self._interval(len(clean[trial]))
            if s is None:
                continue
            if s not in by_interval:
                reached = [vals[:s] for vals in clean.values() if len(vals) >= s]
                by_interval[s] = ([_best(v, goal) for v in reached],
                                  [_mean(v) for v in reached])
            scores, averages = by_interval[s]
            reason = self._judge(goal, s, _best(clean[trial][:s], goal), scores, averages)
            if reason is not None:
                out[trial] = reason
        return out


def _goal(goal: Any) -> str:
    text = str(getattr(goal, "value", goal)).lower()
    if text not in ("maximize", "minimize"):
        raise InvalidParameter("goal", f"expected 'maximize' or 'minimize', got {goal!r}")
    return text


def _sanitize(value: Any, goal: str) -> float:
    v = float(value)
    if math.isnan(v):
        return -math.inf if goal == "maximize" else math.inf
    return v


def _best(values: Sequence[float], goal: str) -> float:
    return max(values) if goal == "maximize" else min(values)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _worse(a: float, b: float, goal: str) -> bool:
    """True when ``a`` is strictly worse than ``b``."""
    return a < b if goal == "maximize" else a > b


class BanditPolicy(EarlyTerminationPolicy):
    """Cancel runs whose best metric is not within a slack of the best run's at the interval.

    Exactly one of ``slack_factor`` (a ratio) or ``slack_amount`` (an absolute difference).
    """

    _name = "Bandit"

    def __init__(self, evaluation_interval: int = 1, slack_factor: float | None = None,
                 slack_amount: float | None = None, delay_evaluation: int = 0) -> None:
        super().__init__(evaluation_interval, delay_evaluation)
        if (slack_factor is None) == (slack_amount is None):
            raise InvalidParameter("slack_factor", "give exactly one of slack_factor (a ratio, "
                                   "e.g. 0.1) or slack_amount (an absolute difference)")
        self.slack_factor = (None if slack_factor is None
                             else _slack("slack_factor", slack_factor))
        self.slack_amount = (None if slack_amount is None
                             else _slack("slack_amount", slack_amount))

    def _properties(self) -> dict[str, Any]:
        props = super()._properties()
        if self.slack_factor is not None:
            props["slack_factor"] = self.slack_factor
        else:
            props["slack_amount"] = self.slack_amount
        return props

    def _judge(self, goal: str, s: int, metric: float, scores: list[float],
               averages: list[float]) -> str | None:
        best = _best(scores, goal)
        if self.slack_factor is not None:
            f = self.slack_factor
            grow = (goal == "maximize") == (best < 0)  # move towards worse
            threshold = best * (1 + f) if grow else best / (1 + f)
            how = f"best {_fmt(best)} {'*' if grow else '/'} (1 + {f:g})"
        else:
            a = float(self.slack_amount or 0)
            threshold = best - a if goal == "maximize" else best + a
            how = f"best {_fmt(best)} {'-' if goal == 'maximize' else '+'} {a:g}"
        if not _worse(metric, threshold, goal):
            return None
        side = "below" if goal == "maximize" else "above"
        return (f"BanditPolicy: best primary metric {_fmt(metric)} up to interval {s} is "
                f"{side} {_fmt(threshold)} ({how})")


class MedianStoppingPolicy(EarlyTerminationPolicy):
    """Cancel runs whose best metric is worse than the median of all runs' running averages."""

    _name = "MedianStopping"

    def _judge(self, goal: str, s: int, metric: float, scores: list[float],
               averages: list[float]) -> str | None:
        median = statistics.median(averages)
        if not _worse(metric, median, goal):
            return None
        side = "below" if goal == "maximize" else "above"
        return (f"MedianStoppingPolicy: best primary metric {_fmt(metric)} up to interval {s} "
                f"is {side} the median {_fmt(median)} of the running averages of "
                f"{len(averages)} runs")


class TruncationSelectionPolicy(EarlyTerminationPolicy):
    """Cancel the lowest ``truncation_percentage`` % of runs at each evaluation interval."""

    _name = "TruncationSelection"

    def __init__(self, truncation_percentage: int, evaluation_interval: int = 1,
                 delay_evaluation: int = 0) -> None:
        super().__init__(evaluation_interval, delay_evaluation)
        self.truncation_percentage = _int("truncation_percentage", truncation_percentage, 1, 99)

    def _properties(self) -> dict[str, Any]:
        props = super()._properties()
        props["truncation_percentage"] = self.truncation_percentage
        props["exclude_finished_jobs"] = False
        return props

    def _judge(self, goal: str, s: int, metric: float, scores: list[float],
               averages: list[float]) -> str | None:
        n = len(scores)
        cut = n * self.truncation_percentage // 100
        if cut == 0:
            return None
        ranked = sorted(scores, reverse=goal == "minimize")  # worst first
        cutoff = ranked[cut]
        if not _worse(metric, cutoff, goal):
            return None
        return (f"TruncationSelectionPolicy: best primary metric {_fmt(metric)} up to interval "
                f"{s} is in the lowest {self.truncation_percentage}% of {n} runs (cut-off "
                f"{_fmt(cutoff)})")


class NoTerminationPolicy(EarlyTerminationPolicy):
    """No early termination: every run goes to the end (the default)."""

    _name = "Default"

    def __init__(self) -> None:
        super().__init__()

    def _properties(self) -> dict[str, Any]:
        return {}


def policy_from_dict(data: Mapping[str, Any] | None) -> EarlyTerminationPolicy:
    """Rebuild a policy from its ``to_dict()`` (``None``: no termination)."""
    if data is None:
        return NoTerminationPolicy()
    if not isinstance(data, Mapping):
        raise InvalidParameter("policy", f"expected a policy dict, got {data!r}")
    props = dict(data.get("properties") or {})
    name = data.get("name")
    if name == "Default":
        return NoTerminationPolicy()
    if name == "TruncationSelection":
        props.pop("exclude_finished_jobs", None)
    classes: dict[str, type[EarlyTerminationPolicy]] = {
        "Bandit": BanditPolicy, "MedianStopping": MedianStoppingPolicy,
        "TruncationSelection": TruncationSelectionPolicy}
    cls = classes.get(str(name))
    if cls is None:
        raise InvalidParameter("policy", f"unknown policy {name!r}; use Bandit, "
                               f"MedianStopping, TruncationSelection or Default")
    try:
        return cls(**props)
    except TypeError as exc:
        raise InvalidParameter("policy", f"bad properties for {name}: {exc}") from None


def to_cancel(policy: Mapping[str, Any] | EarlyTerminationPolicy | None, goal: str,
              series: Mapping[str, Sequence[float]], finished: Collection[str]
              ) -> dict[str, str]:
    """``{trial_id: reason}``: the running trials (not in ``finished``) to terminate now.

    ``policy``: a policy or its ``to_dict()``; ``goal``: ``"maximize"`` or ``"minimize"``;
    ``series``: each trial's logged primary-metric values (index i = interval i + 1);
    ``finished``: the trials that ended (never cancelled, but they count in comparisons).
    """
    p = policy if isinstance(policy, EarlyTerminationPolicy) else policy_from_dict(policy)
    return p.decide(goal, series, finished)
