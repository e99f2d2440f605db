"""Fixtures shared by the fault tests: a real sshd test host per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from sshhost import SSHHost, missing_tools, start_host, stop_host  # noqa: E402

from runyard.compute.remote.ssh.connection import POOL  # noqa: E402


@pytest.fixture(scope="module")
def host() -> Iterator[SSHHost]:
    """A real sshd in a network namespace (``scripts/test`` installs what it needs)."""
    lacking = missing_tools()
    if lacking:
        pytest.fail(f"the remote fault tests need {', '.join(lacking)} (scripts/test "
                    "installs openssh-server, iproute2 and openssl; run as root)",
                    pytrace=False)
    h = start_host()
    try:
        yield h
    finally:
        POOL.close_all()
        stop_host(h)
