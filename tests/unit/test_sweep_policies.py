"""Early-termination policies: which trials each cancels, and when (table-driven).

The learning curves are deterministic; every expected table below was worked out by hand from
the reference semantics (shared/reference/azureml-v1-api.md §6) as read in
``runyard.services.sweeps.policies`` — best metric up to the interval, compared with the trials
that reached that interval — and is not computed by the code under test.

Simulation: at time t each trial has logged ``min(t, len(curve))`` values, or stopped where it
was cancelled; a trial whose curve is shorter than t finished (completed). ``to_cancel`` is
called once per t; what it names is cancelled at t.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from runyard.errors import InvalidParameter
from runyard.services.sweeps.policies import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
    policy_from_dict,
    to_cancel,
)

pytestmark = pytest.mark.unit

T = 10


def _curve(f: Callable[[int], float], length: int = T) -> list[float]:
    return [f(i) for i in range(1, length + 1)]


#: accuracy-like curves (maximize); interval i = 1..10.
ACC: dict[str, list[float]] = {
    "A": _curve(lambda i: 0.80 + 0.01 * i),           # the leader
    "B": _curve(lambda i: 0.78 + 0.005 * i),          # close behind
    "C": _curve(lambda i: 0.76 + 0.004 * i),          # falls behind slowly
    "D": _curve(lambda i: 0.40 + 0.01 * i),           # hopeless
    "E": _curve(lambda i: 0.95, length=3),            # excellent, but finished at interval 3
    "F": _curve(lambda i: 0.70 if i <= 6 else 0.95),  # a late bloomer
}
#: the same curves as losses (minimize).
LOSS = {k: [1.0 - v for v in vals] for k, vals in ACC.items()}


def simulate(policy: EarlyTerminationPolicy | dict[str, object], goal: str,
             curves: dict[str, list[float]]) -> dict[int, set[str]]:
    cancelled: dict[str, int] = {}
    out: dict[int, set[str]] = {}
    for t in range(1, T + 1):
        series = {k: c[:min(t, len(c), cancelled.get(k, T + 1))] for k, c in curves.items()}
        finished = {k for k, c in curves.items() if len(c) < t} | set(cancelled)
        before = copy.deepcopy(series)
        decided = to_cancel(policy, goal, series, finished)
        assert series == before, "to_cancel must not change its input"
        assert to_cancel(policy, goal, series, finished) == decided, "must be pure"
        assert not set(decided) & finished, "a finished trial is never cancelled"
        for k in decided:
            cancelled[k] = t
        if decided:
            out[t] = set(decided)
    return out


CASES = [
    # the issue's case: at interval 5 the best is A (0.85): threshold 0.85 / 1.1 = 0.7727 cuts
    # D (0.45) and F (0.70); at 7 the threshold 0.87 / 1.1 = 0.7909 cuts C (0.788); B stays
    # within 10 % to the end. E (0.95) never reached interval 5, so it is not the best.
    ("bandit factor 0.1, delay 5", BanditPolicy(slack_factor=0.1, evaluation_interval=1,
                                                delay_evaluation=5), "maximize", ACC,
     {5: {"D", "F"}, 7: {"C"}}),
    # minimize: threshold best * 1.1; at 5 the best loss 0.15 gives 0.165: all but A go.
    ("bandit factor 0.1, minimize", BanditPolicy(slack_factor=0.1, evaluation_interval=1,
                                                 delay_evaluation=5), "minimize", LOSS,
     {5: {"B", "C", "D", "F"}}),
    # slack_amount 0.075: 0.85 - 0.075 = 0.775 at 5 (C at 0.78 survives), 0.785 at 6 (C 0.784
    # goes); the same on losses with minimize.
    ("bandit amount, maximize", BanditPolicy(slack_amount=0.075, delay_evaluation=5),
     "maximize", ACC, {5: {"D", "F"}, 6: {"C"}}),
    ("bandit amount, minimize", BanditPolicy(slack_amount=0.075, delay_evaluation=5),
     "minimize", LOSS, {5: {"D", "F"}, 6: {"C"}}),
    # evaluation_interval 2, delay 3: checks at 4, 6, 8, 10. At 4: 0.84 / 1.1 = 0.7636 cuts D
    # (0.44) and F (0.70); C (0.776) stays; at 6: 0.7818 vs C 0.784 stays; at 8: 0.80 vs C
    # 0.792 goes.
    ("bandit every 2nd interval from 3", BanditPolicy(slack_factor=0.1, evaluation_interval=2,
                                                      delay_evaluation=3), "maximize", ACC,
     {4: {"D", "F"}, 8: {"C"}}),
    # no delay: checks from interval 1, where E (0.95, running until 3) is the best: 0.8636
    # cuts everyone else, A (0.81) included.
    ("bandit without delay", BanditPolicy(slack_factor=0.1), "maximize", ACC,
     {1: {"A", "B", "C", "D", "F"}}),
    # median: at 5 the running averages over 1..5 of A, B, C, D, F are .83 .795 .772 .43 .70:
    # median .772 cuts D (best .45) and F (.70), not C (.78). At 6 only A, B, C reached it:
    # median of .835 .7975 .774 = .7975 cuts C (.784). At 7, A and B: median (.84 + .80) / 2
    # = .82 cuts B (.815).
    ("median, delay 5", MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
     "maximize", ACC, {5: {"D", "F"}, 6: {"C"}, 7: {"B"}}),
    ("median, delay 5, minimize", MedianStoppingPolicy(delay_evaluation=5), "minimize", LOSS,
     {5: {"D", "F"}, 6: {"C"}, 7: {"B"}}),
    # truncation 20 %: at 5, 5 trials reached it: floor(5 * 0.2) = 1 cut: D. Later 4 trials
    # reach each interval: floor(0.8) = 0, nobody.
    ("truncation 20 %, delay 5", TruncationSelectionPolicy(20, evaluation_interval=1,
                                                          delay_evaluation=5),
     "maximize", ACC, {5: {"D"}}),
    # truncation 50 %: at 5, 2 of 5 (D, F); at 6, 1 of 3 (C); at 7, 1 of 2 (B); then A alone.
    ("truncation 50 %, delay 5", TruncationSelectionPolicy(50, delay_evaluation=5),
     "maximize", ACC, {5: {"D", "F"}, 6: {"C"}, 7: {"B"}}),
    ("truncation 50 %, minimize", TruncationSelectionPolicy(50, delay_evaluation=5),
     "minimize", LOSS, {5: {"D", "F"}, 6: {"C"}, 7: {"B"}}),
    ("no termination", NoTerminationPolicy(), "maximize", ACC, {}),
]


@pytest.mark.parametrize(("policy", "goal", "curves", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_policy_cancels_exactly(policy: EarlyTerminationPolicy, goal: str,
                                curves: dict[str, list[float]],
                                expected: dict[int, set[str]]) -> None:
    assert simulate(policy, goal, curves) == expected
    # the stored form decides the same
    assert simulate(policy.to_dict(), goal, curves) == expected


def test_bandit_reason_names_the_numbers() -> None:
    series = {"best": [0.5, 0.6, 0.7, 0.7, 0.75, 0.8], "slow": [0.3, 0.4, 0.5, 0.55, 0.6, 0.61]}
    policy = BanditPolicy(slack_factor=0.2).to_dict()
    assert to_cancel(policy, "maximize", series, set()) == {
        "slow": "BanditPolicy: best primary metric 0.61 up to interval 6 is below 0.6667 "
                "(best 0.8 / (1 + 0.2))"}
    loss = {"best": [0.2], "slow": [0.3]}
    assert to_cancel(BanditPolicy(slack_amount=0.05), "MINIMIZE", loss, set()) == {
        "slow": "BanditPolicy: best primary metric 0.3 up to interval 1 is above 0.25 "
                "(best 0.2 + 0.05)"}


def test_bandit_uses_the_best_value_so_far() -> None:
    # "slow" dipped at interval 3 but its best up to 3 (0.79) is within 10 % of 0.8
    series = {"lead": [0.7, 0.75, 0.8], "slow": [0.79, 0.5, 0.4]}
    assert to_cancel(BanditPolicy(slack_factor=0.1), "maximize", series, set()) == {}


def test_bandit_negative_metrics_threshold_stays_on_the_worse_side() -> None:
    series = {"best": [-1.0], "near": [-1.05], "far": [-1.2]}
    assert set(to_cancel(BanditPolicy(slack_factor=0.1), "maximize", series, set())) == {"far"}
    series = {"best": [-1.0], "near": [-0.95], "far": [-0.8]}
    assert set(to_cancel(BanditPolicy(slack_factor=0.1), "minimize", series, set())) == {"far"}


def test_finished_trials_count_in_truncation_but_are_not_cancelled() -> None:
    """exclude_finished_jobs=False: a finished trial can fill the lowest slot."""
    series = {"done": [0.1] * 5, "r1": [0.5] * 5, "r2": [0.6] * 5, "r3": [0.7] * 5,
              "r4": [0.8] * 5}
    policy = TruncationSelectionPolicy(20)
    assert to_cancel(policy, "maximize", series, {"done"}) == {}
    assert set(to_cancel(policy, "maximize", series, set())) == {"done"}
    series["done"] = [0.9] * 5
    assert set(to_cancel(policy, "maximize", series, {"done"})) == {"r1"}


def test_truncation_ties_at_the_cut_off_survive() -> None:
    series = {"a": [0.5], "b": [0.5], "c": [0.9], "d": [0.9], "e": [0.9]}
    assert to_cancel(TruncationSelectionPolicy(20), "maximize", series, set()) == {}


def test_a_trial_is_judged_at_its_latest_evaluation_interval() -> None:
    """A controller that polls late judges each running trial at its latest multiple of
    evaluation_interval (>= delay), against the trials that reached that interval."""
    series = {k: v[:7] for k, v in ACC.items()}
    # judged at 6 (not 7): thresholds 0.86 / 1.1 = 0.7818: C (0.784) stays
    assert set(to_cancel(BanditPolicy(slack_factor=0.1, evaluation_interval=2,
                                      delay_evaluation=3), "maximize", series, {"E"})) == {
        "D", "F"}
    # before the delay nothing is judged
    short = {k: v[:4] for k, v in ACC.items()}
    assert to_cancel(BanditPolicy(slack_factor=0.1, delay_evaluation=5), "maximize", short,
                     set()) == {}


def test_nan_counts_as_worst() -> None:
    series = {"ok": [0.8], "nan": [float("nan")]}
    assert set(to_cancel(BanditPolicy(slack_factor=0.1), "maximize", series, set())) == {"nan"}


def test_policy_validation() -> None:
    with pytest.raises(InvalidParameter, match="exactly one"):
        BanditPolicy()
    with pytest.raises(InvalidParameter, match="exactly one"):
        BanditPolicy(slack_factor=0.1, slack_amount=0.2)
    with pytest.raises(InvalidParameter) as exc:
        BanditPolicy(slack_factor=-0.1)
    assert exc.value.field == "slack_factor"
    with pytest.raises(InvalidParameter) as exc:
        BanditPolicy(slack_factor=0.1, evaluation_interval=0)
    assert exc.value.field == "evaluation_interval"
    with pytest.raises(InvalidParameter) as exc:
        MedianStoppingPolicy(delay_evaluation=-1)
    assert exc.value.field == "delay_evaluation"
    for bad in (0, 100, 20.0, True):
        with pytest.raises(InvalidParameter) as exc:
            TruncationSelectionPolicy(bad)  # type: ignore[arg-type]
        assert exc.value.field == "truncation_percentage"
    with pytest.raises(InvalidParameter):
        to_cancel(BanditPolicy(slack_factor=0.1), "up", {}, set())
    with pytest.raises(InvalidParameter, match="unknown policy"):
        policy_from_dict({"name": "Hyperband", "properties": {}})


def test_to_dict_shapes_and_round_trip() -> None:
    cases = [
        (BanditPolicy(evaluation_interval=2, slack_factor=0.1, delay_evaluation=5),
         {"name": "Bandit", "properties": {"evaluation_interval": 2, "delay_evaluation": 5,
                                           "slack_factor": 0.1}}),
        (BanditPolicy(slack_amount=0.2),
         {"name": "Bandit", "properties": {"evaluation_interval": 1, "delay_evaluation": 0,
                                           "slack_amount": 0.2}}),
        (MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
         {"name": "MedianStopping", "properties": {"evaluation_interval": 1,
                                                   "delay_evaluation": 5}}),
        (TruncationSelectionPolicy(20, 2, 4),
         {"name": "TruncationSelection", "properties": {
             "evaluation_interval": 2, "delay_evaluation": 4, "truncation_percentage": 20,
             "exclude_finished_jobs": False}}),
        (NoTerminationPolicy(), {"name": "Default", "properties": {}}),
    ]
    for policy, expected in cases:
        assert policy.to_dict() == expected
        assert policy_from_dict(expected) == policy
    assert policy_from_dict(None) == NoTerminationPolicy()
