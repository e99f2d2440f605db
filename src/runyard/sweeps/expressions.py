"""Parameter expressions (Azure ML v1 ``azureml.train.hyperdrive.parameter_expressions``).

Each returns v1's JSON-able list, e.g. ``uniform(0.0, 1.0) == ["uniform", [0.0, 1.0]]``, and
checks its arguments (numeric, ``min_value < max_value`` for uniform/quniform, ``<=`` for the log
family, ``sigma >= 0``, integral ``q``, ``randint`` upper >= 1, a non-empty ``choice``): a bad
one raises :class:`runyard.errors.InvalidParameter` naming the argument and the fix. The
sampled values follow v1 (see :mod:`runyard.services.sweeps.search`): ``loguniform``'s bounds
are in log space (the value is ``exp(uniform(min_value, max_value))``); quantized values are
``round(x / q) * q``. An integral float ``q`` (``2.0``) is stored as the int ``2``.
"""

from __future__ import annotations

from typing import Any

from runyard.errors import InvalidParameter
from runyard.services.sweeps.search import validate_expression

__all__ = ["choice", "lognormal", "loguniform", "normal", "qlognormal", "qloguniform",
           "qnormal", "quniform", "randint", "uniform"]


def _check(name: str, args: list[Any]) -> list[Any]:
    return validate_expression([name, args])


def choice(*options: Any) -> list[Any]:
    """One of ``options``: ``choice(16, 32, 64)``, ``choice([16, 32, 64])`` or
    ``choice(range(1, 5))``."""
    if len(options) == 1 and isinstance(options[0], (list, tuple, range)):
        values = list(options[0])
    else:
        values = list(options)
    if not values:
        raise InvalidParameter("options", "choice: give at least one option, e.g. "
                               "choice(16, 32, 64)")
    return _check("choice", [values])


def randint(upper: int) -> list[Any]:
    """An integer in ``[0, upper)``."""
    return _check("randint", [upper])


def uniform(min_value: float, max_value: float) -> list[Any]:
    """A float uniformly between ``min_value`` and ``max_value``."""
    return _check("uniform", [min_value, max_value])


def quniform(min_value: float, max_value: float, q: int) -> list[Any]:
    """``round(uniform(min_value, max_value) / q) * q``."""
    return _check("quniform", [min_value, max_value, q])


def loguniform(min_value: float, max_value: float) -> list[Any]:
    """``exp(uniform(min_value, max_value))``: the bounds are natural logarithms."""
    return _check("loguniform", [min_value, max_value])


def qloguniform(min_value: float, max_value: float, q: int) -> list[Any]:
    """``round(exp(uniform(min_value, max_value)) / q) * q``."""
    return _check("qloguniform", [min_value, max_value, q])


def normal(mu: float, sigma: float) -> list[Any]:
    """A float from a normal distribution with mean ``mu`` and standard deviation ``sigma``."""
    return _check("normal", [mu, sigma])


def qnormal(mu: float, sigma: float, q: int) -> list[Any]:
    """``round(normal(mu, sigma) / q) * q``."""
    return _check("qnormal", [mu, sigma, q])


def lognormal(mu: float, sigma: float) -> list[Any]:
    """``exp(normal(mu, sigma))``."""
    return _check("lognormal", [mu, sigma])


def qlognormal(mu: float, sigma: float, q: int) -> list[Any]:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    return _check("qlognormal", [mu, sigma, q])

