"""The compute-kind contract: the one extension point every kind implements.

A kind object is bound to a :class:`~runyard.context.WorkspaceContext` and a target name. It
receives a :class:`JobSpec`, starts it and returns a typed, versioned :class:`JobHandle` that
the workspace persists as JSON; afterwards the workspace *pulls*: :meth:`ComputeKind.poll`
returns the new spool bytes since the given offsets and whether the job's supervisor is alive.
Run state lives in the workspace, never only on the target. The resource API (create, attach,
update, delete) is in :mod:`runyard.services.compute`; the user-facing classes are in
:mod:`runyard.computetarget`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from runyard.errors import RunyardError

if TYPE_CHECKING:
    from pathlib import Path

    from typing_extensions import Self  # typing.Self needs Python 3.11

    from runyard.compute.config import ComputeConfiguration
    from runyard.context import WorkspaceContext
    from runyard.entities import ComputeRecord
    from runyard.runconfig import RunConfiguration
    from runyard.secrets import Secret

HANDLE_VERSION = 1
#: Tag of a target made for one run (run-based creation): the run's id.
RUN_BASED_TAG = "runyard.run_based_for"


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
    """Everything a target needs to run one attempt of a run (JSON-able: it is persisted for
    runs whose target is not ready yet, and dispatched later by the reconciler)."""

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
    #: The workspace's name (for ``run.experiment.workspace_name`` inside the script).
    workspace_name: str = ""
    #: Named inputs (datasets, data references): rows made by
    #: ``runyard.services.runs.bindings.prepare``; each file is ``[name in the input's folder,
    #: sha256, size, "datastore:path"]``. The kind places the blobs in its per-host cache and
    #: hands the runner a path template (``jobwire.runner_job(input_blobs=...)``).
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: Output folders, uploaded to their datastore when the script ends with code 0.
    outputs: list[dict[str, Any]] = field(default_factory=list)
    #: Runs that share a concurrency limit of their own on the target (a sweep's trials:
    #: ``{"key": sweep id, "count": max_concurrent_runs}``). Kinds with ``group_slots`` make
    #: the runner wait for one of ``count`` slots before it starts the script, so a sweep can
    #: start its next trials ahead and each begins the moment a slot frees.
    slot_group: dict[str, Any] | None = None

    def input_blobs(self) -> dict[str, int]:
        """sha256 -> size of every file the inputs need on the target."""
        return {str(r[1]): int(r[2]) for i in self.inputs for r in i.get("files", [])}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (top-level lists and dicts copied; rows inside are shared:
        an input of 10,000 files is not deep-copied)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) \
                else v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def slot_key(key: str) -> str:
    """A folder name for a slot group (a run id already is one; anything else is hashed)."""
    import hashlib  # noqa: PLC0415

    plain = key.replace("-", "").replace("_", "").replace(".", "")
    if plain.isascii() and plain.isalnum() and not key.startswith(".") and len(key) < 200:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class HandleError(RunyardError):
    """A stored job handle cannot be read by this version of its kind."""

    error_code = "HandleError"


@dataclass
class JobHandle:
    """What a kind needs to find a started job again; stored as versioned JSON.

    Each kind subclasses it with its own fields; ``from_json`` refuses a handle of another kind
    or of a newer version, so a restarted workspace process never guesses.
    """

    kind: ClassVar[str] = ""
    run_id: str
    attempt: int

    def to_json(self) -> dict[str, Any]:
        """JSON form with ``version`` and ``kind``."""
        return {"version": HANDLE_VERSION, "kind": self.kind, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Rebuild a handle stored by :meth:`to_json` (unknown keys ignored)."""
        if data.get("kind") != cls.kind:
            raise HandleError(f"a {data.get('kind')!r} job handle is not a {cls.kind!r} one")
        if int(data.get("version", 1)) > HANDLE_VERSION:
            raise HandleError(f"job handle version {data.get('version')} is newer than this "
                              f"runyard understands ({HANDLE_VERSION}); upgrade runyard")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
    #: Set when ``alive`` is False only because the target could not be reached: the job may
    #: still run there (it turns NotResponding, and nothing is killed; it may come back).
    unreachable: bool = False


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


class ComputeKind(ABC):
    """The contract of a compute kind, bound to one workspace context and target name."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: Managed targets are created (and deleted) by runyard; others are attached (detached).
    managed: ClassVar[bool] = True
    config_class: ClassVar[type[ComputeConfiguration] | None] = None
    #: Configuration fields ``update`` may change.
    updatable: ClassVar[tuple[str, ...]] = ()
    #: The typed handle this kind returns from ``submit``.
    handle_class: ClassVar[type[JobHandle]] = JobHandle
    #: Interpreter placement: True when a user-managed ``interpreter_path`` names a file on
    #: the target's host (checked there), False when it is checked on this machine.
    interpreter_on_target: ClassVar[bool] = False
    #: Whether the runner enforces ``JobSpec.slot_group`` on this kind's hosts.
    group_slots: ClassVar[bool] = False

    def __init__(self, ctx: WorkspaceContext, name: str) -> None:
        self.ctx = ctx
        self.name = name

    # -- stored state ------------------------------------------------------------------------
    @property
    def record(self) -> ComputeRecord | None:
        """The stored row (None for the built-in ``local``)."""
        return self.ctx.store.get_compute_target(self.name)

    @property
    def config(self) -> dict[str, Any]:
        """The stored configuration (no secrets)."""
        rec = self.record
        return dict(rec.config) if rec else {}

    def secret(self, key: str) -> Secret | None:
        """A decrypted secret of this target (only for the code that uses it)."""
        token = self.ctx.store.get_secrets(f"compute/{self.name}").get(key)
        return self.ctx.secrets.decrypt(token) if token is not None else None

    # -- lifecycle hooks ---------------------------------------------------------------------
    @classmethod
    def preflight(cls, config: ComputeConfiguration) -> None:
        """Refuse early (before anything is stored) what this kind cannot do at all."""
        return None

    @classmethod
    def run_based(cls, ctx: WorkspaceContext,
                  run_config: RunConfiguration) -> ComputeConfiguration | None:
        """Run-based creation: the configuration of a target made for one run when
        ``run_config.target`` asks for one of this kind (default: never)."""
        return None

    @classmethod
    def run_based_name(cls, run_config: RunConfiguration) -> str | None:
        """The name a run asked for its run-based target, if any (default: a generated one)."""
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

    # -- runs --------------------------------------------------------------------------------
    def check_run(self, run_config: RunConfiguration) -> None:
        """Refuse (before the run is recorded) a run this target can never run."""
        return None

    def capacity(self) -> int | None:
        """How many runs this target runs at once (None: no limit it knows of); a sweep's
        ``max_concurrent_runs`` above it is clamped with a warning."""
        return None

    def ready(self) -> bool:
        """Whether ``submit`` can start a job now; a target still coming up returns False and
        its runs wait in Queued until the reconciler finds it ready (default: True)."""
        return True

    def artifacts_dir(self, run_id: str) -> Path:
        """The local folder this kind pulls (or writes) a run's artifacts into."""
        folder = self.ctx.artifacts.local_dir(run_id)
        if folder is None:
            from runyard.errors import NotSupported  # noqa: PLC0415

            raise NotSupported(f"{self.kind} targets need a folder artifact store")
        return folder

    def load_handle(self, data: dict[str, Any]) -> JobHandle:
        """The typed handle of stored JSON."""
        return self.handle_class.from_json(data)

    @abstractmethod
    def status(self) -> TargetStatus:
        """Provisioning state, node counts by state, errors."""

    @abstractmethod
    def submit(self, job: JobSpec) -> JobHandle:
        """Start the job; return fast with a typed handle."""

    @abstractmethod
    def poll(self, handle: Any, offsets: dict[str, int]) -> JobEvents:
        """New spool bytes since ``offsets`` and whether the job is still alive."""

    @abstractmethod
    def cancel(self, handle: Any) -> None:
        """Stop the job's whole process tree; a no-op when it already finished."""

    def kill_leftovers(self, handle: Any) -> int:
        """End every process of the job of ``handle`` still running on the target: its
        supervisor (runner) if it is alive, and whatever the job started (on Linux targets, every
        process carrying the attempt's ``RUNYARD_RUN_MARKER``, ``setsid`` descendants included;
        see :mod:`runyard.runtime.procmarks` for the limits).

        For the workspace giving up on a job whose runner is lost or not answering (a run found
        NotResponding, failed after its grace, or canceled in that state). Idempotent; returns
        how many processes were signalled where the kind knows (else 0). Raises
        ``TargetUnavailable`` when the target cannot be reached. Default: nothing to do.
        """
        return 0

    def restart(self, handle: Any, attempt: int) -> JobHandle:
        """Start attempt ``attempt`` of the job of ``handle`` (after ``JobEvents.restart``)."""
        raise NotImplementedError(f"{self.kind} targets do not restart jobs")

    def on_run_end(self, run_id: str) -> bool:
        """Called once a top-level run on this target has ended; returns True when the
        target asks to be deleted now (a run-based cluster). Default: nothing."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"


def __getattr__(name: str) -> Any:
    """``ComputeTarget`` moved to ``runyard.computetarget`` (this name is a deprecated alias)."""
    from runyard.compute.moved import moved_name  # noqa: PLC0415

    return moved_name(__name__, name, ("ComputeTarget",))
