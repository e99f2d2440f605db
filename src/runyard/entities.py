"""Plain data records shared by the store, the services and the SDK surface."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RunStatus(str, enum.Enum):
    """Run lifecycle states (Azure ML v1 names).

    Behaves like ``enum.StrEnum`` (Python >= 3.11), spelled so the runtime bundle imports on
    Python 3.8: ``str()`` and ``format()`` give the value.
    """

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    STARTING = "Starting"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"

    @property
    def terminal(self) -> bool:
        """True for states that never change again (NotResponding is not one: a run whose
        runner or host comes back resumes and ends with its real status)."""
        return self in TERMINAL_STATES

    @property
    def settled(self) -> bool:
        """True for states a waiter stops at: the terminal ones and NotResponding."""
        return self in TERMINAL_STATES or self is RunStatus.NOT_RESPONDING

    @property
    def order(self) -> int:
        """Position in the lifecycle; terminal states share the highest order."""
        return _ORDER[self]


TERMINAL_STATES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})
_ORDER = {
    RunStatus.NOT_STARTED: 0,
    RunStatus.QUEUED: 1,
    RunStatus.PREPARING: 2,
    RunStatus.STARTING: 3,
    RunStatus.RUNNING: 4,
    RunStatus.FINALIZING: 5,
    RunStatus.COMPLETED: 6,
    RunStatus.FAILED: 6,
    RunStatus.CANCELED: 6,
    RunStatus.NOT_RESPONDING: 5,  # beside Finalizing: reached from any live state
}


@dataclass
class ExperimentRecord:
    """An experiment row."""

    id: str
    name: str
    created_at: float
    archived: bool = False


@dataclass
class RunRecord:
    """A run row as the store returns it."""

    id: str
    experiment: str
    status: RunStatus
    created_at: float
    run_type: str = "runyard.scriptrun"
    parent_id: str | None = None
    display_name: str | None = None
    target: str = "local"
    attempt: int = 1
    start_time: float | None = None
    end_time: float | None = None
    snapshot_id: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    handle: dict[str, Any] | None = None
    tags: dict[str, str | None] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    #: Spool lines the ingest refused for this run (kept in
    #: ``system_logs/rejected_events.jsonl``).
    rejected_events: int = 0


@dataclass
class RunEvent:
    """One recorded status transition."""

    run_id: str
    attempt: int
    status: RunStatus
    at: float
    cause: str


@dataclass
class AttemptRecord:
    """One attempt of a run (later issues retry on preemption)."""

    run_id: str
    attempt: int
    started_at: float
    ended_at: float | None
    cause: str
    status: RunStatus | None = None


@dataclass
class MetricRow:
    """One logged metric value.

    ``kind`` is ``scalar`` (``value`` set), or ``list``/``row``/``table``/``image``
    (``value_json`` holds the JSON text).
    """

    name: str
    kind: str
    step: int
    value: float | None
    value_json: str | None
    ts: float


@dataclass
class MetricSeries:
    """Many values of one metric of one run, column-wise (the fast ingest path).

    ``values[i]`` is set for numeric scalars, else ``values_json[i]`` holds the JSON text.
    """

    run_id: str
    name: str
    kind: str
    steps: list[int]
    values: list[float | None]
    values_json: list[str | None]
    ts: list[float]
    #: Logged from outside the script (``Run.log`` on a run object): the store numbers the
    #: values after the series' last stored step, in the same transaction (``steps`` ignored).
    append: bool = False

    @classmethod
    def from_rows(cls, run_id: str, rows: list[MetricRow]) -> list[MetricSeries]:
        """Group row-form metrics by (name, kind)."""
        out: dict[tuple[str, str], MetricSeries] = {}
        for r in rows:
            s = out.get((r.name, r.kind))
            if s is None:
                s = out[(r.name, r.kind)] = cls(run_id, r.name, r.kind, [], [], [], [])
            s.steps.append(r.step)
            s.values.append(r.value)
            s.values_json.append(r.value_json)
            s.ts.append(r.ts)
        return list(out.values())


@dataclass
class FileRecord:
    """An artifact of a run, stored under the run's artifact folder."""

    run_id: str
    name: str
    size: int


@dataclass
class ComputeRecord:
    """A compute target stored in the workspace (configuration as versioned JSON)."""

    name: str
    kind: str
    managed: bool
    config: dict[str, Any]
    config_version: int
    state: str
    errors: list[str]
    created_at: float
    updated_at: float
