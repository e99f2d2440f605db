"""``azureml.core.datastore``: ``Datastore`` is runyard's (:class:`runyard.datastore.Datastore`).

Differences from v1: a datastore object never exposes ``account_key`` / ``sas_token``; the
managed ``workspaceblobstore`` is a folder in the workspace; ``register_local_folder`` is a
runyard extension; only Azure Blob among Azure's storage kinds is supported.
"""

from __future__ import annotations

from runyard.datastore import Datastore

__all__ = ["Datastore"]
