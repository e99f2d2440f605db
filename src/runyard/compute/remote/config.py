"""Configuration of the ``remote`` kind: address, port, credentials and where runyard works.

Hostnames, user names and every path that reaches the host are checked here, so that no value
can smuggle shell syntax or an ssh option into a command line.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from runyard.compute.config import ComputeConfiguration, check_int
from runyard.errors import ComputeTargetInvalid
from runyard.secrets import Secret

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]|"
                   r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+", re.ASCII)
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", re.ASCII)
#: Paths on the host (workdir, python): plain characters only, never an option or shell syntax.
_REMOTE_PATH = re.compile(r"(?:~/?|/)?(?!-)[A-Za-z0-9_./+@%=,:-]*", re.ASCII)
_LOCAL_PATH_BAD = re.compile(r"[\x00-\x1f\x7f;&|`$<>]")
_HOST_KEY = re.compile(r"[a-z0-9.@-]+ [A-Za-z0-9+/]+={0,3}", re.ASCII)
_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,255}", re.ASCII)
_T = TypeVar("_T")

DEFAULT_WORKDIR = "~/.runyard"
DEFAULT_UNREACHABLE_TIMEOUT = 300.0
CANCEL_GRACE_SECONDS = 10.0
#: Longest silence of the host during one poll before the connection counts as broken.
POLL_TIMEOUT_SECONDS = 30.0


def _check_remote_path(name: str, value: object, *, allow_tilde: bool = True) -> str:
    if (not isinstance(value, str) or not value or ".." in value.split("/")
            or not _REMOTE_PATH.fullmatch(value) or (not allow_tilde and value.startswith("~"))):
        raise ComputeTargetInvalid(name, f"{value!r} is not a plain path on the host (letters, "
                                   "digits and _ . / + @ % = , : -; it may not start with '-' "
                                   "or hold spaces, quotes or shell syntax)")
    return value


def _check_local_path(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or value.startswith("-") or \
            _LOCAL_PATH_BAD.search(value):
        raise ComputeTargetInvalid(name, f"{value!r} is not a usable file path (no control "
                                   "characters, no leading '-', none of ; & | ` $ < >)")
    return value


@dataclass(repr=False)
class RemoteAttachConfiguration(ComputeConfiguration):
    """Address, port and credentials of an SSH host, and where runyard works there."""

    kind: ClassVar[str] = "remote"
    mode: ClassVar[str] = "attach"
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "private_key_passphrase",
                                                "private_key")
    address: str = ""
    ssh_port: int = 22
    username: str = ""
    password: Secret | None = None
    private_key_file: str | None = None
    private_key_passphrase: Secret | None = None
    #: Accept a host key that is not in known_hosts (recorded on the target).
    trust_unknown_host_key: bool = False
    #: known_hosts file to check host keys against (default ``~/.ssh/known_hosts``).
    known_hosts_file: str | None = None
    #: Python on the host that runs runyard's runner (default: python3 found at attach).
    python: str | None = None
    #: runyard's folder on the host (code, environments, runs); made absolute at attach.
    workdir: str = DEFAULT_WORKDIR
    #: Attach refuses a host with less free disk than this under ``workdir``.
    min_free_disk_mb: int = 256
    #: A run whose host cannot be reached for this long turns NotResponding.
    unreachable_timeout_seconds: float = DEFAULT_UNREACHABLE_TIMEOUT
    #: Runs of this target that execute at once on the host (None: no limit).
    max_concurrent_runs: int | None = None
    #: The host key accepted at attach (``<type> <base64>``); later connections must match.
    host_key: str | None = None
    #: What attach found on the host (OS, python version, tools).
    host_info: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: The private key itself (read from ``private_key_file`` at attach; stored encrypted).
    private_key: Secret | None = None

    def validate(self) -> None:
        if not isinstance(self.address, str) or not _HOST.fullmatch(self.address):
            raise ComputeTargetInvalid("address", f"{self.address!r} is not a hostname or IP "
                                       "address (letters, digits, '.', '-', ':'; it may not "
                                       "start with '-')")
        if not isinstance(self.username, str) or not _USER.fullmatch(self.username):
            raise ComputeTargetInvalid("username", f"{self.username!r} is not a valid user "
                                       "name (letters, digits, '_', '.', '-'; it may not start "
                                       "with '-')")
        self.ssh_port = check_int("ssh_port", self.ssh_port, 1)
        if self.ssh_port > 65535:
            raise ComputeTargetInvalid("ssh_port", "must be 65535 or less")
        if (self.password is None and not self.private_key_file and self.private_key is None
                and self.host_key is None):  # attached ones keep credentials in the secrets
            raise ComputeTargetInvalid("password", "give a password or a private_key_file")
        for name in ("password", "private_key_passphrase", "private_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                raise ComputeTargetInvalid(name, "must be a string")
        if self.private_key_file is not None:
            _check_local_path("private_key_file", self.private_key_file)
        if self.known_hosts_file is not None:
            _check_local_path("known_hosts_file", self.known_hosts_file)
        if not isinstance(self.trust_unknown_host_key, bool):
            raise ComputeTargetInvalid("trust_unknown_host_key", "must be True or False")
        if self.python is not None:
            _check_remote_path("python", self.python, allow_tilde=False)
        _check_remote_path("workdir", self.workdir)
        self.min_free_disk_mb = check_int("min_free_disk_mb", self.min_free_disk_mb, 0)
        t = self.unreachable_timeout_seconds
        if isinstance(t, str):
            with contextlib.suppress(ValueError):
                t = float(t)
        if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t) \
                or t <= 0:
            raise ComputeTargetInvalid("unreachable_timeout_seconds",
                                       f"must be a number of seconds above 0, got {t!r}")
        self.unreachable_timeout_seconds = float(t)
        if self.max_concurrent_runs is not None:
            self.max_concurrent_runs = check_int("max_concurrent_runs",
                                                 self.max_concurrent_runs, 1)
        if self.host_key is not None and (not isinstance(self.host_key, str)
                                          or not _HOST_KEY.fullmatch(self.host_key)):
            raise ComputeTargetInvalid("host_key", "must look like '<type> <base64>'")
        if not isinstance(self.host_info, dict) or not isinstance(self.tags, dict):
            raise ComputeTargetInvalid("tags", "must be a mapping")
