"""Compute-target names and the configuration objects users create or attach targets with.

A configuration is validated when it is made and again before anything is stored; it is stored
as versioned JSON (never a pickle) without its secrets, which go to the encrypted secrets table.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from runyard.compute.vmsizes import check_int
from runyard.errors import ComputeTargetInvalid
from runyard.secrets import Secret

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

__all__ = ["ComputeConfiguration", "LocalProvisioningConfiguration", "check_compute_name",
           "check_int"]

CONFIG_SCHEMA_VERSION = 1
RESERVED_NAMES = frozenset({"local", "amlcompute", "containerinstance", "interactive"})
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,14}[A-Za-z0-9])?", re.ASCII)


def check_compute_name(name: object) -> str:
    """2 to 16 letters, digits or '-', starting and ending with a letter or digit; not reserved."""
    if not isinstance(name, str) or not (2 <= len(name) <= 16) or not _NAME.fullmatch(name):
        raise ComputeTargetInvalid(
            "name", f"invalid compute target name {name!r}: use 2 to 16 letters, digits or '-', "
            "starting and ending with a letter or digit (for example 'cpu-cluster')")
    if name.lower() in RESERVED_NAMES:
        raise ComputeTargetInvalid("name", f"{name!r} is reserved; choose another name "
                                   "(for example 'cpu-cluster')")
    return name


@dataclass
class ComputeConfiguration:
    """Base of provisioning and attach configurations (one subclass per kind)."""

    kind: ClassVar[str] = ""
    #: ``provision`` (runyard creates the target) or ``attach`` (the user already has it).
    mode: ClassVar[str] = "provision"
    #: Fields whose values are secrets: stored encrypted, never shown.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self.secret_fields:
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Secret(value))
        self.validate()

    def validate(self) -> None:
        """Raise ``ComputeTargetInvalid`` naming the first bad field."""

    def to_config(self) -> dict[str, Any]:
        """The stored JSON: every field but the secrets, plus the schema version."""
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name not in self.secret_fields}
        data["schema_version"] = CONFIG_SCHEMA_VERSION
        return data

    def secrets(self) -> dict[str, Secret]:
        """The secret fields that are set."""
        out: dict[str, Secret] = {}
        for name in self.secret_fields:
            value = getattr(self, name)
            if isinstance(value, Secret):
                out[name] = value
        return out

    @classmethod
    def build(cls, **settings: Any) -> Self:
        """Make and validate a configuration; an unknown setting is named in the error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known - {"schema_version"})
        if unknown:
            raise ComputeTargetInvalid(unknown[0], f"unknown setting for a {cls.kind} target; "
                                       f"known: {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in settings.items() if k in known})

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Self:
        """Rebuild from stored JSON (secrets are not part of it)."""
        return cls.build(**data)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={'***' if k in self.secret_fields and v is not None else v!r}"
                          for k, v in ((f.name, getattr(self, f.name)) for f in fields(self)))
        return f"{type(self).__name__}({shown})"


@dataclass(repr=False)
class LocalProvisioningConfiguration(ComputeConfiguration):
    """A named local target: its own concurrency limit on this machine."""

    kind: ClassVar[str] = "local"
    max_concurrent_runs: int | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.max_concurrent_runs is not None:
            self.max_concurrent_runs = check_int("max_concurrent_runs",
                                                 self.max_concurrent_runs, 1)
