"""The search adapter (Optuna): repeatable with a seed, grid exhaustion, replay from history,
constant liar, and v1's value mapping."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from runyard.entities import RunStatus
from runyard.errors import InvalidParameter, NotSupported
from runyard.services.sweeps.search import Search, suggest_next
from runyard.sweeps import (
    BayesianParameterSampling,
    GridParameterSampling,
    RandomParameterSampling,
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

pytestmark = pytest.mark.unit

pytest.importorskip("optuna")


def random_space(seed: int | None = 7) -> dict[str, Any]:
    props = {"seed": seed} if seed is not None else None
    return RandomParameterSampling({
        "--lr": loguniform(-7, -1), "--bs": choice(16, 32, 64), "--m": normal(0.5, 0.1),
        "--units": quniform(8, 64, 8), "--layers": randint(4), "--drop": uniform(0, 0.5),
        "--ln": lognormal(0, 1), "--qn": qnormal(10, 3, 2), "--qln": qlognormal(1, 1, 1),
        "--qlu": qloguniform(0, 3, 1), "--act": choice(["relu", "tanh"], "x"),
    }, properties=props).to_dict()


def bayes_space(seed: int = 3) -> dict[str, Any]:
    return BayesianParameterSampling({"--x": uniform(-5.0, 5.0), "--k": quniform(0, 10, 1),
                                      "--c": choice("a", "b", "c")},
                                     properties={"seed": seed}).to_dict()


def objective(p: dict[str, Any]) -> float:
    if "--x" not in p:  # the random space
        return float(p["--drop"] - p["--layers"])
    return -((p["--x"] - 1.0) ** 2) - abs(p["--k"] - 3) - (p["--c"] != "b")


def run_sequence(search: Search, rounds: int, width: int) -> list[dict[str, Any]]:
    """Suggest ``width`` at a time, tell them, ``rounds`` times."""
    seen: list[dict[str, Any]] = []
    for _ in range(rounds):
        batch = search.suggest(width)
        seen += batch
        for p in batch:
            search.tell(p, objective(p))
    return seen


def test_values_follow_v1_semantics() -> None:
    search = Search(random_space(), "maximize")
    for p in search.suggest(200):
        assert list(p) == list(random_space()["parameter_space"])  # keys as in the space
        assert math.exp(-7) <= p["--lr"] <= math.exp(-1)  # bounds in log space
        assert p["--bs"] in (16, 32, 64) and type(p["--bs"]) is int
        assert p["--act"] in (["relu", "tanh"], "x")
        assert isinstance(p["--units"], int) and p["--units"] % 8 == 0
        assert 8 <= p["--units"] <= 64
        assert p["--layers"] in range(4)
        assert 0 <= p["--drop"] <= 0.5
        assert p["--ln"] > 0 and isinstance(p["--m"], float)
        assert isinstance(p["--qn"], int) and p["--qn"] % 2 == 0
        assert isinstance(p["--qlu"], int) and 1 <= p["--qlu"] <= round(math.exp(3))
        json.dumps(p)
    values = [p["--m"] for p in Search(random_space(), "maximize").suggest(500)]
    mean = sum(values) / len(values)
    assert abs(mean - 0.5) < 0.02  # normal(0.5, 0.1) drawn from the seeded stream


@pytest.mark.parametrize("space", [random_space, bayes_space], ids=["random", "bayesian"])
def test_same_seed_same_sequence(space: Any) -> None:
    first = run_sequence(Search(space(), "maximize"), rounds=8, width=3)
    second = run_sequence(Search(space(), "maximize"), rounds=8, width=3)
    assert first == second
    other = run_sequence(Search(space(11), "maximize"), rounds=8, width=3)
    assert other != first
    # the explicit seed argument overrides the sampling's
    assert run_sequence(Search(space(11), "maximize", seed=space()["properties"]["seed"]),
                        rounds=8, width=3) == first


def test_without_a_seed_one_is_drawn_and_kept() -> None:
    a = Search(random_space(None), "maximize")
    assert isinstance(a.seed, int)
    b = Search(random_space(None), "maximize", seed=a.seed)
    assert a.suggest(5) == b.suggest(5)


def test_grid_enumerates_each_point_once_then_is_exhausted() -> None:
    grid = GridParameterSampling({"--a": choice(1, 2), "--b": choice("x", "y", "z")}).to_dict()
    search = Search(grid, "maximize")
    assert search.grid_size == 6 and not search.exhausted()
    first = search.suggest(4)
    assert first == [{"--a": 1, "--b": "x"}, {"--a": 1, "--b": "y"}, {"--a": 1, "--b": "z"},
                     {"--a": 2, "--b": "x"}]
    rest = search.suggest(4)
    assert rest == [{"--a": 2, "--b": "y"}, {"--a": 2, "--b": "z"}]
    assert search.exhausted()
    assert search.suggest(3) == []
    # a failed point is not retried
    search.tell(first[0], None)
    assert search.suggest(1) == [] and search.exhausted()


def test_grid_replay_skips_finished_and_running_points() -> None:
    grid = GridParameterSampling({"--a": choice(1, 2, 3)}).to_dict()
    history = [({"--a": 2}, 0.5, RunStatus.COMPLETED), ({"--a": 1}, None, "Running")]
    assert suggest_next(grid, "maximize", None, history, 5) == [{"--a": 3}]


def _history(search: Search, told: dict[str, float | None]) -> list[tuple[Any, Any, Any]]:
    out = []
    for params, running in search.trials:
        key = json.dumps(params, sort_keys=True)
        if running:
            out.append((params, None, RunStatus.RUNNING))
        elif told[key] is None:
            out.append((params, None, RunStatus.FAILED))
        else:
            out.append((params, told[key], RunStatus.COMPLETED))
    return out


@pytest.mark.parametrize("space", [random_space, bayes_space], ids=["random", "bayesian"])
def test_replay_from_history_continues_exactly(space: Any) -> None:
    """A controller killed mid-sweep and rebuilt from the stored trials (finished and running)
    suggests what the uninterrupted search would have, and nothing it already suggested."""
    original = Search(space(), "maximize")
    told: dict[str, float | None] = {}
    for i, p in enumerate(original.suggest(14)):
        if i < 11:  # three stay running
            value = None if i == 4 else objective(p)
            original.tell(p, value)
            told[json.dumps(p, sort_keys=True)] = value
    history = _history(original, told)
    assert [s for *_, s in history].count(RunStatus.RUNNING) == 3

    rebuilt = Search.from_history(space(), "maximize", None, history)
    assert rebuilt.trials == original.trials
    nxt = original.suggest(4)
    assert rebuilt.suggest(4) == nxt
    assert suggest_next(space(), "maximize", None, history, 4) == nxt
    seen = {json.dumps(p, sort_keys=True) for p, _ in original.trials[:14]}
    assert not seen & {json.dumps(p, sort_keys=True) for p in nxt}


def test_constant_liar_spreads_concurrent_suggestions() -> None:
    search = Search(bayes_space(), "maximize")
    run_sequence(search, rounds=12, width=1)  # past TPE's random start-up trials
    batch = search.suggest(6)
    keys = {json.dumps(p, sort_keys=True) for p in batch}
    assert len(keys) == 6
    assert sum(running for _, running in search.trials) == 6
    # the running trials the caller reports are known already: nothing is added twice
    search.suggest(0, running_params=batch)
    assert sum(running for _, running in search.trials) == 6
    # ones it did not know become running trials
    search.suggest(0, running_params=[*batch, {"--x": 0.0, "--k": 1, "--c": "a"}])
    assert sum(running for _, running in search.trials) == 7


def test_tell_of_unknown_params_adds_a_finished_trial() -> None:
    search = Search(bayes_space(), "minimize")
    search.tell({"--x": 0.5, "--k": 2, "--c": "a"}, 1.5)
    search.tell({"--x": 9.0, "--k": 2, "--c": "zz"}, None)  # off the space: still recorded
    assert search.trials == [({"--x": 0.5, "--k": 2, "--c": "a"}, False),
                             ({"--x": 9.0, "--k": 2, "--c": "zz"}, False)]
    assert len(search.suggest(2)) == 2


def test_bad_input() -> None:
    with pytest.raises(InvalidParameter, match="unknown trial state"):
        Search.from_history(bayes_space(), "maximize", None, [({"--x": 1}, 1.0, "Exploded")])
    with pytest.raises(InvalidParameter):
        Search(bayes_space(), "upwards")
    with pytest.raises(InvalidParameter, match="unknown sampling"):
        Search({"name": "HYPERBAND", "parameter_space": {"a": choice(1)}})
    with pytest.raises(InvalidParameter, match="grid"):
        Search({"name": "GRID", "parameter_space": {"a": uniform(0, 1)}})
    with pytest.raises(InvalidParameter):
        Search(random_space()).suggest(-1)


def test_without_optuna_says_how_to_install_it() -> None:
    code = ("import sys; sys.modules['optuna'] = None\n"
            "from runyard.services.sweeps.search import Search\n"
            "from runyard.sweeps import RandomParameterSampling, GridParameterSampling, choice\n"
            "from runyard.errors import NotSupported\n"
            "g = Search(GridParameterSampling({'a': choice(1, 2)}).to_dict())\n"
            "assert g.suggest(5) == [{'a': 1}, {'a': 2}]\n"
            "try:\n"
            "    Search(RandomParameterSampling({'a': choice(1, 2)}).to_dict())\n"
            "except NotSupported as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "sweeps need optuna" in out and "runyard[sweeps]" in out
    assert issubclass(NotSupported, Exception)
