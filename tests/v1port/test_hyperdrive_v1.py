"""An Azure ML v1 HyperDrive sweep written with ``SKLearn`` and
``HyperDriveConfig(estimator=...)`` runs with its imports changed only: a real control script
(``scripts/hyperdrive/control.py``) in a subprocess, its trials on the local target in the
environment the estimator asks for (scikit-learn pinned by the framework table, built once and
shared by the trials), the training script unchanged (``from azureml.core import Run``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runyard import Workspace
from runyard.model import Model
from runyard.run import HyperDriveRun, Run

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parent / "scripts" / "hyperdrive"


def test_v1_sklearn_hyperdrive_sweep_runs_with_imports_changed_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    ws = Workspace.create("v1-hd", tmp_path / "ws", max_concurrent_runs=2)
    out = subprocess.run([sys.executable, str(SCRIPTS / "control.py"), str(SCRIPTS)],
                         cwd=tmp_path / "ws", capture_output=True, text=True, timeout=900,
                         env={**os.environ})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    best_id = re.search(r"Best Run Id:\s+(\S+)", out.stdout)
    assert best_id, out.stdout
    best = Run.get(ws, best_id.group(1))
    sweep = best.parent
    assert isinstance(sweep, HyperDriveRun) and sweep.get_status() == "Completed"
    children = list(sweep.get_children())
    assert len(children) == 4
    # one environment built for the four trials; the others waited for that build or reused it
    builds = [c.get_properties().get("environment_build") for c in children]
    assert builds.count("built") == 1 and set(builds) <= {"built", "cached", "waited"}, builds
    ranked = sweep.get_children_sorted_by_primary_metric()
    assert ranked[0]["run_id"] == best.id
    assert "--folds" in out.stdout and "--C" in out.stdout
    assert Model(ws, "sklearn-hd").run_id == best.id
    ws.close()
