"""What a spool line may say, and who may say it: the ingest's trust boundary.

A run's spool holds streams written by different parties (see :mod:`runyard.runtime.spool`):

``runner-a<N>``          runyard's runner of attempt N: the run's status, its logs and outputs.
``agent-a<N>``           runyard's cluster agent on a node: announces the node's child run.
``script-a<N>-<pid>``    the user's script (untrusted): logs, tags, uploads and its own children.
``interactive-…``        the process that owns an interactive run (trusted, interactive runs only).

On a cluster each stream name carries its node's prefix ``n<k>.``; node ``k > 0`` reports as the
child run the agent names, node 0 as the run itself.

What a stream may do is decided by its name, which the target gives it, never by what a line
says: a line's ``run_id`` must be the stream's own run or a child created inside this run's
tree; status lines are taken from the runner's stream (and, for the script, only for the
children it created); children get ids under their parent's (``<parent>_<suffix>``) and never
replace a run that exists; every status is fenced by the stream's attempt. Every event type has
a schema checked here; a line that fails is *rejected* (kept with its reason, never applied),
and never stops the lines after it. Names and values are capped with a visible truncation
marker; NUL characters are replaced by U+2400 (the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runyard.entities import RunRecord, RunStatus
from runyard.naming import MAX_KEY_CHARS, MAX_VALUE_CHARS
from runyard.runtime.clusteragent import node_run_id

#: Longest metric, tag and property name, and tag or property value, kept whole (the same caps
#: the workspace side enforces, ``runyard.naming``).
MAX_NAME_CHARS = MAX_KEY_CHARS
#: Longest status cause kept whole.
MAX_CAUSE_CHARS = 1024
#: Longest error text (message, traceback) kept whole.
MAX_ERROR_CHARS = 65536
#: Longest artifact name.
MAX_FILE_NAME_CHARS = 1024
#: Most lines kept verbatim in a rejection record.
MAX_REJECTED_LINE_CHARS = 2048

#: Longest run id (children nest their ids under their parent's).
MAX_RUN_ID_CHARS = 512
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

NUL_REPLACEMENT = "\u2400"
_STREAM = re.compile(r"^(?:n(?P<node>\d{1,4})\.)?(?P<role>runner|agent|script|interactive)"
                     r"(?:-a(?P<attempt>\d{1,6}))?(?P<suffix>-[A-Za-z0-9_-]{1,64})?$", re.ASCII)
_CHILD_SUFFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", re.ASCII)
_SCALAR_TYPES = frozenset({int, float, bool, str})
_METRIC_KINDS = frozenset({"scalar", "list", "row", "table", "json", "image"})
_TRUSTED_ROLES = frozenset({"runner", "interactive"})


class Rejected(Exception):
    """A spool line that is not applied; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StreamRole:
    """Who wrote a stream, for which run and attempt (from its name, given by the target)."""

    name: str
    role: str            # runner | agent | script | interactive
    run_id: str          # the run this stream reports for
    attempt: int         # the owner run's attempt that wrote it
    node: int            # cluster node rank (0 off-cluster)


def stream_role(owner: RunRecord, stream: str) -> StreamRole:
    """The role of ``stream`` in ``owner``'s spool; :class:`Rejected` for a name no writer of
    runyard's uses (every line of such a stream is rejected)."""
    m = _STREAM.fullmatch(stream)
    if m is None:
        raise Rejected(f"stream {stream!r} is not one runyard writes")
    role = m["role"]
    interactive = owner.run_type == "runyard.interactive"
    if (role == "interactive") != interactive:
        raise Rejected(f"stream {stream!r} is not allowed for a run of type {owner.run_type!r}")
    if role in ("runner", "agent") and m["suffix"]:
        raise Rejected(f"stream {stream!r} is not one runyard writes")
    if role != "interactive" and m["attempt"] is None:
        raise Rejected(f"stream {stream!r} does not name its attempt")
    attempt = int(m["attempt"]) if m["attempt"] is not None else owner.attempt
    node = int(m["node"] or 0)
    run_id = owner.id
    if node > 0:
        run_id = node_run_id({"run_id": owner.id, "attempt": attempt}, node)
    return StreamRole(stream, role, run_id, attempt, node)


# -- values -----------------------------------------------------------------------------------
def clean_text(value: str, limit: int) -> str:
    """``value`` with NULs replaced and cut to ``limit`` characters with a visible marker."""
    if "\x00" in value:
        value = value.replace("\x00", NUL_REPLACEMENT)
    if len(value) <= limit:
        return value
    keep = max(0, limit - len(f"…[truncated {len(value)} chars]"))  # fits: a longer number
    return value[:keep] + f"…[truncated {len(value) - keep} chars]"


def _str(ev: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = ev.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Rejected(f"field {key!r} must be a string, not {type(value).__name__}")
    return value


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejected(f"{what} must be a non-empty string")
    return clean_text(value, MAX_NAME_CHARS)


def _scalar_text(value: object, what: str) -> str:
    if isinstance(value, str):
        return clean_text(value, MAX_VALUE_CHARS)
    if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise Rejected(f"{what} must be a string or a number, not {type(value).__name__}")


def _mapping(ev: dict[str, Any], key: str, *, allow_none: bool) -> dict[str, str | None]:
    raw = ev.get(key)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise Rejected(f"field {key!r} must be an object of name: value, "
                       f"not {type(raw).__name__}")
    out: dict[str, str | None] = {}
    for k, v in raw.items():
        name = _name(k, f"a {key} name")
        if v is None and allow_none:
            out[name] = None
        else:
            out[name] = _scalar_text(v, f"the value of {key} {name!r}")
    return out


def _number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def event_time(ev: dict[str, Any], default: float) -> float:
    """The event's ``ts`` (checked), or ``default`` when it has none."""
    ts = ev.get("ts")
    if ts is None:
        return default
    if not _number(ts):
        raise Rejected("field 'ts' must be a finite number of unix seconds")
    return float(ts)


def clean_file_name(name: object) -> str:
    """An artifact name as stored: relative, '/'-separated, inside the run (raises
    :class:`Rejected` for an absolute name, a '..' part, a NUL or an empty name)."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise Rejected(f"file name {name!r} must be a non-empty relative path without NUL "
                       "or backslash")
    if len(name) > MAX_FILE_NAME_CHARS:
        raise Rejected(f"file name of {len(name)} characters is longer than "
                       f"{MAX_FILE_NAME_CHARS}")
    if name.startswith("/") or ".." in name.split("/"):
        raise Rejected(f"file name {name!r} must stay inside the run (no leading '/', no '..')")
    norm = posixpath.normpath(name)
    if norm in (".", "") or norm.startswith("../"):
        raise Rejected(f"file name {name!r} does not name a file inside the run")
    return norm


# -- the checks per event type ----------------------------------------------------------------
@dataclass
class Checked:
    """One accepted event, cleaned: what ``ingest`` applies."""

    type: str
    run_id: str
    ts: float
    data: dict[str, Any]


#: run id -> its record, or None when there is no such run (the caller caches).
Lookup = Callable[[str], "RunRecord | None"]


class Tree:
    """Which runs belong to one owner run's tree (the owner, its nodes and its children):
    the runs a line in the owner's spool may name."""

    def __init__(self, owner: RunRecord, lookup: Lookup) -> None:
        self.owner = owner
        self._lookup = lookup
        self._member: dict[str, bool] = {owner.id: True}
        self.created: dict[str, str] = {}  # run id -> the stream that created it in this batch

    def contains(self, run_id: str) -> bool:
        """Whether ``run_id`` is the owner or a run under it (created before or in this batch)."""
        known = self._member.get(run_id)
        if known is not None:
            return known
        if run_id in self.created:
            return True
        member = False
        rec = self._lookup(run_id)
        seen = 0
        while rec is not None and rec.parent_id and seen < 64:
            if rec.parent_id == self.owner.id:
                member = True
                break
            rec = self._lookup(rec.parent_id)
            seen += 1
        self._member[run_id] = member
        return member

    def exists(self, run_id: str) -> bool:
        """Whether a run with this id is recorded (or created in this batch)."""
        return run_id in self.created or self._lookup(run_id) is not None

    def is_node(self, run_id: str) -> bool:
        """Whether ``run_id`` is a node run of a multi-node job (its runner reports for it)."""
        if run_id in self.created:
            return self.created[run_id].startswith("agent:")
        rec = self._lookup(run_id)
        return rec is not None and "runyard.node_rank" in rec.tags


def check_event(ev: dict[str, Any], stream: StreamRole, tree: Tree, now: float) -> Checked:
    """Check one decoded spool line against its schema and its stream's rights; returns it
    cleaned, or raises :class:`Rejected`."""
    kind = ev.get("type")
    if not isinstance(kind, str):
        raise Rejected("field 'type' is missing or not a string")
    if kind == "_oversize":
        raise Rejected(f"an event of {ev.get('bytes')} bytes is larger than the limit")
    raw_id = ev.get("run_id", stream.run_id)
    if not isinstance(raw_id, str) or not raw_id:
        raise Rejected("field 'run_id' must be a non-empty string")
    seq = ev.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise Rejected("field 'seq' must be an integer")
    ts = event_time(ev, now)
    if stream.attempt != tree.owner.attempt:
        raise Rejected(f"written by attempt {stream.attempt}; the run is on attempt "
                       f"{tree.owner.attempt}")
    if stream.role == "agent":
        return _check_agent(ev, kind, raw_id, stream, tree, ts)
    if kind == "child":
        return _check_child(ev, raw_id, stream, tree, ts)
    if raw_id != stream.run_id and not tree.contains(raw_id):
        raise Rejected(f"run {raw_id!r} is not this run or one of its children")
    if kind == "status":
        return _check_status(ev, raw_id, stream, tree, ts)
    if kind == "metrics":
        return Checked(kind, raw_id, ts, _check_metrics(ev))
    if kind == "tags":
        return Checked(kind, raw_id, ts, {"tags": _mapping(ev, "tags", allow_none=True)})
    if kind == "properties":
        return Checked(kind, raw_id, ts,
                       {"properties": _mapping(ev, "properties", allow_none=False)})
    if kind == "files":
        return Checked(kind, raw_id, ts, {"files": _check_files(ev)})
    raise Rejected(f"unknown event type {kind!r}")


def _check_agent(ev: dict[str, Any], kind: str, run_id: str, stream: StreamRole, tree: Tree,
                 ts: float) -> Checked:
    if kind != "child" or stream.node == 0 or run_id != stream.run_id \
            or ev.get("parent_id") != tree.owner.id:
        raise Rejected("a cluster agent stream may only announce its node's child run")
    if tree.exists(run_id):
        raise Rejected(f"run {run_id!r} exists already; a child never replaces a run")
    tree.created[run_id] = f"agent:{stream.name}"
    return Checked("child", run_id, ts, {
        "parent_id": tree.owner.id,
        "display_name": _optional_name(ev.get("display_name")),
        "tags": _mapping(ev, "tags", allow_none=False)})


def _optional_name(value: object) -> str | None:
    if value is None:
        return None
    return _name(value, "display_name")


def _check_child(ev: dict[str, Any], run_id: str, stream: StreamRole, tree: Tree,
                 ts: float) -> Checked:
    if stream.role not in ("script", "interactive"):
        raise Rejected(f"a {stream.role} stream does not create child runs")
    parent = _str(ev, "parent_id")
    assert parent is not None
    if parent != stream.run_id and not tree.contains(parent):
        raise Rejected(f"parent {parent!r} is not this run or one of its children")
    prefix = f"{parent}_"
    if not run_id.startswith(prefix) or not _CHILD_SUFFIX.fullmatch(run_id[len(prefix):]):
        raise Rejected(f"child id {run_id!r} must be '{prefix}<suffix>' (letters, digits, '.', "
                       "'-', '_'); runyard mints child ids under their parent's")
    if len(run_id) > MAX_RUN_ID_CHARS:
        raise Rejected(f"child id of {len(run_id)} characters is longer than "
                       f"{MAX_RUN_ID_CHARS}")
    if tree.exists(run_id):
        raise Rejected(f"run {run_id!r} exists already; a child never replaces a run")
    tree.created[run_id] = stream.name
    return Checked("child", run_id, ts, {
        "parent_id": parent, "display_name": _optional_name(ev.get("display_name")),
        "tags": _mapping(ev, "tags", allow_none=False)})


def _check_status(ev: dict[str, Any], run_id: str, stream: StreamRole, tree: Tree,
                  ts: float) -> Checked:
    raw = ev.get("status")
    try:
        status = RunStatus(raw) if isinstance(raw, str) else None
    except ValueError:
        status = None
    if status is None:
        raise Rejected(f"status {raw!r} is not a run status")
    own = run_id == stream.run_id
    if own and stream.role not in _TRUSTED_ROLES:
        raise Rejected("only the runner reports its run's status; a script ends its run by "
                       "exiting")
    if not own and stream.role == "runner":
        raise Rejected("a runner reports only its own run's status")
    if not own and tree.is_node(run_id):
        raise Rejected(f"run {run_id!r} is a node of this run; its own runner reports it")
    line_attempt = ev.get("attempt")
    if line_attempt is not None and (not isinstance(line_attempt, int)
                                     or line_attempt != stream.attempt):
        raise Rejected(f"attempt {line_attempt!r} does not match the stream's attempt "
                       f"{stream.attempt}")
    cause = _str(ev, "cause", required=False) or ""
    error = ev.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise Rejected("field 'error' must be an object")
        error = _clean_error(error)
    # the run itself: fenced by the attempt that wrote the stream; node and script children
    # have one attempt of their own
    fence = stream.attempt if own and stream.node == 0 else None
    return Checked("status", run_id, ts, {"status": status, "cause":
                                          clean_text(cause, MAX_CAUSE_CHARS),
                                          "attempt": fence, "error": error})


def _clean_error(error: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in list(error.items())[:16]:
        key = clean_text(str(k), MAX_NAME_CHARS)
        if isinstance(v, str):
            out[key] = clean_text(v, MAX_ERROR_CHARS)
        elif v is None or isinstance(v, bool) or _number(v):
            out[key] = v
        else:
            out[key] = clean_text(str(v), MAX_ERROR_CHARS)
    return out


def _finite_numbers(column: list[Any]) -> bool:
    """Whether every item of a decoded JSON list is a finite number: ``sum`` takes only numbers
    (a string, None, a list or an object raise), and a finite sum means no inf or NaN; the
    item-by-item check runs only when the sum overflowed."""
    try:
        if math.isfinite(sum(column)):
            return True
    except TypeError:
        return False
    return all(_number(x) for x in column)


def _check_metrics(ev: dict[str, Any]) -> dict[str, Any]:
    name = _name(ev.get("name"), "the metric name")
    kind = ev.get("kind", "scalar")
    if kind not in _METRIC_KINDS:
        raise Rejected(f"metric kind {kind!r} is not one of {sorted(_METRIC_KINDS)}")
    steps, values, times = ev.get("steps"), ev.get("values"), ev.get("times")
    if not (isinstance(steps, list) and isinstance(values, list) and isinstance(times, list)):
        raise Rejected("fields 'steps', 'values' and 'times' must be lists")
    if not len(steps) == len(values) == len(times):
        raise Rejected("fields 'steps', 'values' and 'times' must have the same length")
    # column checks at C speed (a batch can hold a million values)
    if steps and (set(map(type, steps)) != {int} or min(steps) < _INT64_MIN
                  or max(steps) > _INT64_MAX):
        bad = next(x for x in steps if type(x) is not int or not _INT64_MIN <= x <= _INT64_MAX)
        raise Rejected(f"metric steps must be 64-bit integers, got {bad!r:.40}")
    if times and not _finite_numbers(times):
        bad = next(x for x in times if not _number(x))
        raise Rejected(f"metric times must be finite numbers, got {bad!r:.40}")
    numeric = False
    if kind == "scalar" and values:
        types = set(map(type, values))
        numeric = types <= {int, float}
        if not types <= _SCALAR_TYPES:
            bad = next(x for x in values if type(x) not in _SCALAR_TYPES)
            raise Rejected(f"scalar metric values must be numbers, booleans or strings, "
                           f"got {type(bad).__name__}")
        if int in types:
            ints = [v for v in values if type(v) is int]
            if min(ints) < _INT64_MIN or max(ints) > _INT64_MAX:
                raise Rejected("a scalar metric value does not fit 64 bits")
        if str in types and any("\x00" in v for v in values if type(v) is str):
            values = [clean_text(v, MAX_VALUE_CHARS) if type(v) is str else v for v in values]
    return {"name": name, "kind": kind, "steps": steps, "values": values, "times": times,
            "numeric": numeric}


def _check_files(ev: dict[str, Any]) -> list[tuple[str, int]]:
    files = ev.get("files")
    if not isinstance(files, list):
        raise Rejected("field 'files' must be a list of [name, size]")
    out: list[tuple[str, int]] = []
    for item in files:
        if not (isinstance(item, list) and len(item) == 2):
            raise Rejected("each file must be [name, size]")
        name, size = item
        if type(size) is not int or size < 0:
            raise Rejected(f"file size {size!r:.40} must be a non-negative integer")
        out.append((clean_file_name(name), size))
    return out


def rejected_line(line: Any, limit: int = MAX_REJECTED_LINE_CHARS) -> str:
    """A rejected line as kept in the rejection record (cut to ``limit`` characters)."""
    text = line if isinstance(line, str) else repr(line)
    return clean_text(text, limit)
