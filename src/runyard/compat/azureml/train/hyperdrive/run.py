"""``azureml.train.hyperdrive.run``: ``PrimaryMetricGoal`` and ``HyperDriveRun`` (lazily)."""

from __future__ import annotations

import importlib
from typing import Any

from runyard.errors import NotSupported
from runyard.sweeps.config import PrimaryMetricGoal

__all__ = ["HyperDriveRun", "PrimaryMetricGoal"]  # noqa: F822 (module __getattr__)

#: Where the SDK's sweep run class may live, first found wins.
_RUN_MODULES = ("runyard.sweeprun", "runyard.run")


def hyperdrive_run() -> Any:
    """The SDK's ``HyperDriveRun`` class (imported on first use)."""
    for module in _RUN_MODULES:
        try:
            cls = getattr(importlib.import_module(module), "HyperDriveRun", None)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        if cls is not None:
            return cls
    raise NotSupported("azureml.train.hyperdrive.HyperDriveRun: runyard does not include "
                       "sweep runs yet")


def __getattr__(name: str) -> Any:
    if name == "HyperDriveRun":
        return hyperdrive_run()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
