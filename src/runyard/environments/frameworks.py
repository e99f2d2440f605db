"""The framework versions the v1 estimators install: ``framework_version`` -> PyPI pins.

Azure ML v1's ``SKLearn``, ``PyTorch``, ``TensorFlow`` and ``Chainer`` estimators took a
``framework_version`` and picked a curated image with that framework. runyard builds an
environment instead, from the pins below; this module is the one place they are kept
(``docs/estimators.md`` carries the same table, and a test holds the two equal to
:func:`markdown_table`).

Every version listed has wheels on PyPI for some Python from 3.8 on (the runtime floor); the
Python column is the range those wheels cover (``+``: later Pythons too, as far as that
release's wheels go). The environment is built for the target's interpreter, so that
interpreter must be in the range. A version v1 offered whose wheels stop before Python 3.8
(``scikit-learn 0.20.3``, ``torch 1.0``-``1.3``, ``tensorflow 1.x``/``2.0``/``2.1``,
``chainer 5``/``6``) is refused naming the versions listed; so is any version not in the table.
``framework_version=None`` means the last (newest) row, whose pins are the curated
environments' (:mod:`runyard.environments.curated`).

A key is a version as v1 users wrote it (``"1.6"``); the exact version pinned (``"1.6.0"``) is
accepted too. ``use_gpu=True`` selects the GPU pins where the package differs: TensorFlow's
``tensorflow`` (``tensorflow[and-cuda]`` from 2.14, which brings the CUDA libraries) instead of
``tensorflow-cpu``. PyPI's Linux ``torch`` wheels carry CUDA already (same pins); Chainer needs
a CuPy build matching the target's CUDA, which the estimator asks for in ``pip_packages``.
Older releases are pinned with the numpy they were built against (``numpy<2``, or
``numpy<1.24`` where the removed ``np.int``/``np.float`` aliases are still used).

| framework | framework_version | pins (CPU) | pins with use_gpu | Python |
|---|---|---|---|---|
| SKLearn | 0.22 | scikit-learn==0.22.2.post1 numpy<1.24 | same | 3.8 |
| SKLearn | 0.23 | scikit-learn==0.23.2 numpy<1.24 | same | 3.8 |
| SKLearn | 0.24 | scikit-learn==0.24.2 numpy<1.24 | same | 3.8-3.9 |
| SKLearn | 1.0 | scikit-learn==1.0.2 numpy<1.24 | same | 3.8-3.10 |
| SKLearn | 1.1 | scikit-learn==1.1.3 numpy<2 | same | 3.8-3.11 |
| SKLearn | 1.2 | scikit-learn==1.2.2 numpy<2 | same | 3.8-3.11 |
| SKLearn | 1.3 | scikit-learn==1.3.2 numpy<2 | same | 3.8-3.12 |
| SKLearn | 1.4 | scikit-learn==1.4.2 | same | 3.9-3.12 |
| SKLearn | 1.5 | scikit-learn==1.5.2 | same | 3.9-3.13 |
| SKLearn | 1.6 | scikit-learn==1.6.1 | same | 3.9-3.13 |
| SKLearn | 1.7 | scikit-learn==1.7.2 | same | 3.10+ |
| SKLearn | 1.8 | scikit-learn==1.8.0 | same | 3.11+ |
| SKLearn | 1.9 | scikit-learn==1.9.1 numpy==2.4.6 scipy==1.17.1 joblib==1.5.3 | same | 3.11+ |
| PyTorch | 1.4 | torch==1.4.0 numpy<2 | same | 3.8 |
| PyTorch | 1.5 | torch==1.5.1 numpy<2 | same | 3.8 |
| PyTorch | 1.6 | torch==1.6.0 numpy<2 | same | 3.8 |
| PyTorch | 1.7 | torch==1.7.1 numpy<2 | same | 3.8-3.9 |
| PyTorch | 1.8 | torch==1.8.1 numpy<2 | same | 3.8-3.9 |
| PyTorch | 1.9 | torch==1.9.1 numpy<2 | same | 3.8-3.9 |
| PyTorch | 1.10 | torch==1.10.2 numpy<2 | same | 3.8-3.9 |
| PyTorch | 1.11 | torch==1.11.0 numpy<2 | same | 3.8-3.10 |
| PyTorch | 1.12 | torch==1.12.1 numpy<2 | same | 3.8-3.10 |
| PyTorch | 1.13 | torch==1.13.1 numpy<2 | same | 3.8-3.11 |
| PyTorch | 2.0 | torch==2.0.1 numpy<2 | same | 3.8-3.11 |
| PyTorch | 2.1 | torch==2.1.2 numpy<2 | same | 3.8-3.11 |
| PyTorch | 2.2 | torch==2.2.2 numpy<2 | same | 3.8-3.12 |
| PyTorch | 2.3 | torch==2.3.1 | same | 3.8-3.12 |
| PyTorch | 2.4 | torch==2.4.1 | same | 3.8-3.12 |
| PyTorch | 2.5 | torch==2.5.1 | same | 3.9-3.13 |
| PyTorch | 2.6 | torch==2.6.0 | same | 3.9-3.13 |
| PyTorch | 2.7 | torch==2.7.1 | same | 3.9-3.13 |
| PyTorch | 2.8 | torch==2.8.0 | same | 3.9-3.13 |
| PyTorch | 2.9 | torch==2.9.1 | same | 3.10+ |
| PyTorch | 2.10 | torch==2.10.0 | same | 3.10+ |
| PyTorch | 2.11 | torch==2.11.0 | same | 3.10+ |
| PyTorch | 2.12 | torch==2.12.1 | same | 3.10+ |
| PyTorch | 2.13 | torch==2.13.0 | same | 3.10+ |
| PyTorch | 2.14 | torch==2.14.1 | same | 3.10+ |
| PyTorch | 2.15 | torch==2.15.0 numpy==2.4.6 | same | 3.11+ |
| TensorFlow | 2.2 | tensorflow-cpu==2.2.3 | tensorflow==2.2.3 | 3.8 |
| TensorFlow | 2.3 | tensorflow-cpu==2.3.4 | tensorflow==2.3.4 | 3.8 |
| TensorFlow | 2.4 | tensorflow-cpu==2.4.4 | tensorflow==2.4.4 | 3.8 |
| TensorFlow | 2.5 | tensorflow-cpu==2.5.3 | tensorflow==2.5.3 | 3.8-3.9 |
| TensorFlow | 2.6 | tensorflow-cpu==2.6.5 | tensorflow==2.6.5 | 3.8-3.9 |
| TensorFlow | 2.7 | tensorflow-cpu==2.7.4 | tensorflow==2.7.4 | 3.8-3.9 |
| TensorFlow | 2.8 | tensorflow-cpu==2.8.4 | tensorflow==2.8.4 | 3.8-3.10 |
| TensorFlow | 2.9 | tensorflow-cpu==2.9.3 | tensorflow==2.9.3 | 3.8-3.10 |
| TensorFlow | 2.10 | tensorflow-cpu==2.10.1 | tensorflow==2.10.1 | 3.8-3.10 |
| TensorFlow | 2.11 | tensorflow-cpu==2.11.1 | tensorflow==2.11.1 | 3.8-3.10 |
| TensorFlow | 2.12 | tensorflow-cpu==2.12.1 | tensorflow==2.12.1 | 3.8-3.11 |
| TensorFlow | 2.13 | tensorflow-cpu==2.13.1 | tensorflow==2.13.1 | 3.8-3.11 |
| TensorFlow | 2.14 | tensorflow-cpu==2.14.1 | tensorflow[and-cuda]==2.14.1 | 3.9-3.11 |
| TensorFlow | 2.15 | tensorflow-cpu==2.15.1 | tensorflow[and-cuda]==2.15.1 | 3.9-3.11 |
| TensorFlow | 2.16 | tensorflow-cpu==2.16.2 | tensorflow[and-cuda]==2.16.2 | 3.9-3.12 |
| TensorFlow | 2.17 | tensorflow-cpu==2.17.1 | tensorflow[and-cuda]==2.17.1 | 3.9-3.12 |
| TensorFlow | 2.18 | tensorflow-cpu==2.18.1 | tensorflow[and-cuda]==2.18.1 | 3.9-3.12 |
| TensorFlow | 2.19 | tensorflow-cpu==2.19.1 | tensorflow[and-cuda]==2.19.1 | 3.9-3.12 |
| TensorFlow | 2.20 | tensorflow-cpu==2.20.0 | tensorflow[and-cuda]==2.20.0 | 3.9-3.13 |
| TensorFlow | 2.21 | tensorflow-cpu==2.21.0 | tensorflow[and-cuda]==2.21.0 | 3.11-3.13 |
| Chainer | 7.8 | chainer==7.8.1 numpy<1.24 | same | 3.8-3.11 |

Refused, with the reason given in the error (v1's versions without wheels for Python 3.8+):

| framework | framework_version | why |
|---|---|---|
| SKLearn | 0.20.3 | scikit-learn 0.20.3: wheels only up to Python 3.7 |
| PyTorch | 1.0, 1.1, 1.2, 1.3 | torch < 1.4: wheels only up to Python 3.7 |
| TensorFlow | 1.10, 1.12, 1.13, 2.0, 2.1 | tensorflow < 2.2: wheels only up to Python 3.7 |
| Chainer | 5.1.0, 6.0.0 | chainer < 7: supported only up to Python 3.7 |
"""

from __future__ import annotations

from dataclasses import dataclass

from runyard.environments.curated import _SKLEARN, _TF, _TORCH
from runyard.errors import InvalidParameter, NotSupported

__all__ = ["FRAMEWORKS", "REFUSED", "FrameworkPins", "available_versions", "default_version",
           "framework_pins", "markdown_table"]


@dataclass(frozen=True)
class FrameworkPins:
    """One row: the exact ``version`` pinned, its pip ``pins`` (CPU) and ``gpu_pins`` (None:
    the same as ``pins``), and the Python versions its wheels cover."""

    version: str
    pins: tuple[str, ...]
    gpu_pins: tuple[str, ...] | None
    python: str


def _rows(package: str, rows: list[tuple[str, str, str, str]],
          gpu: str | None = None, gpu_from: tuple[int, int] = (0, 0),
          gpu_extra: str = "") -> dict[str, FrameworkPins]:
    """``(key, version, extra pins, python)`` rows -> table entries for ``package``."""
    out: dict[str, FrameworkPins] = {}
    for key, version, extra, python in rows:
        gpu_pins = None
        if gpu is not None:
            major, minor = (int(p) for p in key.split(".")[:2])
            name = gpu + (gpu_extra if (major, minor) >= gpu_from else "")
            gpu_pins = (f"{name}=={version}", *extra.split())
        out[key] = FrameworkPins(version, (f"{package}=={version}", *extra.split()), gpu_pins,
                                 python)
    return out


def _latest(package: str, pins: list[str], python: str,
            gpu: str | None = None) -> tuple[str, FrameworkPins]:
    """The newest row, taken from a curated environment's pins (one list for both)."""
    version = next(p.split("==", 1)[1] for p in pins if p.startswith(f"{package}=="))
    key = ".".join(version.split(".")[:2])
    gpu_pins = None
    if gpu is not None:
        gpu_pins = tuple(f"{gpu}=={version}" if p.startswith(f"{package}==") else p
                         for p in pins)
    return key, FrameworkPins(version, tuple(pins), gpu_pins, python)


_OLD_NUMPY = "numpy<1.24"
_NUMPY1 = "numpy<2"

#: framework -> framework_version -> pins, oldest first (the last row is the default).
FRAMEWORKS: dict[str, dict[str, FrameworkPins]] = {
    "SKLearn": _rows("scikit-learn", [
        ("0.22", "0.22.2.post1", _OLD_NUMPY, "3.8"),
        ("0.23", "0.23.2", _OLD_NUMPY, "3.8"),
        ("0.24", "0.24.2", _OLD_NUMPY, "3.8-3.9"),
        ("1.0", "1.0.2", _OLD_NUMPY, "3.8-3.10"),
        ("1.1", "1.1.3", _NUMPY1, "3.8-3.11"),
        ("1.2", "1.2.2", _NUMPY1, "3.8-3.11"),
        ("1.3", "1.3.2", _NUMPY1, "3.8-3.12"),
        ("1.4", "1.4.2", "", "3.9-3.12"),
        ("1.5", "1.5.2", "", "3.9-3.13"),
        ("1.6", "1.6.1", "", "3.9-3.13"),
        ("1.7", "1.7.2", "", "3.10+"),
        ("1.8", "1.8.0", "", "3.11+"),
    ]) | dict([_latest("scikit-learn", _SKLEARN, "3.11+")]),
    "PyTorch": _rows("torch", [
        ("1.4", "1.4.0", _NUMPY1, "3.8"),
        ("1.5", "1.5.1", _NUMPY1, "3.8"),
        ("1.6", "1.6.0", _NUMPY1, "3.8"),
        ("1.7", "1.7.1", _NUMPY1, "3.8-3.9"),
        ("1.8", "1.8.1", _NUMPY1, "3.8-3.9"),
        ("1.9", "1.9.1", _NUMPY1, "3.8-3.9"),
        ("1.10", "1.10.2", _NUMPY1, "3.8-3.9"),
        ("1.11", "1.11.0", _NUMPY1, "3.8-3.10"),
        ("1.12", "1.12.1", _NUMPY1, "3.8-3.10"),
        ("1.13", "1.13.1", _NUMPY1, "3.8-3.11"),
        ("2.0", "2.0.1", _NUMPY1, "3.8-3.11"),
        ("2.1", "2.1.2", _NUMPY1, "3.8-3.11"),
        ("2.2", "2.2.2", _NUMPY1, "3.8-3.12"),
        ("2.3", "2.3.1", "", "3.8-3.12"),
        ("2.4", "2.4.1", "", "3.8-3.12"),
        ("2.5", "2.5.1", "", "3.9-3.13"),
        ("2.6", "2.6.0", "", "3.9-3.13"),
        ("2.7", "2.7.1", "", "3.9-3.13"),
        ("2.8", "2.8.0", "", "3.9-3.13"),
        ("2.9", "2.9.1", "", "3.10+"),
        ("2.10", "2.10.0", "", "3.10+"),
        ("2.11", "2.11.0", "", "3.10+"),
        ("2.12", "2.12.1", "", "3.10+"),
        ("2.13", "2.13.0", "", "3.10+"),
        ("2.14", "2.14.1", "", "3.10+"),
    ]) | dict([_latest("torch", _TORCH, "3.11+")]),
    "TensorFlow": _rows("tensorflow-cpu", [
        ("2.2", "2.2.3", "", "3.8"),
        ("2.3", "2.3.4", "", "3.8"),
        ("2.4", "2.4.4", "", "3.8"),
        ("2.5", "2.5.3", "", "3.8-3.9"),
        ("2.6", "2.6.5", "", "3.8-3.9"),
        ("2.7", "2.7.4", "", "3.8-3.9"),
        ("2.8", "2.8.4", "", "3.8-3.10"),
        ("2.9", "2.9.3", "", "3.8-3.10"),
        ("2.10", "2.10.1", "", "3.8-3.10"),
        ("2.11", "2.11.1", "", "3.8-3.10"),
        ("2.12", "2.12.1", "", "3.8-3.11"),
        ("2.13", "2.13.1", "", "3.8-3.11"),
        ("2.14", "2.14.1", "", "3.9-3.11"),
        ("2.15", "2.15.1", "", "3.9-3.11"),
        ("2.16", "2.16.2", "", "3.9-3.12"),
        ("2.17", "2.17.1", "", "3.9-3.12"),
        ("2.18", "2.18.1", "", "3.9-3.12"),
        ("2.19", "2.19.1", "", "3.9-3.12"),
        ("2.20", "2.20.0", "", "3.9-3.13"),
    ], gpu="tensorflow", gpu_from=(2, 14), gpu_extra="[and-cuda]")
    | dict([_latest("tensorflow-cpu", _TF, "3.11-3.13", gpu="tensorflow[and-cuda]")]),
    "Chainer": _rows("chainer", [
        ("7.8", "7.8.1", _OLD_NUMPY, "3.8-3.11"),
    ]),
}

#: v1's framework versions that have no wheels for Python 3.8+: version -> why.
REFUSED: dict[str, dict[str, str]] = {
    "SKLearn": {"0.20.3": "scikit-learn 0.20.3: wheels only up to Python 3.7"},
    "PyTorch": {v: "torch < 1.4: wheels only up to Python 3.7"
                for v in ("1.0", "1.1", "1.2", "1.3")},
    "TensorFlow": {v: "tensorflow < 2.2: wheels only up to Python 3.7"
                   for v in ("1.10", "1.12", "1.13", "2.0", "2.1")},
    "Chainer": {v: "chainer < 7: supported only up to Python 3.7"
                for v in ("5.1.0", "6.0.0")},
}


def _table(framework: str) -> dict[str, FrameworkPins]:
    table = FRAMEWORKS.get(framework)
    if table is None:
        raise InvalidParameter("framework", f"{framework!r} is not one of "
                               f"{', '.join(FRAMEWORKS)}")
    return table


def available_versions(framework: str) -> list[str]:
    """The ``framework_version`` keys of ``framework``, oldest first."""
    return list(_table(framework))


def default_version(framework: str) -> str:
    """The key used when ``framework_version`` is None: the newest row."""
    return available_versions(framework)[-1]


def framework_pins(framework: str, framework_version: str | None,
                   use_gpu: bool = False) -> tuple[str, list[str]]:
    """``(key, pip pins)`` for ``framework_version`` (None: the default) of ``framework``.

    A version v1 offered without wheels for Python 3.8+ raises ``NotSupported``; any other
    version not in the table raises ``InvalidParameter``; both name the versions available.
    """
    table = _table(framework)
    if framework_version is None:
        key = default_version(framework)
    else:
        if not isinstance(framework_version, str):
            raise InvalidParameter("framework_version", f"give the version as a string such "
                                   f"as {default_version(framework)!r}, got "
                                   f"{type(framework_version).__name__} "
                                   f"{framework_version!r}")
        wanted = framework_version.strip()
        found = next((k for k, row in table.items() if wanted in (k, row.version)), None)
        if found is None:
            listed = ", ".join(table)
            why = REFUSED.get(framework, {}).get(wanted)
            if why is not None:
                raise NotSupported(f"{framework}(framework_version={framework_version!r}): "
                                   f"{why}; runyard supports {listed} (default "
                                   f"{default_version(framework)}); see docs/estimators.md")
            raise InvalidParameter("framework_version", f"{framework} version "
                                   f"{framework_version!r} is not available; runyard supports "
                                   f"{listed} (default {default_version(framework)}); see "
                                   "docs/estimators.md")
        key = found
    row = table[key]
    pins = row.gpu_pins if use_gpu and row.gpu_pins is not None else row.pins
    return key, list(pins)


def markdown_table() -> str:
    """The two tables of this module's docstring (and ``docs/estimators.md``), from the data."""
    lines = ["| framework | framework_version | pins (CPU) | pins with use_gpu | Python |",
             "|---|---|---|---|---|"]
    for framework, table in FRAMEWORKS.items():
        for key, row in table.items():
            gpu = " ".join(row.gpu_pins) if row.gpu_pins is not None else "same"
            lines.append(f"| {framework} | {key} | {' '.join(row.pins)} | {gpu} | "
                         f"{row.python} |")
    lines += ["", "Refused, with the reason given in the error (v1's versions without wheels "
              "for Python 3.8+):", "", "| framework | framework_version | why |", "|---|---|---|"]
    for framework, refused in REFUSED.items():
        by_reason: dict[str, list[str]] = {}
        for version, why in refused.items():
            by_reason.setdefault(why, []).append(version)
        for why, versions in by_reason.items():
            lines.append(f"| {framework} | {', '.join(versions)} | {why} |")
    return "\n".join(lines)
