"""``azureml.data.datapath``: ``DataPath`` is runyard's (:class:`runyard.dataset.DataPath`)."""

from __future__ import annotations

from runyard.dataset import DataPath

__all__ = ["DataPath"]
