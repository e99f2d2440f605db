"""The runtime bundle works in a bare interpreter with nothing but the bundle on its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runyard.runtime.bundle import BUNDLE_FILES, bundle_digest, write_bundle


def test_bundle_runs_in_a_bare_interpreter(tmp_path: Path) -> None:
    write_bundle(tmp_path / "lib")
    code = ("import sys; from runyard import Run; import runyard.runtime.runner; "
            "run = Run.get_context(); run.log('x', 1); "
            "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] not in "
            "sys.stdlib_module_names and m.split('.')[0] not in ('runyard', '__main__')))")
    out = subprocess.run([sys.executable, "-S", "-c", code], env={"PYTHONPATH": str(tmp_path /
                         "lib")}, capture_output=True, text=True, check=True)
    assert "x = 1" in out.stdout
    assert out.stdout.strip().endswith("[]")


def test_bundle_lists_existing_files_and_has_a_stable_digest(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    assert all((root / "runyard" / rel).is_file() for rel in BUNDLE_FILES)
    assert bundle_digest() == bundle_digest() and len(bundle_digest()) == 16


def test_ported_azure_scripts_find_run_in_the_bundle(tmp_path: Path) -> None:
    write_bundle(tmp_path / "lib")
    code = ("from runyard.compat.azureml.core import Run; Run.get_context().log('y', 2)")
    out = subprocess.run([sys.executable, "-S", "-c", code], env={"PYTHONPATH": str(tmp_path /
                         "lib")}, capture_output=True, text=True, check=True)
    assert "y = 2" in out.stdout
