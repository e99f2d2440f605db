"""The folder artifact store confines run ids and names, and follows no link out of a run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runyard.artifacts import FolderArtifactStore
from runyard.errors import InvalidParameter

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("run_id", "name", "match"), [
    ("../other", "a.txt", "run_id"),
    ("..", "a.txt", "run_id"),
    ("r1", "../../etc/passwd", "relative path inside the run"),
    ("r1", "/etc/passwd", "relative path inside the run"),
    ("r1", "a\x00b", "non-empty relative path"),
    ("r1", "", "non-empty relative path"),
])
def test_hostile_ids_and_names_are_refused(tmp_path: Path, run_id: str, name: str,
                                           match: str) -> None:
    store = FolderArtifactStore(tmp_path / "runs")
    with pytest.raises(InvalidParameter, match=match):
        store.read(run_id, name)
    with pytest.raises(InvalidParameter, match=match):
        store.write(run_id, name, b"x")
    assert not (tmp_path / "etc").exists()


def test_a_link_planted_in_the_artifacts_does_not_lead_out(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path / "runs")
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    folder = store.local_dir("r1")
    folder.mkdir(parents=True)
    os.symlink(tmp_path, folder / "outside")
    with pytest.raises(InvalidParameter, match="leads outside"):
        store.read("r1", "outside/secret.txt")
    with pytest.raises(InvalidParameter, match="leads outside"):
        store.write("r1", "outside/secret.txt", b"overwritten")
    assert secret.read_text() == "key"


def test_round_trip_and_reads_by_offset(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path / "runs")
    assert store.write("r1", "logs/a.txt", b"hello world") == 11
    assert store.read("r1", "logs/a.txt", 6) == b"world"
    assert store.read("r1", "logs/a.txt", 10**12) == b""
    assert store.read("r1", "missing.txt") == b""
    assert store.size("r1", "logs/a.txt") == 11 and store.size("r1", "missing.txt") is None
