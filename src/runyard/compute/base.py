"""The compute-target contract: the one extension point every kind implements.

A target receives a :class:`JobSpec`, starts it and returns a JSON-able handle that the
workspace persists; afterwards the workspace *pulls*: :meth:`ComputeTarget.poll` returns the new
spool bytes since the given offsets and whether the job's supervisor is still alive. Run state
lives in the workspace, never only on the target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from runyard.compute.config import ComputeConfiguration
    from runyard.entities import ComputeRecord
    from runyard.secrets import Secret
    from runyard.workspace import Workspace

HANDLE_VERSION = 1


@dataclass(frozen=True)
class Capability:
    """Whether a kind supports something, and why not."""

    supported: bool
    reason: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What a kind can do (enforced before anything is queued)."""

    gpu: Capability
    sweeps: Capability
    automl: Capability
    script_runs: Capability
    pipelines: Capability
    multi_node: Capability


@dataclass
class JobSpec:
    """Everything a target needs to run one attempt of a run."""

    run_id: str
    attempt: int
    experiment: str
    snapshot_id: str | None
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    max_run_duration_seconds: float | None = None
    output_collection: bool = True
    node_count: int = 1
    tags: dict[str, str | None] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    #: System-managed environment to prepare before the script starts (None: user-managed).
    #: Made by ``runyard.environments.spec.environment_request``; the target adds
    #: ``cache_dir`` (its own environment cache) before handing it to the runner, which
    #: builds it with ``runyard.runtime.envbuild`` and replaces ``envbuild.ENV_PYTHON`` in
    #: ``command`` with the environment's interpreter.
    environment: dict[str, Any] | None = None
    #: Processes per node (``mpi.process_count_per_node``) for distributed runs.
    process_count_per_node: int = 1
    #: What one node of the run asks for: ``cpu``, ``gpu``, ``memory_gb`` (empty: the target's
    #: default, e.g. a whole node of a cluster).
    resources: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


@dataclass
class JobEvents:
    """What one poll returned: complete spool lines per stream, and liveness."""

    chunks: dict[str, tuple[int, bytes]]  # stream -> (from offset, bytes of complete lines)
    alive: bool
    #: Why the job is no longer alive, when the target knows better than "the runner vanished"
    #: (for example: its host stayed unreachable past the target's timeout).
    reason: str | None = None
    #: Set when the attempt was lost to something outside the run (a preempted node): the
    #: workspace starts a new attempt with this cause (not counted against retries).
    restart: str | None = None


@dataclass
class TargetStatus:
    """Provisioning state and node counts of a target."""

    provisioning_state: str
    errors: list[str] = field(default_factory=list)
    node_state_counts: dict[str, int] = field(default_factory=dict)
    #: Nodes up now and nodes being aimed at (clusters; 0 elsewhere).
    current_node_count: int = 0
    target_node_count: int = 0
    #: ``steady`` or ``resizing`` (clusters).
    allocation_state: str = ""


class ComputeTarget(ABC):
    """A compute target: the contract every kind implements, and the resource API.

    ``ComputeTarget(workspace, name)`` returns the right subclass for a stored target (or the
    built-in ``local``) and raises ``ComputeTargetNotFound`` for an unknown name.
    """

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: Managed targets are created (and deleted) by runyard; others are attached (detached).
    managed: ClassVar[bool] = True
    config_class: ClassVar[type[ComputeConfiguration] | None] = None
    #: Configuration fields ``update`` may change.
    updatable: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, workspace: Workspace | None = None, name: str | None = None,
                *args: Any, **kwargs: Any) -> ComputeTarget:
        if cls is ComputeTarget:
            from runyard.compute.resource import target_class  # noqa: PLC0415

            if workspace is None or name is None:
                raise TypeError("ComputeTarget(workspace, name) needs both arguments")
            cls = target_class(workspace, name)
        return super().__new__(cls)

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name

    # -- resource API (runyard.compute.resource does the work) -------------------------------
    @property
    def record(self) -> ComputeRecord | None:
        """The stored row (None for the built-in ``local``)."""
        return self.workspace.store.get_compute_target(self.name)

    @property
    def config(self) -> dict[str, Any]:
        """The stored configuration (no secrets)."""
        rec = self.record
        return dict(rec.config) if rec else {}

    @property
    def provisioning_state(self) -> str:
        """Creating, Succeeded, Failed, Deleting..."""
        return self.status().provisioning_state

    @classmethod
    def create(cls, workspace: Workspace, name: str,
               provisioning_configuration: ComputeConfiguration) -> ComputeTarget:
        """Create a managed target (validated before anything is stored)."""
        from runyard.compute.resource import create_target  # noqa: PLC0415

        return create_target(workspace, name, provisioning_configuration)

    @classmethod
    def attach(cls, workspace: Workspace, name: str,
               attach_configuration: ComputeConfiguration) -> ComputeTarget:
        """Attach an existing machine or cluster (checked before anything is stored)."""
        from runyard.compute.resource import attach_target  # noqa: PLC0415

        return attach_target(workspace, name, attach_configuration)

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        """Every target of the workspace, ``local`` first."""
        from runyard.compute.resource import list_targets  # noqa: PLC0415

        return list_targets(workspace)

    def get_status(self) -> TargetStatus:
        """Provisioning state, errors and (for clusters) node counts."""
        return self.status()

    def wait_for_completion(self, show_output: bool = False, timeout: float | None = None,
                            timeout_in_minutes: float | None = None,
                            is_delete_operation: bool = False) -> TargetStatus:
        """Wait until provisioning ends (Succeeded or Failed); print progress if asked."""
        from runyard.compute.resource import wait_target  # noqa: PLC0415

        limit = timeout if timeout is not None else (
            timeout_in_minutes * 60 if timeout_in_minutes is not None else 20 * 60)
        return wait_target(self, show_output, limit)

    def update(self, **changes: Any) -> None:
        """Change updatable settings (for example a cluster's min/max nodes)."""
        from runyard.compute.resource import update_target  # noqa: PLC0415

        update_target(self, changes)

    def delete(self, force: bool = False) -> None:
        """Delete a managed target; live runs make it refuse unless ``force``."""
        from runyard.compute.resource import remove_target  # noqa: PLC0415

        remove_target(self, force=force, detach=False)

    def detach(self, force: bool = False) -> None:
        """Detach an attached target; live runs make it refuse unless ``force``."""
        from runyard.compute.resource import remove_target  # noqa: PLC0415

        remove_target(self, force=force, detach=True)

    def serialize(self) -> dict[str, Any]:
        """Name, kind, state and configuration (never secrets)."""
        st = self.status()
        return {"name": self.name, "kind": self.kind, "managed": self.managed,
                "provisioning_state": st.provisioning_state, "errors": st.errors,
                "node_state_counts": st.node_state_counts,
                "current_node_count": st.current_node_count, "configuration": self.config}

    # -- kind hooks --------------------------------------------------------------------------
    @classmethod
    def preflight(cls, config: ComputeConfiguration) -> None:
        """Refuse early (before anything is stored) what this kind cannot do at all."""
        return None

    def provision(self) -> str | None:
        """Bring a new managed target up (default: nothing to do).

        Returns None when it is up, or ``"Creating"`` when it goes on coming up in the
        background (``status()`` then reports Succeeded or Failed once it knows).
        """
        return None

    def check_attach(self, config: ComputeConfiguration) -> None:
        """Check an attached target is usable before it is stored (default: nothing)."""
        return None

    def apply_update(self, new_config: ComputeConfiguration) -> None:
        """Apply a changed configuration to the live target (default: stored only)."""
        return None

    def teardown(self) -> None:
        """Stop what this target runs (idempotent; default: nothing)."""
        return None

    def secret(self, key: str) -> Secret | None:
        """A decrypted secret of this target (only for the code that uses it)."""
        from runyard.secrets import SecretBox  # noqa: PLC0415

        token = self.workspace.store.get_secrets(f"compute/{self.name}").get(key)
        return SecretBox().decrypt(token) if token is not None else None

    @abstractmethod
    def status(self) -> TargetStatus:
        """Provisioning state, node counts by state, errors."""

    @abstractmethod
    def submit(self, job: JobSpec) -> dict[str, Any]:
        """Start the job; return fast with a versioned JSON handle."""

    @abstractmethod
    def poll(self, handle: dict[str, Any], offsets: dict[str, int]) -> JobEvents:
        """New spool bytes since ``offsets`` and whether the job is still alive."""

    @abstractmethod
    def cancel(self, handle: dict[str, Any]) -> None:
        """Stop the job's whole process tree; a no-op when it already finished."""

    def log_path(self, run_id: str) -> str | None:
        """Local path of the run's driver log when the target writes it in place."""
        return None

    def check_run(self, run_config: Any) -> None:
        """Refuse (before the run is recorded) a run this target can never run."""
        return None

    def restart(self, handle: dict[str, Any], attempt: int) -> dict[str, Any]:
        """Start attempt ``attempt`` of the job of ``handle`` (after ``JobEvents.restart``)."""
        raise NotImplementedError(f"{self.kind} targets do not restart jobs")

    def on_run_end(self, run_id: str) -> None:
        """Called once a top-level run on this target has ended (default: nothing)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
