"""Parameter expressions and the search adapter (Optuna) behind a sweep.

Parameter expressions are Azure ML v1's JSON-able lists (``["uniform", [0.0, 1.0]]``);
:func:`validate_expression` checks one and :func:`validate_space` a whole parameter space, for
the SDK constructors and for specs read back from storage alike.

:class:`Search` turns a sampling spec (``{"name": "RANDOM"|"GRID"|"BayesianOptimization",
"parameter_space": {...}, "properties": {"seed": n}}``) into parameter sets:

- **RANDOM**: Optuna's ``RandomSampler``; **BayesianOptimization**: Optuna's ``TPESampler`` with
  ``constant_liar=True`` (running trials count as bad results, so concurrent suggestions spread
  out). Optuna is imported lazily, only when such a search is built.
- **GRID**: every combination of the ``choice`` values, in the order of the space's keys
  (``itertools.product``: the last key varies fastest), each once. *Divergence from using
  Optuna's* ``GridSampler``: that sampler assigns grid points by trial number and keeps its visit
  state in private trial attributes, so replaying a stored history into it would depend on its
  internals; the grid is a plain enumeration here (no search algorithm is involved) and needs no
  Optuna.

Determinism and resumption. The k-th suggestion (k = trials known so far, finished or running)
is drawn by a sampler seeded with ``mix(seed, k)``, so it is a pure function of the seed and the
trials before it: the same seed gives the same sequence twice, and :meth:`Search.from_history`
(the stored trials replayed into a fresh in-memory study, in suggestion order) continues exactly
where a killed controller stopped. Without a seed one is drawn and kept in :attr:`Search.seed`;
a controller should store it with the sweep.

Value mapping (v1 semantics; Optuna has no normal distribution and no log-space bounds)::

    expression            Optuna distribution (internal value x)  value given to the script
    choice(options)       Categorical over option indexes         ``options[x]``
    randint(upper)        Int(0, upper - 1)                       ``x`` ([0, upper))
    uniform(lo, hi)       Float(lo, hi)                           ``x``
    quniform(lo, hi, q)   Float(lo, hi); Bayesian: Int(k range)   ``round(x / q) * q``; ``k * q``
    loguniform(lo, hi)    Float(lo, hi) (bounds in log space)     ``exp(x)``
    qloguniform(lo,hi,q)  Float(lo, hi)                           ``round(exp(x) / q) * q`` (an int)
    normal(mu, sigma)     none: ``random.Random(mix(seed, k))``   ``gauss(mu, sigma)``
    qnormal(mu, sigma, q) none (as normal)                        ``round(gauss / q) * q`` (an int)
    lognormal(mu, sigma)  none (as normal)                        ``exp(gauss(mu, sigma))``
    qlognormal(mu,sig,q)  none (as normal)                        ``round(exp(gauss) / q) * q``

``q`` is integral (the reference's rule), so quantized values are Python ints (``round`` of a
float is an int in Python), which an ``argparse`` ``type=int`` accepts. The normal family is only
allowed with random sampling, which needs no model of them. When a stored value is replayed, the
internal value is recovered by the inverse mapping (``log`` for the log family), clipped to the
bounds. For Bayesian sampling ``quniform`` is an integer distribution over the multiples ``k``
of ``q`` in ``[round(lo / q), round(hi / q)]`` (the values ``round(uniform / q) * q`` can take,
each equally likely instead of the edges at half weight), so a stored value maps back to exactly
what TPE saw and a replayed search continues exactly; random sampling keeps v1's
uniform-then-round (its draws do not depend on the history).
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
import random
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from runyard.errors import InvalidParameter, NotSupported

#: expression name -> its argument names, in v1's order.
EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "choice": ("options",),
    "randint": ("upper",),
    "uniform": ("min_value", "max_value"),
    "quniform": ("min_value", "max_value", "q"),
    "loguniform": ("min_value", "max_value"),
    "qloguniform": ("min_value", "max_value", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"),
    "qlognormal": ("mu", "sigma", "q"),
}

#: sampling name -> the expressions it supports (None: all).
SAMPLINGS: dict[str, frozenset[str] | None] = {
    "RANDOM": None,
    "GRID": frozenset({"choice"}),
    "BayesianOptimization": frozenset({"choice", "uniform", "quniform"}),
}

_NORMAL_FAMILY = frozenset({"normal", "qnormal", "lognormal", "qlognormal"})
_RUNNING = frozenset({"notstarted", "queued", "preparing", "starting", "running",
                      "finalizing", "notresponding"})
_FAILED = frozenset({"failed", "fail"})
_FINISHED = frozenset({"completed", "complete", "canceled", "pruned"}) | _FAILED


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _number(field: str | None, name: str, arg: str, value: Any) -> float | int:
    if not _is_number(value):
        raise InvalidParameter(field or arg, f"{name}: {arg} must be a finite number, got "
                               f"{type(value).__name__} {value!r}")
    return value  # type: ignore[no-any-return]


def _q(field: str | None, name: str, value: Any) -> int:
    """v1's "integral q": an int >= 1, or a float with an integral value (returned as an int)."""
    if not _is_number(value) or value != int(value) or value < 1:
        raise InvalidParameter(field or "q", f"{name}: q must be an integer >= 1 (values are "
                               f"rounded to multiples of q), got {value!r}; use e.g. q=1 and "
                               f"scale the value in the script")
    return int(value)


def _json_value(field: str | None, value: Any) -> None:
    try:
        text = json.dumps(value, allow_nan=False)
        if "\\u0000" in text:  # it becomes a command-line argument: no NUL can be one
            raise InvalidParameter(field or "options", f"choice: option {value!r} contains a "
                                   "NUL character, which no command line can carry")
    except (TypeError, ValueError):
        raise InvalidParameter(field or "options", f"choice: option {value!r} is not "
                               f"JSON-serializable; use numbers, strings, booleans, None, or "
                               f"lists/dicts of them") from None


def validate_expression(expr: Any, field: str | None = None) -> list[Any]:
    """Check one v1 parameter expression (``["uniform", [0, 1]]``); return it normalized (a
    fresh list; an integral float ``q`` becomes an int). Errors (:class:`InvalidParameter`)
    carry ``field`` (where the expression came from, e.g. ``parameter_space['--lr']``) or, when
    it is None, the name of the offending argument (``max_value``); the message names both."""
    where = field or "parameter_space"
    if (not isinstance(expr, (list, tuple)) or len(expr) != 2 or not isinstance(expr[0], str)
            or not isinstance(expr[1], (list, tuple))):
        raise InvalidParameter(where, f"expected a parameter expression such as choice(1, 2) or "
                               f"uniform(0.0, 1.0) (a list [name, [args]]), got {expr!r}")
    name, args = expr[0], list(expr[1])
    arg_names = EXPRESSIONS.get(name)
    if arg_names is None:
        raise InvalidParameter(where, f"unknown parameter expression {name!r}; use one of "
                               f"{', '.join(EXPRESSIONS)}")
    if len(args) != len(arg_names):
        raise InvalidParameter(where, f"{name} takes {len(arg_names)} argument(s) "
                               f"({', '.join(arg_names)}), got {len(args)}")
    if name == "choice":
        options = args[0]
        if not isinstance(options, (list, tuple)) or not options:
            raise InvalidParameter(field or "options", "choice: give at least one option, e.g. "
                                   "choice(16, 32, 64)")
        for option in options:
            _json_value(field, option)
        return ["choice", [list(options)]]
    if name == "randint":
        upper = args[0]
        if not isinstance(upper, int) or isinstance(upper, bool) or upper < 1:
            raise InvalidParameter(field or "upper", f"randint: upper must be an integer >= 1 "
                                   f"(values are drawn from [0, upper)), got {upper!r}")
        return ["randint", [upper]]
    if name in ("uniform", "quniform", "loguniform", "qloguniform"):
        lo = _number(field, name, "min_value", args[0])
        hi = _number(field, name, "max_value", args[1])
        strict = name in ("uniform", "quniform")
        if hi < lo or (strict and hi == lo):
            need = "<" if strict else "<="
            raise InvalidParameter(field or "max_value", f"{name}(min_value={lo!r}, "
                                   f"max_value={hi!r}): min_value must be {need} max_value; "
                                   f"swap them or widen the range")
        if name.startswith("q"):
            return [name, [lo, hi, _q(field, name, args[2])]]
        return [name, [lo, hi]]
    mu = _number(field, name, "mu", args[0])
    sigma = _number(field, name, "sigma", args[1])
    if sigma < 0:
        raise InvalidParameter(field or "sigma", f"{name}: sigma must be >= 0 (a standard "
                               f"deviation), got {sigma!r}")
    if name.startswith("q"):
        return [name, [mu, sigma, _q(field, name, args[2])]]
    return [name, [mu, sigma]]


def validate_space(space: Any, sampling: str = "RANDOM") -> dict[str, list[Any]]:
    """Check a parameter space (key -> expression) for a sampling (``RANDOM``, ``GRID``,
    ``BayesianOptimization``); return it normalized. Keys are non-empty strings, written as the
    script's command-line option (``"--lr"``)."""
    if sampling not in SAMPLINGS:
        raise InvalidParameter("sampling", f"unknown sampling {sampling!r}; use one of "
                               f"{', '.join(SAMPLINGS)}")
    if not isinstance(space, Mapping) or not space:
        raise InvalidParameter("parameter_space", "give a non-empty dict of parameter name -> "
                               "expression, e.g. {'--lr': uniform(0.001, 0.1)}")
    allowed = SAMPLINGS[sampling]
    out: dict[str, list[Any]] = {}
    for key, expr in space.items():
        if not isinstance(key, str) or not key.strip() or "\x00" in key:
            raise InvalidParameter("parameter_space", f"parameter names must be non-empty "
                                   f"strings without NUL (e.g. '--lr'), got {key!r}")
        field = f"parameter_space[{key!r}]"
        norm = validate_expression(expr, field)
        if allowed is not None and norm[0] not in allowed:
            if sampling == "GRID":
                fix = "list the values with choice(...), or use RandomParameterSampling"
            else:
                fix = "use choice, uniform or quniform, or use RandomParameterSampling"
            raise InvalidParameter(field, f"{_SAMPLING_TITLES[sampling]} sampling supports only "
                                   f"{', '.join(sorted(allowed))}, got {norm[0]}; {fix}")
        if sampling == "BayesianOptimization" and norm[0] == "choice":
            for option in norm[1][0]:
                if not isinstance(option, (int, float, str)) or isinstance(option, bool):
                    raise InvalidParameter(field, f"Bayesian sampling needs choice values that "
                                           f"are int, float or str, got {option!r}")
        out[key] = norm
    return out


_SAMPLING_TITLES = {"RANDOM": "random", "GRID": "grid", "BayesianOptimization": "Bayesian"}


def _optuna() -> Any:
    """Import Optuna (an optional extra) or say how to install it."""
    try:
        optuna = importlib.import_module("optuna")
    except ImportError:
        raise NotSupported("sweeps need optuna: pip install 'runyard[sweeps]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def mix(seed: int, k: int) -> int:
    """The seed of the k-th suggestion: a stable 32-bit hash of (seed, k)."""
    digest = hashlib.sha256(f"{seed}:{k}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _q_range(args: Sequence[Any]) -> tuple[int, int]:
    """The multiples ``k`` of ``q`` that ``round(uniform(lo, hi) / q)`` can give."""
    lo, hi, q = args
    return int(round(lo / q)), int(round(hi / q))


def _canon(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


def _state(state: Any) -> str:
    """``"running"``, ``"failed"`` or ``"done"`` for a history state: a RunStatus (or its
    value), or Optuna's words (``running``, ``complete``, ``pruned``, ``fail``)."""
    text = str(getattr(state, "value", state)).lower()
    if text in _RUNNING:
        return "running"
    if text in _FAILED:
        return "failed"
    if text in _FINISHED:
        return "done"
    raise InvalidParameter("history", f"unknown trial state {state!r}; use a run status "
                           f"(Running, Completed, Failed, Canceled, ...)")


class _Trial:
    __slots__ = ("canon", "number", "params", "running")

    def __init__(self, number: int, params: dict[str, Any], running: bool) -> None:
        self.number = number
        self.params = params
        self.canon = _canon(params)
        self.running = running


class Search:
    """Suggests parameter sets for a sweep (see the module docstring for the mapping).

    ``sampling`` is a sampling's ``to_dict()``; ``goal`` ``"maximize"`` or ``"minimize"``;
    ``seed`` overrides ``sampling["properties"]["seed"]``.
    """

    def __init__(self, sampling: Mapping[str, Any], goal: str = "maximize",
                 seed: int | None = None) -> None:
        if not isinstance(sampling, Mapping):
            raise InvalidParameter("sampling", f"expected a sampling dict, got {sampling!r}")
        name = sampling.get("name")
        if name not in SAMPLINGS:
            raise InvalidParameter("sampling", f"unknown sampling {name!r}; use one of "
                                   f"{', '.join(SAMPLINGS)}")
        self.kind: str = str(name)
        self.space = validate_space(sampling.get("parameter_space"), self.kind)
        direction = str(getattr(goal, "value", goal)).lower()
        if direction not in ("maximize", "minimize"):
            raise InvalidParameter("goal", f"expected 'maximize' or 'minimize', got {goal!r}")
        self.goal = direction
        props = sampling.get("properties") or {}
        if seed is None:
            seed = props.get("seed")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InvalidParameter("seed", f"expected an integer seed, got {seed!r}")
        self.seed: int = seed
        self._trials: list[_Trial] = []
        self._study: Any = None
        self._dists: dict[str, Any] = {}
        if self.kind != "GRID":
            optuna = _optuna()
            self._study = optuna.create_study(direction=direction)
            self._dists = self._distributions(optuna)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_history(cls, sampling: Mapping[str, Any], goal: str, seed: int | None,
                     history: Iterable[Sequence[Any]]) -> Search:
        """A search with the stored trials of a sweep replayed, in suggestion order: each item
        ``(params, value | None, state)``. A running state (a :class:`RunStatus` value such as
        ``Running`` or ``Queued``, or ``running``) makes a running trial; ``Failed``/``fail`` a
        failed one (its value ignored); ``Completed``/``complete`` and ``Canceled``/``pruned``
        (stopped by the policy) a complete trial with ``value`` (``None``: failed). Continues
        exactly as the original would have."""
        search = cls(sampling, goal, seed)
        for item in history:
            params, value, state = item
            kind = _state(state)
            if kind == "running":
                search._add(dict(params), running=True)
            else:
                search.tell(dict(params), None if kind == "failed" else value)
        return search

    def _distributions(self, optuna: Any) -> dict[str, Any]:
        d = optuna.distributions
        out: dict[str, Any] = {}
        for key, (name, args) in self.space.items():
            if name == "choice":
                out[key] = d.CategoricalDistribution(list(range(len(args[0]))))
            elif name == "randint":
                out[key] = d.IntDistribution(0, args[0] - 1)
            elif name == "quniform" and self.kind == "BayesianOptimization":
                lo, hi = _q_range(args)
                out[key] = d.IntDistribution(lo, hi)
            elif name not in _NORMAL_FAMILY:
                out[key] = d.FloatDistribution(float(args[0]), float(args[1]))
        return out

    # -- value mapping -----------------------------------------------------------------------

    def _to_user(self, key: str, x: Any) -> Any:
        name, args = self.space[key]
        if name == "choice":
            return args[0][int(x)]
        if name == "randint":
            return int(x)
        if name == "uniform":
            return float(x)
        if name == "quniform":
            if self.kind == "BayesianOptimization":
                return int(x) * args[2]
            return int(round(float(x) / args[2]) * args[2])
        if name == "loguniform":
            return math.exp(float(x))
        return int(round(math.exp(float(x)) / args[2]) * args[2])  # qloguniform

    def _to_internal(self, key: str, value: Any) -> Any:
        """The internal value of a stored user value; None when it is off the space."""
        name, args = self.space[key]
        if name == "choice":
            want = json.dumps(value, sort_keys=True)
            for i, option in enumerate(args[0]):
                if json.dumps(option, sort_keys=True) == want:
                    return i
            return None
        if not _is_number(value):
            return None
        if name == "quniform" and self.kind == "BayesianOptimization":
            lo, hi = _q_range(args)
            return min(max(int(round(value / args[2])), lo), hi)
        if name == "randint":
            return int(value) if 0 <= value < args[0] and value == int(value) else None
        x = float(value)
        if name in ("loguniform", "qloguniform"):
            x = math.log(x) if x > 0 else float(args[0])
        return min(max(x, float(args[0])), float(args[1]))

    def _normal_draws(self, k: int) -> dict[str, Any]:
        rng = random.Random(mix(self.seed, k))
        out: dict[str, Any] = {}
        for key, (name, args) in self.space.items():
            if name not in _NORMAL_FAMILY:
                continue
            g = rng.gauss(float(args[0]), float(args[1]))
            if name == "normal":
                out[key] = g
            elif name == "lognormal":
                out[key] = math.exp(g)
            elif name == "qnormal":
                out[key] = int(round(g / args[2]) * args[2])
            else:
                out[key] = int(round(math.exp(g) / args[2]) * args[2])
        return out

    # -- trials ------------------------------------------------------------------------------

    def _add(self, params: dict[str, Any], *, running: bool, value: float | None = None) -> None:
        number = len(self._trials)
        if self._study is not None:
            optuna = _optuna()
            internal = {}
            for key in self._dists:
                if key in params:
                    x = self._to_internal(key, params[key])
                    if x is not None:
                        internal[key] = x
            dists = {k: self._dists[k] for k in internal}
            states = optuna.trial.TrialState
            if running:
                trial = optuna.trial.create_trial(state=states.RUNNING, params=internal,
                                                  distributions=dists)
            elif value is None:
                trial = optuna.trial.create_trial(state=states.FAIL, params=internal,
                                                  distributions=dists)
            else:
                trial = optuna.trial.create_trial(state=states.COMPLETE, value=value,
                                                  params=internal, distributions=dists)
            self._study.add_trial(trial)
        self._trials.append(_Trial(number, params, running))

    def _adopt(self, running_params: Iterable[Mapping[str, Any]]) -> None:
        """Register the caller's running trials that this search does not know as running."""
        known: dict[str, int] = {}
        for t in self._trials:
            if t.running:
                known[t.canon] = known.get(t.canon, 0) + 1
        for params in running_params:
            canon = _canon(params)
            if known.get(canon, 0) > 0:
                known[canon] -= 1
            else:
                self._add(dict(params), running=True)

    def _grid(self) -> Iterator[dict[str, Any]]:
        keys = list(self.space)
        for combo in itertools.product(*(self.space[k][1][0] for k in keys)):
            yield dict(zip(keys, combo, strict=True))

    def _next_grid(self) -> dict[str, Any] | None:
        taken = {t.canon for t in self._trials}
        for params in self._grid():
            if _canon(params) not in taken:
                return params
        return None

    def _next(self) -> dict[str, Any] | None:
        if self.kind == "GRID":
            params = self._next_grid()
            if params is not None:
                self._add(params, running=True)
            return params
        optuna = _optuna()
        k = len(self._trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if self.kind == "RANDOM":
                sampler = optuna.samplers.RandomSampler(seed=mix(self.seed, k))
            else:
                sampler = optuna.samplers.TPESampler(seed=mix(self.seed, k), constant_liar=True)
            self._study.sampler = sampler
            trial = self._study.ask(self._dists)
        drawn = self._normal_draws(k)
        out: dict[str, Any] = {}
        for key in self.space:
            out[key] = drawn[key] if key in drawn else self._to_user(key, trial.params[key])
        self._trials.append(_Trial(k, out, True))
        return out

    # -- public API --------------------------------------------------------------------------

    def suggest(self, n: int, running_params: Iterable[Mapping[str, Any]] = ()
                ) -> list[dict[str, Any]]:
        """Up to ``n`` new parameter sets (keys as in the space, values Python scalars); fewer
        only when a grid is exhausted. Each is a running trial until :meth:`tell`.
        ``running_params``: the caller's running trials; those this search does not already
        hold as running are added as running trials first (so constant liar sees them)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InvalidParameter("n", f"expected an integer >= 0, got {n!r}")
        self._adopt(running_params)
        out: list[dict[str, Any]] = []
        for _ in range(n):
            params = self._next()
            if params is None:
                break
            out.append(params)
        return out

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """A trial finished with the primary ``value`` (``None``: failed or never logged it).
        Finishes the first running trial with these params; params never suggested here are
        added as a finished trial."""
        if value is not None and not _is_number(value):
            value = None
        v = None if value is None else float(value)
        canon = _canon(params)
        for t in self._trials:
            if t.running and t.canon == canon:
                t.running = False
                if self._study is not None:
                    states = _optuna().trial.TrialState
                    if v is None:
                        self._study.tell(t.number, state=states.FAIL)
                    else:
                        self._study.tell(t.number, v)
                return
        self._add(dict(params), running=False, value=v)

    def exhausted(self) -> bool:
        """True when no new parameter set is left (a grid whose every point was suggested)."""
        return self.kind == "GRID" and self._next_grid() is None

    @property
    def trials(self) -> list[tuple[dict[str, Any], bool]]:
        """``(params, running)`` of every trial known, in suggestion order."""
        return [(dict(t.params), t.running) for t in self._trials]

    @property
    def grid_size(self) -> int | None:
        """The number of grid points (``None`` for random and Bayesian sampling)."""
        if self.kind != "GRID":
            return None
        return math.prod(len(args[0]) for _name, args in self.space.values())


def require_optuna() -> None:
    """Raise :class:`NotSupported` (how to install it) when Optuna is missing."""
    _optuna()


def suggest_next(sampling: Mapping[str, Any], goal: str, seed: int | None,
                 history: Iterable[Sequence[Any]], n: int) -> list[dict[str, Any]]:
    """The next ``n`` parameter sets of a sweep whose stored trials are ``history`` (see
    :meth:`Search.from_history`); fewer when a grid is exhausted."""
    return Search.from_history(sampling, goal, seed, history).suggest(n)
