"""The ``remote`` kind (an SSH-reachable machine, Azure ML ``RemoteCompute``): configuration.

Executing over SSH arrives with the remote-machines feature; until then attaching is refused
with ``ComputeTargetNotSupported`` after the configuration has been validated (and nothing is
stored). Hostnames and usernames are checked here so that no value can smuggle shell syntax or
an ssh option into a command line later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runyard.compute.base import ComputeTarget, JobEvents, JobSpec, TargetStatus
from runyard.compute.capabilities import REMOTE
from runyard.compute.config import ComputeConfiguration, check_int
from runyard.errors import ComputeTargetInvalid, ComputeTargetNotSupported
from runyard.secrets import Secret

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]|"
                   r"[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+", re.ASCII)
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", re.ASCII)
NOT_LANDED = ("the remote kind (SSH) is not included in this build yet (remote-machines "
              "feature); use the 'local' target meanwhile")


@dataclass(repr=False)
class RemoteAttachConfiguration(ComputeConfiguration):
    """Address, port and credentials of an SSH host (password or private key)."""

    kind: ClassVar[str] = "remote"
    mode: ClassVar[str] = "attach"
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "private_key_passphrase")
    address: str = ""
    ssh_port: int = 22
    username: str = ""
    password: Secret | None = None
    private_key_file: str | None = None
    private_key_passphrase: Secret | None = None
    trust_unknown_host_key: bool = False
    tags: dict[str, str] = field(default_factory=dict)

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
        if self.password is None and not self.private_key_file:
            raise ComputeTargetInvalid("password", "give a password or a private_key_file")


class RemoteCompute(ComputeTarget):
    """An SSH-reachable machine (Azure ML ``RemoteCompute``)."""

    kind: ClassVar[str] = "remote"
    capabilities = REMOTE
    managed: ClassVar[bool] = False
    config_class: ClassVar[type[ComputeConfiguration]] = RemoteAttachConfiguration

    @staticmethod
    def attach_configuration(**kwargs: Any) -> RemoteAttachConfiguration:
        """Validate and return an attach configuration."""
        return RemoteAttachConfiguration.build(**kwargs)

    @classmethod
    def preflight(cls, config: ComputeConfiguration) -> None:
        raise ComputeTargetNotSupported(NOT_LANDED)

    def status(self) -> TargetStatus:
        rec = self.record
        return TargetStatus(rec.state if rec else "Unknown", list(rec.errors) if rec else [])

    def submit(self, job: JobSpec) -> dict[str, Any]:
        raise ComputeTargetNotSupported(NOT_LANDED)

    def poll(self, handle: dict[str, Any], offsets: dict[str, int]) -> JobEvents:
        raise ComputeTargetNotSupported(NOT_LANDED)

    def cancel(self, handle: dict[str, Any]) -> None:
        raise ComputeTargetNotSupported(NOT_LANDED)
