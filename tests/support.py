"""Small helpers shared by the test suites (``tests/`` is on ``sys.path`` via the root
conftest): bounded waits, workspace config edits, process checks."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runyard.compute.procs import process_start_time


def wait_for(what: Callable[[], Any], timeout: float, message: str,
             interval: float = 0.05) -> Any:
    """Poll ``what`` until it returns something truthy (returned), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def set_config(root: Path, **values: object) -> None:
    """Set keys of a workspace's ``.runyard/config.json`` (reopen the workspace to see them)."""
    cfg_file = root / ".runyard" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.update(values)
    cfg_file.write_text(json.dumps(cfg))


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    return process_start_time(pid) is not None


def write(folder: Path, name: str, body: str) -> Path:
    """Write ``body`` (dedented) to ``folder/name``, making the folders; returns the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path
