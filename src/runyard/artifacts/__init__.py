"""Run artifacts (outputs, logs, uploads): the ``ArtifactStore`` interface and its folder form."""

from __future__ import annotations

from runyard.artifacts.base import ArtifactStore, check_name
from runyard.artifacts.folder import FolderArtifactStore

__all__ = ["ArtifactStore", "FolderArtifactStore", "check_name"]
