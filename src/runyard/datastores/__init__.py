"""Datastore kinds: where a workspace's data lives, and how files move in and out of it.

One small module per kind: :mod:`~runyard.datastores.folder` (the runyard-managed
``workspaceblobstore`` folder and registered local folders) and :mod:`~runyard.datastores.blob`
(an Azure Blob container, through ``azure-storage-blob``, imported only when used). The shared
transfer logic (path checks, skip-unchanged, progress) is in :mod:`~runyard.datastores.base`.
"""

from __future__ import annotations

__all__ = ["KINDS"]

#: Kind name -> what ``Datastore.datastore_type`` reports for it.
KINDS = {"workspace": "WorkspaceFolder", "local": "LocalFolder", "azure_blob": "AzureBlob"}
