"""``ComputeTarget`` and its per-kind classes: the user-facing side of compute targets.

They wrap the workspace's records and go through its client (``runyard.client``): creating,
attaching, status, waiting, updating and deleting are services; the kind-specific machinery
lives in ``runyard.compute.<kind>``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from runyard.compute.base import Capabilities, TargetStatus
from runyard.compute.capabilities import CLUSTER, LOCAL, REMOTE
from runyard.compute.cluster.config import ClusterProvisioningConfiguration
from runyard.compute.config import ComputeConfiguration, LocalProvisioningConfiguration
from runyard.compute.remote.config import RemoteAttachConfiguration
from runyard.compute.vmsizes import supported_vmsizes
from runyard.errors import InvalidParameter

if TYPE_CHECKING:
    from pathlib import Path

    from runyard.compute.base import ComputeKind
    from runyard.entities import ComputeRecord
    from runyard.sdktypes import WorkspaceLike as Workspace
    from runyard.secrets import Secret

__all__ = ["ClusterCompute", "ComputeTarget", "ComputeTargetStatus", "LocalTarget",
           "RemoteCompute"]

TERMINAL_STATES = ("Succeeded", "Failed", "Canceled")


def progress_line(name: str, st: TargetStatus) -> str:
    """One line of a target's state for people: ``cpu-cluster: Succeeded, nodes 1 -> 2
    (idle 1, preparing 1)`` (node states that are not zero; clusters only)."""
    line = f"{name}: {st.provisioning_state}"
    if st.allocation_state:
        counts = ", ".join(f"{k} {v}" for k, v in st.node_state_counts.items() if v)
        nodes = (f"nodes {st.current_node_count}" if st.current_node_count ==
                 st.target_node_count else
                 f"nodes {st.current_node_count} -> {st.target_node_count}")
        line += f", {nodes}" + (f" ({counts})" if counts else "")
    return line


def print_progress(name: str, st: TargetStatus, last: str, out: Any = None) -> str:
    """Print ``progress_line`` when it differs from ``last``; returns the line."""
    line = progress_line(name, st)
    if line != last:
        print(line, file=out or sys.stdout, flush=True)
    return line


_NODE_STATES = ("preparing", "running", "idle", "unusable", "leaving", "preempted")


@dataclass
class ComputeTargetStatus(TargetStatus):
    """A target's status as ``get_status()`` returns it: runyard's :class:`TargetStatus`
    plus Azure ML v1's ``AmlComputeStatus`` view (``serialize()``, ``vm_size``, ...)."""

    vm_size: str | None = None
    vm_priority: str | None = None
    scale_settings: dict[str, Any] = field(default_factory=dict)

    def serialize(self) -> dict[str, Any]:
        """v1's camelCase dict: ``provisioningState``, ``errors``, ``allocationState``
        (``Steady``/``Resizing``, clusters), ``currentNodeCount``, ``targetNodeCount``,
        ``nodeStateCounts`` (``idleNodeCount``, ``runningNodeCount``, ...), ``vmSize``,
        ``vmPriority``, ``scaleSettings``."""
        counts = self.node_state_counts
        return {
            "provisioningState": self.provisioning_state,
            "errors": list(self.errors) or None,
            "allocationState": self.allocation_state.capitalize() or None,
            "currentNodeCount": self.current_node_count,
            "targetNodeCount": self.target_node_count,
            "nodeStateCounts": {f"{k}NodeCount": int(counts.get(k, 0)) for k in _NODE_STATES},
            "vmSize": self.vm_size, "vmPriority": self.vm_priority,
            "scaleSettings": dict(self.scale_settings) or None,
        }


class ComputeTarget:
    """A compute target of a workspace.

    ``ComputeTarget(workspace, name)`` returns the class of the stored target's kind (or the
    built-in ``local``) and raises ``ComputeTargetNotFound`` for an unknown name.
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]
    _by_kind: ClassVar[dict[str, type[ComputeTarget]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind and cls.kind not in ComputeTarget._by_kind:
            ComputeTarget._by_kind[cls.kind] = cls

    def __new__(cls, workspace: Workspace | None = None, name: str | None = None,
                *args: Any, **kwargs: Any) -> ComputeTarget:
        if cls is ComputeTarget:
            if workspace is None or name is None:
                raise TypeError("ComputeTarget(workspace, name) needs both arguments")
            kind = workspace.client.get_compute(name).kind
            cls = ComputeTarget._by_kind.get(kind, ComputeTarget)
        return super().__new__(cls)

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name

    @classmethod
    def _wrap(cls, workspace: Workspace, rec: ComputeRecord) -> ComputeTarget:
        obj_cls = ComputeTarget._by_kind.get(rec.kind, ComputeTarget)
        obj = object.__new__(obj_cls)
        ComputeTarget.__init__(obj, workspace, rec.name)
        return obj

    # -- resource API ------------------------------------------------------------------------
    @property
    def record(self) -> ComputeRecord | None:
        """The stored row (None for the built-in ``local``)."""
        if self.name == "local":
            return None
        return self.workspace.client.get_compute(self.name)

    @property
    def config(self) -> dict[str, Any]:
        """The stored configuration (no secrets)."""
        rec = self.record
        return dict(rec.config) if rec else {}

    @property
    def managed(self) -> bool:
        """Created (and deleted) by runyard, rather than attached."""
        return bool(self.workspace.client.get_compute(self.name).managed)

    @property
    def provisioning_state(self) -> str:
        """Creating, Succeeded, Failed, Deleting..."""
        return self.status().provisioning_state

    @classmethod
    def create(cls, workspace: Workspace, name: str,
               provisioning_configuration: ComputeConfiguration) -> ComputeTarget:
        """Create a managed target (validated before anything is stored)."""
        rec = workspace.client.create_compute(name, provisioning_configuration)
        return cls._wrap(workspace, rec)

    @classmethod
    def attach(cls, workspace: Workspace, name: str,
               attach_configuration: ComputeConfiguration) -> ComputeTarget:
        """Attach an existing machine or cluster (checked before anything is stored)."""
        rec = workspace.client.attach_compute(name, attach_configuration)
        return cls._wrap(workspace, rec)

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        """Every target of the workspace, ``local`` first."""
        return [ComputeTarget._wrap(workspace, rec) for rec in workspace.client.list_compute()]

    def status(self) -> TargetStatus:
        """Provisioning state, errors and (for clusters) node counts."""
        return self.workspace.client.compute_status(self.name)

    def get_status(self) -> ComputeTargetStatus:
        """Provisioning state, errors and (for clusters) node counts; ``serialize()`` gives
        Azure ML v1's camelCase dict."""
        st = self.status()
        cfg = self.config
        scale: dict[str, Any] = {}
        if "max_nodes" in cfg:
            scale = {"minNodeCount": cfg.get("min_nodes", 0), "maxNodeCount": cfg["max_nodes"],
                     "nodeIdleTimeBeforeScaleDown":
                         f"PT{int(cfg.get('idle_seconds_before_scaledown') or 0)}S"}
        return ComputeTargetStatus(
            st.provisioning_state, list(st.errors), dict(st.node_state_counts),
            current_node_count=st.current_node_count, target_node_count=st.target_node_count,
            allocation_state=st.allocation_state, vm_size=cfg.get("vm_size"),
            vm_priority=cfg.get("vm_priority"), scale_settings=scale)

    def _min_nodes_default(self) -> int | None:
        """The node count ``wait_for_completion`` waits for when none is given: a cluster's
        ``min_nodes``; None (no node wait) for targets without nodes."""
        return None

    def wait_for_completion(self, show_output: bool = False, min_node_count: int | None = None,
                            timeout_in_minutes: float | None = 20,
                            is_delete_operation: bool = False,
                            timeout: float | None = None) -> TargetStatus:
        """Wait until provisioning ends and, on a cluster, until ``min_node_count`` nodes are
        up (default: its ``min_nodes``), as Azure ML v1's ``AmlCompute.wait_for_completion``.

        Returns the last status, without raising, when provisioning ended Failed or Canceled,
        errors were reported, the nodes are up, or ``timeout_in_minutes`` (default 20;
        ``timeout``: seconds, wins) passed. Prints progress with ``show_output``.
        """
        if min_node_count is not None and (not isinstance(min_node_count, int)
                                           or isinstance(min_node_count, bool)
                                           or min_node_count < 0):
            raise InvalidParameter("min_node_count", f"must be a whole number of nodes (0 or "
                                   f"more), got {min_node_count!r}")
        limit = timeout if timeout is not None else (
            timeout_in_minutes * 60 if timeout_in_minutes is not None else 20 * 60)
        deadline = time.monotonic() + limit
        want = min_node_count if min_node_count is not None else self._min_nodes_default()
        last = ""
        while True:
            st = self.status()
            if show_output:
                last = print_progress(self.name, st, last)
            state = st.provisioning_state
            if state in TERMINAL_STATES and (
                    state != "Succeeded" or st.errors or want is None
                    or st.current_node_count >= want):
                if show_output and st.errors:
                    print("errors: " + "; ".join(st.errors), flush=True)
                return st
            if time.monotonic() > deadline:
                return st
            time.sleep(0.5)

    def update(self, **changes: Any) -> None:
        """Change updatable settings (for example a cluster's min/max nodes)."""
        self.workspace.client.update_compute(self.name, changes)

    def delete(self, force: bool = False) -> None:
        """Delete a managed target; live runs make it refuse unless ``force``."""
        self.workspace.client.delete_compute(self.name, force=force, detach=False)

    def detach(self, force: bool = False) -> None:
        """Detach an attached target; live runs make it refuse unless ``force``."""
        self.workspace.client.delete_compute(self.name, force=force, detach=True)

    def serialize(self) -> dict[str, Any]:
        """Name, kind, state and configuration (never secrets)."""
        rec = self.workspace.client.get_compute(self.name)
        st = self.status()
        return {"name": self.name, "kind": rec.kind, "managed": rec.managed,
                "provisioning_state": st.provisioning_state, "errors": st.errors,
                "node_state_counts": st.node_state_counts,
                "current_node_count": st.current_node_count, "configuration": self.config}

    # -- kind-specific access (embedded workspaces) ------------------------------------------
    def _kind(self) -> ComputeKind:
        kind: ComputeKind = self.workspace.client.compute_kind(self.name, self.kind or None)
        return kind

    def secret(self, key: str) -> Secret | None:
        """A decrypted secret of this target (only for the code that uses it)."""
        return self._kind().secret(key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ComputeTarget) and other.name == self.name
                and other.workspace == self.workspace)

    def __hash__(self) -> int:
        return hash((self.workspace, self.name))


class LocalTarget(ComputeTarget):
    """This machine (``local`` is built in; named local targets have their own limit)."""

    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = LOCAL

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> LocalProvisioningConfiguration:
        """A named local target's settings (``max_concurrent_runs``, description, tags)."""
        return LocalProvisioningConfiguration.build(**kwargs)

    @property
    def max_concurrent_runs(self) -> int:
        """Runs of this target that may execute at once; the rest wait in Queued."""
        value: int = self._kind().max_concurrent_runs  # type: ignore[attr-defined]
        return value


class ClusterCompute(ComputeTarget):
    """A managed, autoscaling Ray cluster (Azure ML ``AmlCompute``)."""

    kind: ClassVar[str] = "cluster"
    capabilities: ClassVar[Capabilities] = CLUSTER

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> ClusterProvisioningConfiguration:
        """Validate and return a cluster configuration (see its fields)."""
        return ClusterProvisioningConfiguration.build(**kwargs)

    def _min_nodes_default(self) -> int | None:
        return int(self.config.get("min_nodes") or 0)

    @staticmethod
    def supported_vmsizes(workspace: Any = None, location: str | None = None
                          ) -> list[dict[str, Any]]:
        """The VM sizes a cluster can use (name, vcpus, memory_gb, gpus, family)."""
        return supported_vmsizes()

    @staticmethod
    def cluster_config(config: ClusterProvisioningConfiguration, name: str) -> dict[str, Any]:
        """The Ray config of ``config``: a ``ray up`` config (azure, aws, gcp), a KubeRay
        ``RayCluster`` manifest (kubernetes), or the local autoscaler config."""
        from runyard.compute.cluster.ray import configs  # noqa: PLC0415

        if config.provider == "kubernetes":
            return configs.kuberay_manifest(config, name)
        if config.provider == "local":
            return configs.local_config(config, name, "127.0.0.1:6379", "nodes.json")
        return configs.launcher_config(config, name)

    @property
    def cluster_dir(self) -> Path:
        """``<workspace>/.runyard/clusters/<name>``."""
        value: Path = self._kind().cluster_dir  # type: ignore[attr-defined]
        return value

    def head_state(self) -> Any:
        """The cluster's saved Ray head state (None before provisioning / after deletion)."""
        return self._kind().head_state()  # type: ignore[attr-defined]

    def dashboard(self, state: Any = None) -> Any:
        """HTTP client of the cluster's Ray head."""
        return self._kind().dashboard(state)  # type: ignore[attr-defined]

    def list_nodes(self) -> list[dict[str, Any]]:
        """The cluster's worker nodes: id, IP, state, resources and (local) raylet pid."""
        nodes: list[dict[str, Any]] = self._kind().list_nodes()  # type: ignore[attr-defined]
        return nodes


class RemoteCompute(ComputeTarget):
    """An SSH-reachable Linux machine (Azure ML ``RemoteCompute``)."""

    kind: ClassVar[str] = "remote"
    capabilities: ClassVar[Capabilities] = REMOTE

    @staticmethod
    def attach_configuration(address: str = "", ssh_port: int = 22, username: str = "",
                             password: str | None = None, private_key_file: str | None = None,
                             private_key_passphrase: str | None = None,
                             **more: Any) -> RemoteAttachConfiguration:
        """Validate and return an attach configuration (Azure ML's arguments, plus
        ``trust_unknown_host_key``, ``known_hosts_file``, ``python``, ``workdir``,
        ``min_free_disk_mb``, ``unreachable_timeout_seconds``, ``max_concurrent_runs``)."""
        return RemoteAttachConfiguration.build(
            address=address, ssh_port=ssh_port, username=username, password=password,
            private_key_file=private_key_file, private_key_passphrase=private_key_passphrase,
            **more)
