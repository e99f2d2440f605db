"""Fuzz corpus (hypothesis) for names and paths: whatever a caller or a script sends, a name
that is accepted is clean, and a path that is accepted stays inside its run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runyard.artifacts.folder import FolderArtifactStore
from runyard.errors import InvalidParameter
from runyard.naming import (
    MAX_KEY_CHARS,
    check_experiment_name,
    check_key,
    check_runconfig_name,
    check_workspace_name,
)
from runyard.services.runs.events import Rejected, clean_file_name

_parts = st.sampled_from(["..", ".", "", "a", "b.txt", "/", "\\", "\x00", "outputs", "~",
                          "..\\..", " ", "%2e%2e", "\u202e", "a/../..", "//"])
_paths = st.lists(_parts, max_size=8).map("/".join) | st.text(max_size=60)


@settings(max_examples=500, deadline=None)
@given(name=_paths)
def test_artifact_names_accepted_at_ingest_stay_inside_the_run(tmp_path_factory: pytest.
                                                               TempPathFactory,
                                                               name: str) -> None:
    try:
        clean = clean_file_name(name)
    except Rejected:
        return
    assert not clean.startswith("/") and ".." not in clean.split("/") and "\x00" not in clean
    root = Path("/runs/r/artifacts")
    assert os.path.normpath(root / clean).startswith(str(root) + "/")


@settings(max_examples=300, deadline=None)
@given(name=_paths)
def test_the_artifact_store_never_reaches_outside_a_run(tmp_path_factory: pytest.
                                                        TempPathFactory, name: str) -> None:
    root = tmp_path_factory.mktemp("art")
    store = FolderArtifactStore(root)
    (root / "secret.txt").write_text("secret")
    try:
        data = store.read("r", name)
    except InvalidParameter:
        return
    assert data != b"secret"
    try:
        store.write("r", name, b"x")
    except (InvalidParameter, IsADirectoryError, NotADirectoryError, FileExistsError):
        return
    assert (root / "secret.txt").read_text() == "secret"
    written = [p for p in root.rglob("*") if p.is_file() and p.name != "secret.txt"]
    assert all(str(p).startswith(str(root / "r" / "artifacts")) for p in written)


@settings(max_examples=500, deadline=None)
@given(name=st.text(max_size=300) | st.integers() | st.none())
def test_names_are_accepted_only_when_clean(name: object) -> None:
    for check in (check_workspace_name, check_experiment_name, check_runconfig_name):
        try:
            ok = check(name)
        except InvalidParameter as exc:
            assert exc.args  # one clear error
            continue
        assert isinstance(ok, str) and ok.isascii() and "/" not in ok and "\x00" not in ok
    try:
        key = check_key("tags", name)
    except InvalidParameter as exc:
        assert "tags" in str(exc)
        return
    assert 0 < len(key) <= MAX_KEY_CHARS and all(ord(c) >= 32 for c in key)
