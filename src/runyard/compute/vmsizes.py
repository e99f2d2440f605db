"""The VM-size table: names users give as ``vm_size`` and the node shape each one means.

Azure sizes named by the Azure ML v1 reference and its samples, plus ``local-*`` shapes for nodes
of the local provider. On the local provider a node gets the size's CPUs, memory and GPUs as Ray
resources; cloud providers map the name to an instance type.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from runyard.errors import ComputeTargetInvalid, InvalidParameter


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


def check_int(field_name: str, value: object, minimum: int) -> int:
    """An integer of at least ``minimum`` (strings of digits accepted, as Azure did)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ComputeTargetInvalid(field_name, f"must be a whole number of {minimum} or more, "
                                   f"got {value!r}")
    return value


#: Azure's VM priorities (``lowpriority`` nodes may be preempted).
VM_PRIORITIES = ("dedicated", "lowpriority")


def requested_resources(size: VmSize, request: dict[str, float]) -> dict[str, float]:
    """What one node of a run asks Ray for: its request, or the whole node of ``size``.

    Raises ``InvalidParameter`` for a request the size can never satisfy.
    """
    cpu = request.get("cpu")
    gpu = request.get("gpu")
    mem = request.get("memory_gb")
    if cpu is not None and cpu > size.vcpus:
        raise InvalidParameter("resources.cpu", f"the run asks for {cpu:g} CPUs per node, but "
                               f"a {size.name} node has {size.vcpus}; ask for at most "
                               f"{size.vcpus} or choose a larger vm_size")
    if gpu is not None and gpu > size.gpus:
        raise InvalidParameter("resources.gpu", f"the run asks for {gpu:g} GPUs per node, but "
                               f"a {size.name} node has {size.gpus}; "
                               + ("choose a GPU vm_size (e.g. STANDARD_NC6)" if not size.gpus
                                  else f"ask for at most {size.gpus}"))
    if mem is not None and mem > size.memory_gb:
        raise InvalidParameter("resources.memory_gb", f"the run asks for {mem:g} GB per node, "
                               f"but a {size.name} node has {size.memory_gb:g} GB")
    out: dict[str, float] = {"CPU": float(cpu if cpu is not None else size.vcpus)}
    gpus = gpu if gpu is not None else size.gpus
    if gpus:
        out["GPU"] = float(gpus)
    if mem is not None:
        out["memory"] = float(int(mem * 1024 ** 3))
    return out


def request_of(rc: Any) -> dict[str, float]:
    """What ``rc.resources`` asks of one node (cpu, gpu, memory_gb)."""
    r = rc.resources
    return {k: float(v) for k, v in (("cpu", r.cpu), ("gpu", r.gpu),
                                     ("memory_gb", r.memory_gb)) if v is not None}


def check_run_based(rc: Any) -> None:
    """Checks of ``target="amlcompute"`` (a cluster made for the run) before anything starts."""
    ac = rc.amlcompute
    if not ac.vm_size:
        raise InvalidParameter("amlcompute.vm_size", "target 'amlcompute' makes a cluster for "
                               "this run: set run_config.amlcompute.vm_size (see "
                               "AmlCompute.supported_vmsizes())")
    size = get_vm_size(ac.vm_size, "amlcompute.vm_size")
    if ac.vm_priority not in (None, *VM_PRIORITIES):
        raise InvalidParameter("amlcompute.vm_priority", f"{ac.vm_priority!r} is not one of "
                               f"{', '.join(VM_PRIORITIES)}")
    count = check_int("amlcompute._cluster_max_node_count", ac._cluster_max_node_count, 1)
    if rc.node_count > count:
        raise InvalidParameter("amlcompute._cluster_max_node_count", f"the run needs "
                               f"{rc.node_count} nodes but the cluster may have only {count}; "
                               f"set _cluster_max_node_count to {rc.node_count} or more")
    requested_resources(size, request_of(rc))
