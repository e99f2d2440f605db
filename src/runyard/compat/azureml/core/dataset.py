"""``azureml.core.dataset``: ``Dataset`` is runyard's (:class:`runyard.dataset.Dataset`).

Differences from v1: ``mount`` downloads into a content-addressed cache (no FUSE); a dataset
id is ``name:version``; a registered version records its files' sha256 and refuses to read
changed bytes (``DatasetChanged``); datasets as run inputs are not supported yet.
"""

from __future__ import annotations

from runyard.dataset import Dataset

__all__ = ["Dataset"]
