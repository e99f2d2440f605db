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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


@dataclass
class JobEvents:
    """What one poll returned: complete spool lines per stream, and liveness."""

    chunks: dict[str, tuple[int, bytes]]  # stream -> (from offset, bytes of complete lines)
    alive: bool


@dataclass
class TargetStatus:
    """Provisioning state and node counts of a target."""

    provisioning_state: str
    errors: list[str] = field(default_factory=list)
    node_state_counts: dict[str, int] = field(default_factory=dict)


class ComputeTarget(ABC):
    """The contract of a compute kind (see module docs)."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
