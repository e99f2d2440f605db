"""``azureml.core.run``: ``Run`` and ``get_run``."""

from __future__ import annotations

from typing import Any

from runyard.run import Run

__all__ = ["Run", "get_run"]


def get_run(experiment: Any, run_id: str, rehydrate: bool = True, clean_up: bool = True) -> Run:
    """v1's ``azureml.core.get_run``: the run ``run_id`` of ``experiment``."""
    return Run(experiment, run_id)
