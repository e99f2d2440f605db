"""The Python floors (runtime >= 3.8, SDK/CLI >= 3.10) hold, and the gate that says so can fail.

``scripts/pyfloor`` is the same check scripts/test runs next to ruff and mypy: vermin on the
runtime bundle (its file list comes from ``bundle_files()``) plus the SSH host agent against
3.8, and on all of ``src/runyard`` against 3.10, plus an AST check for type expressions that
are evaluated at run time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runyard.compute.remote.ssh import agent
from runyard.runtime.bundle import bundle_files

ROOT = Path(__file__).resolve().parents[2]
PYFLOOR = ROOT / "scripts" / "pyfloor"


def pyfloor(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PYFLOOR), *map(str, files)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={"PATH": "/usr/bin:/bin",
                                                                 "PYTHON": sys.executable})


def test_the_project_holds_both_floors() -> None:
    got = pyfloor()
    assert got.returncode == 0, got.stdout + got.stderr
    n = len(bundle_files()) + 1  # the bundle and hostagent.py
    assert f"runtime ({n} files) must run on Python >= 3.8" in got.stderr
    assert "SDK/CLI (src/runyard) must run on Python >= 3.10" in got.stderr
    assert "both floors hold" in got.stderr


@pytest.mark.parametrize(("code", "expected"), [
    ("from datetime import UTC\n", "'datetime.UTC' member requires !2, 3.11"),
    ("import datetime\nprint(datetime.UTC)\n", "'datetime.UTC' member requires !2, 3.11"),
    ("import enum\nclass S(enum.StrEnum):\n    A = 'a'\n", "'enum.StrEnum' member requires"),
    ("print(list(zip([1], [2], strict=True)))\n", "'zip(strict)' requires !2, 3.10"),
    ("print('ab'.removeprefix('a'))\n", "'str.removeprefix' member requires !2, 3.9"),
    ("x = 1\nmatch x:\n    case 1:\n        pass\n", "pattern matching requires !2, 3.10"),
    ("from typing import Any\nRow = dict[str, Any]\n", "dict[...] evaluated at run time"),
    ("Maybe = int | None\n", "X | Y union evaluated at run time requires 3.10"),
    ("from typing import cast\nx = cast(list[int], [])\n", "list[...] evaluated at run time"),
    ("from collections.abc import Callable\nF = Callable[[int], int]\n",
     "Callable[...] evaluated at run time"),
])
def test_a_runtime_file_needing_a_newer_python_fails_the_gate(tmp_path: Path, code: str,
                                                              expected: str) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from __future__ import annotations\n" + code)
    got = pyfloor(bad)
    assert got.returncode == 1, got.stdout + got.stderr
    assert expected in got.stdout + got.stderr
    assert "a Python floor is broken" in got.stderr


def test_annotations_are_not_evaluated_so_they_pass(tmp_path: Path) -> None:
    ok = tmp_path / "ok.py"
    ok.write_text(textwrap.dedent("""\
        from __future__ import annotations
        from dataclasses import dataclass, field
        from datetime import datetime, timezone
        from typing import Optional


        @dataclass
        class Row:
            tags: dict[str, str | None] = field(default_factory=dict)
            seen: list[int] | None = None


        def f(a: int | None, b: tuple[int, ...] = ()) -> list[str] | None:
            c: set[int] | None = None
            flags = 1 | 2
            return [str(datetime.now(timezone.utc)), str(a), str(c), str(flags)]


        X = Optional[int]
    """))
    got = pyfloor(ok)
    assert got.returncode == 0, got.stdout + got.stderr


def test_the_attach_check_imports_the_bundle_it_would_send(tmp_path: Path) -> None:
    # the program attach runs with each candidate python on the host, run here with this one
    got = subprocess.run([sys.executable, "-c", agent._IMPORT_CHECK],  # noqa: SLF001
                         input=agent.bundle_texts(), capture_output=True, timeout=60)
    assert got.stdout.strip() == b'{"ok": true}', got.stderr
