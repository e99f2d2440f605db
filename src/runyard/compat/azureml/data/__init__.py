"""``azureml.data``: ``FileDataset`` and ``TabularDataset`` are runyard's
(:mod:`runyard.dataset`), ``OutputFileDatasetConfig`` and ``DatasetConsumptionConfig`` are
runyard's (:mod:`runyard.dataio`); the other v1 names (``DataType``, ...) raise
``NotSupported``."""

from __future__ import annotations

from typing import Any

from runyard.compat.azureml._missing import missing

__all__ = ["DatasetConsumptionConfig", "FileDataset", "OutputFileDatasetConfig",
           "TabularDataset"]

_missing = missing("azureml.data", "this part of datasets")


def __getattr__(name: str) -> Any:
    if name in ("FileDataset", "TabularDataset"):
        import runyard.dataset as mod  # noqa: PLC0415

        return getattr(mod, name)
    if name in ("OutputFileDatasetConfig", "DatasetConsumptionConfig"):
        import runyard.dataio as io  # noqa: PLC0415

        return getattr(io, name)
    return _missing(name)
