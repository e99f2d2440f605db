"""Hyperparameter samplings (Azure ML v1 ``azureml.train.hyperdrive.sampling``).

``RandomParameterSampling`` (any expression), ``GridParameterSampling`` (only ``choice``: every
combination once) and ``BayesianParameterSampling`` (``choice``, ``uniform``, ``quniform``; choice
values int, float or str; TPE). ``properties={"seed": n}`` makes random and Bayesian sampling
repeatable (an extension for Bayesian, whose v1 signature had no properties); no other
property is accepted (v1 ignored unknown ones; here a typo is an error).

Space keys are written as the script's command-line options (``"--lr"``): a child run gets
``--lr 0.01``. ``to_dict()`` gives v1's JSON form ``{"name", "parameter_space", "properties"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runyard.errors import InvalidParameter
from runyard.services.sweeps.search import validate_space

__all__ = ["BayesianParameterSampling", "GridParameterSampling", "HyperParameterSampling",
           "RandomParameterSampling"]


class HyperParameterSampling:
    """Base of the samplings: a name, a parameter space and properties."""

    def __init__(self, name: str, parameter_space: Mapping[str, Any],
                 properties: Mapping[str, Any] | None = None) -> None:
        self._name = name
        self._parameter_space = validate_space(parameter_space, name)
        self._properties = _properties(properties)

    @property
    def name(self) -> str:
        """v1's sampling name: ``RANDOM``, ``GRID`` or ``BayesianOptimization``."""
        return self._name

    @property
    def parameter_space(self) -> dict[str, list[Any]]:
        """The (validated) space: parameter name -> expression."""
        return {k: [v[0], list(v[1])] for k, v in self._parameter_space.items()}

    @property
    def properties(self) -> dict[str, Any]:
        """The sampling's properties (``{"seed": n}`` or empty)."""
        return dict(self._properties)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "parameter_space": {...}, "properties": {...}}``."""
        return {"name": self._name, "parameter_space": self.parameter_space,
                "properties": self.properties}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._parameter_space!r})"


def _properties(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    if properties is None:
        return {}
    if not isinstance(properties, Mapping):
        raise InvalidParameter("properties", f"expected a dict such as {{'seed': 42}}, got "
                               f"{properties!r}")
    unknown = sorted(str(k) for k in properties if k != "seed")
    if unknown:
        raise InvalidParameter("properties", f"unknown sampling properties {unknown}; only "
                               f"'seed' is supported")
    seed = properties.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise InvalidParameter("properties", f"seed must be an integer >= 0, got {seed!r}")
    return dict(properties)


class RandomParameterSampling(HyperParameterSampling):
    """Each trial draws every parameter at random; any expression is allowed."""

    def __init__(self, parameter_space: Mapping[str, Any],
                 properties: Mapping[str, Any] | None = None) -> None:
        super().__init__("RANDOM", parameter_space, properties)


class GridParameterSampling(HyperParameterSampling):
    """Every combination of the ``choice`` values, each once (then the space is exhausted)."""

    def __init__(self, parameter_space: Mapping[str, Any]) -> None:
        super().__init__("GRID", parameter_space)


class BayesianParameterSampling(HyperParameterSampling):
    """Bayesian optimization (TPE): ``choice``, ``uniform`` and ``quniform`` only, and no
    early-termination policy (``HyperDriveConfig`` checks that)."""

    def __init__(self, parameter_space: Mapping[str, Any],
                 properties: Mapping[str, Any] | None = None) -> None:
        super().__init__("BayesianOptimization", parameter_space, properties)
