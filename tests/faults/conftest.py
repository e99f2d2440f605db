"""Fixtures shared by the fault tests: a real sshd test host per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from sshhost import SSHHost, running_host  # noqa: E402


@pytest.fixture(scope="module")
def host() -> Iterator[SSHHost]:
    """A real sshd in a network namespace (``scripts/test`` installs what it needs)."""
    with running_host("the remote fault tests") as h:
        yield h
