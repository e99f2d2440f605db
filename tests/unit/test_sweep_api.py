"""The sweep API (``runyard.sweeps`` and v1's ``azureml.train.hyperdrive``): expressions,
samplings, policies and ``HyperDriveConfig`` — every validation rule of the reference and the
JSON shapes."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from runyard.errors import InvalidParameter, UserErrorException
from runyard.runconfig import ScriptRunConfig
from runyard.sweeps import (
    BanditPolicy,
    BayesianParameterSampling,
    GridParameterSampling,
    HyperDriveConfig,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    PrimaryMetricGoal,
    RandomParameterSampling,
    TruncationSelectionPolicy,
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


# -- expressions -------------------------------------------------------------------------------

def test_expression_shapes() -> None:
    assert choice(1, 2, 3) == ["choice", [[1, 2, 3]]]
    assert choice([1, 2, 3]) == ["choice", [[1, 2, 3]]]
    assert choice(range(3)) == ["choice", [[0, 1, 2]]]
    assert choice("relu") == ["choice", [["relu"]]]
    assert choice([1, 2], [3]) == ["choice", [[[1, 2], [3]]]]
    assert randint(10) == ["randint", [10]]
    assert uniform(0.1, 0.5) == ["uniform", [0.1, 0.5]]
    assert quniform(1, 10, 2) == ["quniform", [1, 10, 2]]
    assert quniform(1, 10, 2.0) == ["quniform", [1, 10, 2]]
    assert loguniform(-6, -1) == ["loguniform", [-6, -1]]
    assert loguniform(-2, -2) == ["loguniform", [-2, -2]]
    assert qloguniform(0, 3, 1) == ["qloguniform", [0, 3, 1]]
    assert normal(0, 1) == ["normal", [0, 1]]
    assert normal(5, 0) == ["normal", [5, 0]]
    assert qnormal(10, 2, 1) == ["qnormal", [10, 2, 1]]
    assert lognormal(0, 1) == ["lognormal", [0, 1]]
    assert qlognormal(0, 1, 3) == ["qlognormal", [0, 1, 3]]
    for expr in (choice(1, "a", None, True, 0.5), uniform(0, 1), qnormal(1, 1, 1)):
        assert json.loads(json.dumps(expr)) == expr


BAD_EXPRESSIONS = [
    (lambda: choice(), "options", "at least one"),
    (lambda: choice([]), "options", "at least one"),
    (lambda: choice(range(0)), "options", "at least one"),
    (lambda: choice(object()), "options", "JSON"),
    (lambda: choice(float("nan")), "options", "JSON"),
    (lambda: randint(0), "upper", ">= 1"),
    (lambda: randint(2.5), "upper", "integer"),
    (lambda: randint(True), "upper", "integer"),
    (lambda: uniform(1, 0), "max_value", "min_value must be < max_value"),
    (lambda: uniform(1, 1), "max_value", "min_value must be < max_value"),
    (lambda: uniform("0", 1), "min_value", "finite number"),
    (lambda: uniform(0, float("inf")), "max_value", "finite number"),
    (lambda: quniform(5, 1, 1), "max_value", "<"),
    (lambda: quniform(0, 10, 0.5), "q", "integer >= 1"),
    (lambda: quniform(0, 10, 0), "q", "integer >= 1"),
    (lambda: quniform(0, 10, -2), "q", "integer >= 1"),
    (lambda: loguniform(2, 1), "max_value", "min_value must be <= max_value"),
    (lambda: qloguniform(2, 1, 1), "max_value", "<="),
    (lambda: qloguniform(0, 1, 1.5), "q", "integer"),
    (lambda: normal(0, -1), "sigma", ">= 0"),
    (lambda: normal(None, 1), "mu", "finite number"),
    (lambda: qnormal(0, 1, 0.1), "q", "integer"),
    (lambda: lognormal(0, -0.5), "sigma", ">= 0"),
    (lambda: qlognormal(0, -1, 1), "sigma", ">= 0"),
    (lambda: qlognormal(0, 1, "2"), "q", "integer"),
]


@pytest.mark.parametrize(("make", "field", "text"), BAD_EXPRESSIONS,
                         ids=[f"{i}-{f}" for i, (_, f, _t) in enumerate(BAD_EXPRESSIONS)])
def test_bad_expression_names_the_argument(make: Any, field: str, text: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        make()
    assert exc.value.field == field
    assert text in str(exc.value)
    assert isinstance(exc.value, UserErrorException)


# -- samplings ---------------------------------------------------------------------------------

def test_sampling_to_dict() -> None:
    space = {"--lr": uniform(0.01, 0.1), "--bs": choice(16, 32)}
    assert RandomParameterSampling(space, properties={"seed": 4}).to_dict() == {
        "name": "RANDOM", "parameter_space": space, "properties": {"seed": 4}}
    assert RandomParameterSampling(space).to_dict()["properties"] == {}
    assert GridParameterSampling({"--bs": choice(16, 32)}).to_dict() == {
        "name": "GRID", "parameter_space": {"--bs": ["choice", [[16, 32]]]}, "properties": {}}
    assert BayesianParameterSampling(space, {"seed": 1}).to_dict() == {
        "name": "BayesianOptimization", "parameter_space": space, "properties": {"seed": 1}}
    # hand-written lists (e.g. from YAML) are accepted and normalized
    assert RandomParameterSampling({"a": ["quniform", [0, 4, 2.0]]}).parameter_space == {
        "a": ["quniform", [0, 4, 2]]}
    every = {n: e for n, e in [("a", choice(1)), ("b", randint(3)), ("c", uniform(0, 1)),
                               ("d", quniform(0, 4, 2)), ("e", loguniform(0, 1)),
                               ("f", qloguniform(0, 2, 1)), ("g", normal(0, 1)),
                               ("h", qnormal(0, 1, 1)), ("i", lognormal(0, 1)),
                               ("j", qlognormal(0, 1, 1))]}
    assert RandomParameterSampling(every).parameter_space == every


def test_grid_refuses_a_continuous_distribution_naming_the_key() -> None:
    with pytest.raises(InvalidParameter) as exc:
        GridParameterSampling({"--bs": choice(16, 32), "--lr": uniform(0.01, 0.1)})
    assert exc.value.field == "parameter_space['--lr']"
    assert "only choice" in str(exc.value) and "uniform" in str(exc.value)


def test_bayesian_rules() -> None:
    BayesianParameterSampling({"a": choice(1, 2.5, "x"), "b": uniform(0, 1),
                               "c": quniform(0, 10, 1)})
    for expr in (normal(0, 1), loguniform(0, 1), randint(3), qnormal(0, 1, 1)):
        with pytest.raises(InvalidParameter) as exc:
            BayesianParameterSampling({"k": expr})
        assert exc.value.field == "parameter_space['k']"
    for value in (True, None, [1, 2]):
        with pytest.raises(InvalidParameter, match="int, float or str"):
            BayesianParameterSampling({"k": choice(value, 1)})


@pytest.mark.parametrize("space", [
    {}, None, [("a", choice(1))], {"": choice(1)}, {3: choice(1)}, {"a": [1, 2]},
    {"a": ["choice", [[]]]}, {"a": ["beta", [1, 2]]}, {"a": ["uniform", [0]]},
    {"a": "uniform(0, 1)"},
])
def test_bad_space(space: Any) -> None:
    with pytest.raises(InvalidParameter):
        RandomParameterSampling(space)


def test_sampling_properties() -> None:
    with pytest.raises(InvalidParameter, match="seed"):
        RandomParameterSampling({"a": choice(1)}, properties={"seed": "x"})
    with pytest.raises(InvalidParameter, match="unknown sampling properties"):
        RandomParameterSampling({"a": choice(1)}, properties={"sed": 1})
    with pytest.raises(InvalidParameter):
        RandomParameterSampling({"a": choice(1)}, properties=[("seed", 1)])  # type: ignore


# -- HyperDriveConfig --------------------------------------------------------------------------

@pytest.fixture()
def src(tmp_path: Path) -> ScriptRunConfig:
    (tmp_path / "train.py").write_text("print('hi')\n")
    return ScriptRunConfig(source_directory=tmp_path, script="train.py")


def config(src: ScriptRunConfig, **kw: Any) -> HyperDriveConfig:
    args: dict[str, Any] = dict(
        run_config=src, hyperparameter_sampling=RandomParameterSampling(
            {"--lr": uniform(0.01, 0.1)}),
        primary_metric_name="accuracy", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=20)
    args.update(kw)
    return HyperDriveConfig(**args)


def test_config_to_dict(src: ScriptRunConfig) -> None:
    cfg = config(src, policy=BanditPolicy(slack_factor=0.1, delay_evaluation=5),
                 max_concurrent_runs=4, max_duration_minutes=60)
    spec = cfg.to_dict()
    assert spec == {
        "sampling": {"name": "RANDOM", "parameter_space": {"--lr": ["uniform", [0.01, 0.1]]},
                     "properties": {}},
        "primary_metric": {"name": "accuracy", "goal": "maximize"},
        "max_total_runs": 20, "max_concurrent_runs": 4, "max_duration_minutes": 60,
        "policy": {"name": "Bandit", "properties": {"evaluation_interval": 1,
                                                    "delay_evaluation": 5,
                                                    "slack_factor": 0.1}},
        "resume_from": [],
    }
    assert json.loads(json.dumps(spec)) == spec
    assert cfg.run_config is src


def test_config_defaults(src: ScriptRunConfig) -> None:
    cfg = config(src, primary_metric_goal="minimize")
    assert cfg.max_concurrent_runs == 20  # None -> max_total_runs
    assert cfg.max_duration_minutes == 10080
    assert isinstance(cfg.policy, NoTerminationPolicy)
    assert cfg.to_dict()["policy"] == {"name": "Default", "properties": {}}
    assert cfg.to_dict()["primary_metric"]["goal"] == "minimize"
    assert config(src, max_total_runs=500).max_concurrent_runs == 100
    assert PrimaryMetricGoal.MAXIMIZE.value == "MAXIMIZE"
    assert PrimaryMetricGoal.MINIMIZE.value == "MINIMIZE"


def test_exactly_one_of_run_config_or_estimator(src: ScriptRunConfig) -> None:
    with pytest.raises(InvalidParameter, match="exactly one") as exc:
        config(src, run_config=None)
    assert isinstance(exc.value, UserErrorException)

    class Estimator:
        def _script_run_config(self) -> ScriptRunConfig:
            return src

    with pytest.raises(InvalidParameter, match="exactly one"):
        config(src, estimator=Estimator())
    cfg = config(src, run_config=None, estimator=Estimator())
    assert cfg.run_config is src
    with pytest.raises(InvalidParameter) as exc:
        config(src, run_config=None, estimator=object())
    assert exc.value.field == "estimator"

    class Broken:
        def _script_run_config(self) -> str:
            return "train.py"

    with pytest.raises(InvalidParameter, match="did not return a ScriptRunConfig"):
        config(src, run_config=None, estimator=Broken())
    with pytest.raises(InvalidParameter) as exc:
        config(src, run_config="train.py")
    assert exc.value.field == "run_config"


@pytest.mark.parametrize(("kw", "field"), [
    ({"max_total_runs": 0}, "max_total_runs"),
    ({"max_total_runs": 1001}, "max_total_runs"),
    ({"max_total_runs": 10.0}, "max_total_runs"),
    ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
    ({"max_concurrent_runs": 101}, "max_concurrent_runs"),
    ({"max_duration_minutes": 0}, "max_duration_minutes"),
    ({"max_duration_minutes": "1h"}, "max_duration_minutes"),
    ({"primary_metric_name": ""}, "primary_metric_name"),
    ({"primary_metric_goal": "up"}, "primary_metric_goal"),
    ({"policy": "bandit"}, "policy"),
    ({"hyperparameter_sampling": {"--lr": uniform(0, 1)}}, "hyperparameter_sampling"),
    ({"resume_from": 3}, "resume_from"),
])
def test_config_validation(src: ScriptRunConfig, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        config(src, **kw)
    assert exc.value.field == field


def test_max_duration_above_the_limit_warns_and_is_capped(src: ScriptRunConfig) -> None:
    with pytest.warns(UserWarning, match="max_duration_minutes=20000 is above the limit"):
        cfg = config(src, max_duration_minutes=20000)
    assert cfg.max_duration_minutes == 10080


def test_bayesian_refuses_a_termination_policy(src: ScriptRunConfig) -> None:
    bayes = BayesianParameterSampling({"--lr": uniform(0.01, 0.1)})
    for policy in (BanditPolicy(slack_factor=0.1), MedianStoppingPolicy(),
                   TruncationSelectionPolicy(10)):
        with pytest.raises(InvalidParameter) as exc:
            config(src, hyperparameter_sampling=bayes, policy=policy)
        assert exc.value.field == "policy" and "Bayesian" in str(exc.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config(src, hyperparameter_sampling=bayes, policy=NoTerminationPolicy(),
               max_concurrent_runs=4)
        config(src, hyperparameter_sampling=bayes, policy=None, max_concurrent_runs=20)


def test_bayesian_warnings(src: ScriptRunConfig) -> None:
    bayes = BayesianParameterSampling({"--lr": uniform(0.01, 0.1), "--bs": choice(16, 32)})
    with pytest.warns(UserWarning, match="at least 20 runs per parameter") as rec:
        config(src, hyperparameter_sampling=bayes, max_total_runs=39, max_concurrent_runs=2)
    assert len(rec) == 1
    with pytest.warns(UserWarning, match="max_concurrent_runs=21") as rec:
        config(src, hyperparameter_sampling=bayes, max_total_runs=40, max_concurrent_runs=21)
    assert len(rec) == 1


def test_resume_from_takes_run_ids(src: ScriptRunConfig) -> None:
    class Sweep:
        id = "HD_1"

    assert config(src, resume_from="HD_0").resume_from == ["HD_0"]
    assert config(src, resume_from=[Sweep(), "HD_0"]).to_dict()["resume_from"] == ["HD_1",
                                                                                   "HD_0"]


# -- v1 names and import cost ------------------------------------------------------------------

def test_v1_paths_give_the_same_objects() -> None:
    from runyard.compat.azureml.train import hyperdrive
    from runyard.compat.azureml.train.hyperdrive import parameter_expressions, policy, sampling
    from runyard.compat.azureml.train.hyperdrive.run import PrimaryMetricGoal as Goal
    from runyard.compat.azureml.train.hyperdrive.runconfig import (
        HyperDriveConfig as Config,
    )

    assert hyperdrive.HyperDriveConfig is Config is HyperDriveConfig
    assert Goal is PrimaryMetricGoal
    assert parameter_expressions.choice is choice is hyperdrive.choice
    assert policy.BanditPolicy is BanditPolicy and sampling.GridParameterSampling is \
        GridParameterSampling


def test_hyperdrive_run_config_2018_signature(src: ScriptRunConfig) -> None:
    from runyard.compat.azureml.train.hyperdrive import HyperDriveRunConfig

    class Estimator:
        def _script_run_config(self) -> ScriptRunConfig:
            return src

    cfg = HyperDriveRunConfig(estimator=Estimator(),
                              hyperparameter_sampling=RandomParameterSampling(
                                  {"learning_rate": loguniform(-6, -1)}),
                              policy=BanditPolicy(evaluation_interval=2, slack_factor=0.1),
                              primary_metric_name="best_val_acc",
                              primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                              max_total_runs=8, max_concurrent_runs=4)
    assert isinstance(cfg, HyperDriveConfig) and cfg.run_config is src


def test_importing_the_api_stays_cheap() -> None:
    code = ("import sys, runyard, runyard.sweeps as s\n"
            "s.HyperDriveConfig, s.choice(1), s.BanditPolicy(slack_factor=0.1)\n"
            "import runyard.compat.azureml.train.hyperdrive\n"
            "print(sorted(m for m in ('optuna', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_nul_in_a_value_or_a_key_is_refused() -> None:
    # each becomes a command-line argument of a trial, which no NUL can be part of
    with pytest.raises(InvalidParameter, match="NUL"):
        choice("a\x00b")
    with pytest.raises(InvalidParameter, match="NUL"):
        RandomParameterSampling({"--x\x00": choice(1)})
