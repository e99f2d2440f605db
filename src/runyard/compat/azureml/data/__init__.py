"""``azureml.data``: ``FileDataset`` and ``TabularDataset`` are runyard's
(:mod:`runyard.dataset`); the other v1 names (``OutputFileDatasetConfig``, ``DataType``, ...)
raise ``NotSupported``."""

from __future__ import annotations

from typing import Any

from runyard.compat.azureml._missing import missing

__all__ = ["FileDataset", "TabularDataset"]

_missing = missing("azureml.data", "this part of datasets")


def __getattr__(name: str) -> Any:
    if name in ("FileDataset", "TabularDataset"):
        import runyard.dataset as mod  # noqa: PLC0415

        return getattr(mod, name)
    return _missing(name)
