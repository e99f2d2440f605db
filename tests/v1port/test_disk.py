"""Disk use with v1 code (issue 11, item 8): runs of one unchanged folder share its snapshot,
what a training script does to its folder stays in that run, and an ended run's working copy
is gone while its snapshot can still be restored. Real workspace, runner and script processes.

The control code uses ``runyard.compat.azureml`` imports only; the training script in
``scripts/disk/`` is written as v1 users wrote it (it scribbles over its own folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from runyard.compat.azureml.core import Experiment, ScriptRunConfig, Workspace

SCRIPTS = Path(__file__).resolve().parent / "scripts" / "disk"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config-home"))
    w = Workspace.create("v1-disk", path=tmp_path / "ws")
    yield w
    w.close()


def test_v1_runs_share_the_snapshot_and_leave_no_copies(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "project"
    shutil.copytree(SCRIPTS, src)
    (src / "config.json").write_text(json.dumps({"runs": 0}))
    data = os.urandom(3 * 1024 * 1024)
    (src / "data.bin").write_bytes(data)
    exp = Experiment(ws, "v1-disk")
    runs = []
    for _ in range(3):
        config = ScriptRunConfig(source_directory=str(src), script="train.py")
        run = exp.submit(config)
        run.wait_for_completion(show_output=False)
        runs.append(run)
    sha_prefix = hashlib.sha256(data).hexdigest()[:16]
    for run in runs:
        metrics = run.get_metrics()
        # every run saw the folder as submitted: no earlier run's scratch or scribbles
        assert metrics["config_runs"] == 0 and metrics["found_cache"] == 0
        assert metrics["data_sha_prefix"] == sha_prefix
        assert "outputs/model.txt" in run.get_file_names()
        assert not (ws.run_dir(run.id) / "wd").exists()
    # the source folder is untouched, and the code comes back from the store
    assert (src / "data.bin").read_bytes() == data and not (src / "cache.txt").exists()
    back = Path(runs[0].restore_snapshot(path=str(tmp_path / "restored")))
    assert (back / "data.bin").read_bytes() == data
    assert json.loads((back / "config.json").read_text()) == {"runs": 0}
    blobs = ws.data_dir / "snapshots" / "blobs"
    stored = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file())
    assert len(data) <= stored < 1.2 * len(data)  # one copy of the bytes for three runs
