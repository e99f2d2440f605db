"""No run without a record, no duplicate start: a submitter killed at the worst points.

A real submitter process dies (``os._exit``) at a chosen point of a real submit; the reconciler
then resolves what it left: the run ends with its real status, and its script ran exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runyard import Run, Workspace
from runyard.services.runs.reconciler import reconcile
from runyard.store.base import RunFilter
from support import set_config

SCRIPT = """
import sys, time
with open(sys.argv[1], "a") as fh:
    fh.write("ran\\n")
time.sleep(0.5)
"""

SUBMITTER = """
import os, sys
from runyard import Experiment, ScriptRunConfig, Workspace
ws = Workspace.get("ws", sys.argv[1])
store = ws.context.store
point = sys.argv[3]
real = getattr(store, point)
def die(*args, **kwargs):
    if point == "set_handle":  # the target started the run; the record of it never lands
        os._exit(9)
    real(*args, **kwargs)      # create_run: the run is recorded; nothing was started
    os._exit(9)
setattr(store, point, die)
Experiment(ws, "intent").submit(ScriptRunConfig(sys.argv[2], "s.py", arguments=[sys.argv[4]]))
"""



@pytest.mark.parametrize("point", ["set_handle", "create_run"])
def test_a_killed_submitter_leaves_a_run_that_ends_and_ran_once(tmp_path: Path,
                                                                point: str) -> None:
    root = tmp_path / "ws"
    Workspace.create("ws", root)
    set_config(root, start_intent_grace_seconds=1.0)
    src = tmp_path / "src"
    src.mkdir()
    (src / "s.py").write_text(textwrap.dedent(SCRIPT))
    ran = tmp_path / "ran.txt"
    env = {**os.environ, "RUNYARD_NO_RECONCILER": "1"}
    proc = subprocess.run([sys.executable, "-c", SUBMITTER, str(root), str(src), point,
                           str(ran)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 9, proc.stderr
    ws = Workspace.get("ws", root)
    (record,) = ws.context.store.list_runs(RunFilter())
    assert record.status.value == "Queued" and record.handle is None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reconcile(ws.context)
        fresh = ws.context.store.get_run(record.id)
        assert fresh is not None
        if fresh.status.terminal:
            break
        time.sleep(0.2)
    run = Run.get(ws, record.id)
    assert run.get_status() == "Completed"
    time.sleep(1.0)  # a second copy, had one started, would have written by now
    assert ran.read_text() == "ran\n"
    intent = ws.context.run_dir(record.id) / ".intent-a1"
    assert intent.exists()
