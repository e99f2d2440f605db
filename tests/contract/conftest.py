"""Fixtures of the contract suite: a real workspace (SQLite in tmp_path), the fake kind
registered, and every runner process the test started ended afterwards.

The fake kind is registered by monkeypatching ``runyard.compute.kinds.BUILTIN_KINDS`` with the
module name the class was really imported under (``contract.fake_target`` under pytest's default
import mode), so ``load_kind("fake")`` returns this very class.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runyard.compute import kinds
from runyard.compute.local import LocalHandle
from runyard.context import WorkspaceContext
from runyard.entities import RunRecord, RunStatus
from runyard.runconfig import ScriptRunConfig
from runyard.services.compute import create_compute
from runyard.services.runs.submit import submit_script_run
from runyard.services.runs.sync import sync_run
from runyard.store.base import RunFilter

from .fake_target import FakeConfiguration, FakeTarget, kill_job, read_starts

T = TypeVar("T")

#: A script that logs ``loss`` 0..4, then (given a path) waits for that file to exist.
#: It exits 3 when the file never comes, so a test that forgot it fails instead of hanging.
GATED_SCRIPT = """
    import os, sys, time
    from runyard import Run
    run = Run.get_context()
    for i in range(5):
        run.log("loss", float(i))
    gate = sys.argv[1] if len(sys.argv) > 1 else ""
    deadline = time.time() + 90
    while gate and not os.path.exists(gate):
        if time.time() > deadline:
            sys.exit(3)
        time.sleep(0.02)
"""


def _pids_working_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` or below it."""
    root = str(folder.resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(int(entry))
    return found


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 90.0,
             interval: float = 0.05) -> T:
    """Poll ``predicate`` until it is truthy (bounded); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(interval)


class Harness:
    """A workspace folder with its config file, contexts on it and helpers to run scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "ws"
        self.config: dict[str, Any] = {"workspace_name": "ws", "version": 1,
                                       "max_concurrent_runs": 16}
        data_dir = self.path / ".runyard"
        data_dir.mkdir(parents=True)
        (data_dir / "config.json").write_text(json.dumps(self.config))
        self.src = root / "project"
        self.src.mkdir()
        self.gates = root / "gates"
        self.gates.mkdir()
        self._contexts: list[WorkspaceContext] = []
        self.ctx = self.context()

    def context(self) -> WorkspaceContext:
        """A new context on the same workspace (its own store connections)."""
        ctx = WorkspaceContext("ws", self.path, self.config)
        self._contexts.append(ctx)
        return ctx

    def gate(self, name: str) -> Path:
        """A file path outside the project (not in snapshots) for a script to wait on."""
        return self.gates / name

    def script(self, body: str = GATED_SCRIPT, name: str = "train.py") -> str:
        (self.src / name).write_text(textwrap.dedent(body))
        return name

    def fake(self, name: str, *fail_at: str, **settings: Any) -> str:
        """Create a fake target ``name`` with the given injection points."""
        create_compute(self.ctx, name, FakeConfiguration(fail_at=list(fail_at), **settings))
        return name

    def submit(self, target: str, *args: str, script: str | None = None,
               ctx: WorkspaceContext | None = None, experiment: str = "exp") -> RunRecord:
        name = script or self.script()
        config = ScriptRunConfig(source_directory=self.src, script=name, arguments=list(args),
                                 compute_target=target)
        return submit_script_run(ctx or self.ctx, experiment, config)

    def run(self, run_id: str, ctx: WorkspaceContext | None = None) -> RunRecord:
        rec = (ctx or self.ctx).store.get_run(run_id)
        assert rec is not None, f"run {run_id} is not in the store"
        return rec

    def drive(self, run_id: str, ctx: WorkspaceContext | None = None,
              until: Callable[[RunRecord], bool] = lambda r: r.status.terminal,
              timeout: float = 90.0) -> RunRecord:
        """``sync_run`` in a bounded loop until ``until(run)``."""
        c = ctx or self.ctx
        return wait_for(lambda: (lambda r: r if until(r) else None)(sync_run(c, run_id)),
                        f"run {run_id} to reach the wanted state (it is "
                        f"{self.run(run_id, c).status})", timeout)

    def statuses(self, run_id: str) -> list[RunStatus]:
        return [e.status for e in self.ctx.store.list_events(run_id)]

    def cleanup(self) -> None:
        """SIGKILL whatever runner or script this test started and left running."""
        handles: list[dict[str, Any]] = []
        try:
            runs = self.ctx.store.list_runs(RunFilter(top_level_only=False))
            handles += [r.handle for r in runs if r.handle]
        except Exception:  # noqa: BLE001 - best effort: the store may be what broke
            pass
        handles += read_starts(self.ctx)
        for data in handles:
            kill_job(LocalHandle(run_id=str(data["run_id"]), attempt=int(data["attempt"]),
                                 pid=int(data["pid"]), pid_start=data.get("pid_start"),
                                 run_dir=str(data["run_dir"])))
        # Anything else still working inside this test's workspace (an orphaned script, its
        # children) was started by this test.
        for pid in _pids_working_in(self.path):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for ctx in self._contexts:
            ctx.close()


@pytest.fixture(autouse=True)
def _no_detached_reconciler(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests drive runs themselves; a detached reconciler would race them uncounted.
    monkeypatch.setenv("RUNYARD_NO_RECONCILER", "1")


@pytest.fixture(autouse=True)
def fake_kind(monkeypatch: pytest.MonkeyPatch) -> type[FakeTarget]:
    """Register the fake kind for ``load_kind("fake")``."""
    monkeypatch.setitem(kinds.BUILTIN_KINDS, "fake", f"{FakeTarget.__module__}:FakeTarget")
    return FakeTarget


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()


@pytest.fixture
def contract_dir() -> Path:
    """This folder (subprocesses import ``fake_target`` from it)."""
    return Path(__file__).resolve().parent


@pytest.fixture
def python() -> str:
    return sys.executable
