"""The VM-size table: names users give as ``vm_size`` and the node shape each one means.

Azure sizes named by the Azure ML v1 reference and its samples, plus ``local-*`` shapes for nodes
of the local provider. On the local provider a node gets the size's CPUs, memory and GPUs as Ray
resources; cloud providers map the name to an instance type.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from runyard.errors import ComputeTargetInvalid


@dataclass(frozen=True)
class VmSize:
    """One node shape."""

    name: str
    vcpus: int
    memory_gb: float
    gpus: int = 0
    family: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``supported_vmsizes`` rows)."""
        return asdict(self)


VM_SIZES: tuple[VmSize, ...] = (
    VmSize("STANDARD_D1_V2", 1, 3.5, 0, "Dv2"),
    VmSize("STANDARD_D2_V2", 2, 7, 0, "Dv2"),
    VmSize("STANDARD_D3_V2", 4, 14, 0, "Dv2"),
    VmSize("STANDARD_D4_V2", 8, 28, 0, "Dv2"),
    VmSize("STANDARD_D11_V2", 2, 14, 0, "Dv2"),
    VmSize("STANDARD_D12_V2", 4, 28, 0, "Dv2"),
    VmSize("STANDARD_DS2_V2", 2, 7, 0, "DSv2"),
    VmSize("STANDARD_DS3_V2", 4, 14, 0, "DSv2"),
    VmSize("STANDARD_DS4_V2", 8, 28, 0, "DSv2"),
    VmSize("STANDARD_DS12_V2", 4, 28, 0, "DSv2"),
    VmSize("STANDARD_D2S_V3", 2, 8, 0, "Dsv3"),
    VmSize("STANDARD_D4S_V3", 4, 16, 0, "Dsv3"),
    VmSize("STANDARD_F4S_V2", 4, 8, 0, "Fsv2"),
    VmSize("STANDARD_NC6", 6, 56, 1, "NC"),
    VmSize("STANDARD_NC12", 12, 112, 2, "NC"),
    VmSize("STANDARD_NC24", 24, 224, 4, "NC"),
    VmSize("STANDARD_NC6S_V3", 6, 112, 1, "NCv3"),
    VmSize("STANDARD_NC24S_V3", 24, 448, 4, "NCv3"),
    VmSize("STANDARD_ND6S", 6, 112, 1, "ND"),
    VmSize("STANDARD_NV6", 6, 56, 1, "NV"),
    VmSize("local-1cpu", 1, 1, 0, "local"),
    VmSize("local-2cpu", 2, 2, 0, "local"),
    VmSize("local-4cpu", 4, 4, 0, "local"),
    VmSize("local-1gpu", 1, 2, 1, "local"),
)

_BY_NAME = {v.name.upper(): v for v in VM_SIZES}


def get_vm_size(name: object, field: str = "vm_size") -> VmSize:
    """The size named ``name`` (case-insensitive) or an error listing the closest matches."""
    if not isinstance(name, str) or not name:
        raise ComputeTargetInvalid(field, "give a vm size, e.g. 'STANDARD_D2_V2' (see "
                                   "supported_vmsizes())")
    found = _BY_NAME.get(name.upper())
    if found is None:
        close = difflib.get_close_matches(name.upper(), list(_BY_NAME), n=3, cutoff=0.5)
        hint = f"closest: {', '.join(_BY_NAME[c].name for c in close)}" if close else \
            "see supported_vmsizes()"
        raise ComputeTargetInvalid(field, f"unknown vm size {name!r}; {hint}")
    return found


def supported_vmsizes() -> list[dict[str, Any]]:
    """All sizes as dicts (name, vcpus, memory_gb, gpus, family)."""
    return [v.to_dict() for v in VM_SIZES]
