"""Turning spool events into an :class:`IngestBatch` (pure functions, no I/O).

Every line passes :mod:`runyard.services.runs.events` first: what its stream may do and what
its type's schema says. A line that fails lands in ``batch.rejected`` with its reason; the lines
around it are applied as usual.
"""

from __future__ import annotations

import json
import time
from typing import Any

from runyard.entities import FileRecord, MetricRow, MetricSeries, RunRecord, RunStatus
from runyard.runtime.spool import chunk_span, iter_lines
from runyard.services.runs.events import (
    Checked,
    Lookup,
    Rejected,
    StreamRole,
    Tree,
    check_event,
    rejected_line,
    stream_role,
)
from runyard.store.base import IngestBatch, RejectedEvent, Transition


def _int_text(value: Any) -> str | None:
    """The JSON text kept next to the float of an integer scalar, so that it reads back as
    that integer (``run.log("epochs", 3)`` gives ``3``, not ``3.0``, as in Azure ML v1)."""
    return str(value) if type(value) is int else None


def _metric(row: list[Any]) -> MetricRow:
    name, kind, step, value, ts = row
    if kind == "scalar" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return MetricRow(str(name), kind, int(step), float(value), _int_text(value), float(ts))
    return MetricRow(str(name), str(kind), int(step), None,
                     json.dumps(value, separators=(",", ":")), float(ts))


def metric_series(run_id: str, ev: dict[str, Any]) -> MetricSeries | None:
    """The values of one checked ``metrics`` event, column-wise (None when malformed)."""
    steps, values, times = ev.get("steps"), ev.get("values"), ev.get("times")
    if not (isinstance(steps, list) and isinstance(values, list) and isinstance(times, list)
            and len(steps) == len(values) == len(times)):
        return None
    kind = str(ev.get("kind", "scalar"))
    n = len(values)
    numeric = ev.get("numeric")  # checked events say (their check saw every type)
    if numeric is None:
        numeric = all(type(v) is float or type(v) is int for v in values)
    if kind == "scalar" and numeric:
        texts_of_ints: list[str | None] = (
            [_int_text(v) for v in values] if any(type(v) is int for v in values)
            else [None] * n)
        return MetricSeries(run_id, str(ev.get("name")), kind, steps, values, texts_of_ints,
                            times)
    nums: list[float | None] = []
    texts: list[str | None] = []
    for v in values:
        row = _metric(["", kind, 0, v, 0.0])
        nums.append(row.value)
        texts.append(row.value_json)
    return MetricSeries(run_id, str(ev.get("name")), kind, steps, nums, texts, times)


def build_batch(owner: RunRecord, chunks: dict[str, tuple[int, bytes]],
                lookup: Lookup | None = None) -> IngestBatch:
    """Check and parse the new bytes of each of ``owner``'s streams into one batch (offsets
    included). ``lookup`` finds recorded runs (to tell the owner's children from other runs);
    without it only runs created in this batch count as children."""
    batch = IngestBatch()
    tree = Tree(owner, lookup or (lambda _run_id: None))
    now = time.time()
    chunks = _end_last(owner, chunks)
    for stream, (frm, data) in chunks.items():
        batch.offsets[stream] = (frm, frm + chunk_span(data))
        try:
            role: StreamRole | None = stream_role(owner, stream)
        except Rejected as exc:
            role, why = None, exc.reason
        for ev, line in iter_lines(data):
            if role is None:
                batch.rejected.append(_rejection(owner, stream, line, why, now))
                continue
            if ev is None:
                batch.rejected.append(_rejection(owner, stream, line,
                                                 "not a JSON object", now))
                continue
            try:
                _apply(owner, check_event(ev, role, tree, now), batch)
            except Rejected as exc:
                batch.rejected.append(_rejection(owner, stream, line, exc.reason, now))
    return batch


def _end_last(owner: RunRecord, chunks: dict[str, tuple[int, bytes]]
              ) -> dict[str, tuple[int, bytes]]:
    """Hold the run's end back while other streams still bring lines: the runner reports the
    end after the script exited, but a pass reads a bounded amount of each stream, and a reader
    that saw the end must find everything the script wrote. The runner's stream is cut before
    its end line, which the next pass (with nothing else new) applies."""
    ends = [s for s in chunks if s in (f"runner-a{owner.attempt}", f"n0.runner-a{owner.attempt}")]
    if not ends or not any(data for s, (_, data) in chunks.items() if s not in ends):
        return chunks
    out = dict(chunks)
    for stream in ends:
        frm, data = chunks[stream]
        pos = 0
        for line in data.splitlines(keepends=True):
            if b'"status"' in line:
                ev = next(iter_lines(line))[0]
                if ev and ev.get("type") == "status" and ev.get("run_id", owner.id) == owner.id \
                        and ev.get("status") in _ENDS:
                    if pos:
                        out[stream] = (frm, data[:pos])
                    else:
                        del out[stream]
                    break
            pos += len(line)
    return out


_ENDS = frozenset(s.value for s in RunStatus if s.terminal)


def _rejection(owner: RunRecord, stream: str, line: bytes, reason: str,
               now: float) -> RejectedEvent:
    return RejectedEvent(owner.id, stream, reason, rejected_line(line.decode(errors="replace")),
                         now)


def _apply(owner: RunRecord, ev: Checked, batch: IngestBatch) -> None:
    data, run_id, ts = ev.data, ev.run_id, ev.ts
    if ev.type == "metrics":
        series = metric_series(run_id, data)
        if series is not None:
            batch.metric_series.append(series)
    elif ev.type == "status":
        status: RunStatus = data["status"]
        batch.transitions.append(Transition(run_id, status, data["cause"], ts,
                                            attempt=data["attempt"], error=data["error"]))
    elif ev.type == "tags":
        batch.tags.append((run_id, data["tags"]))
    elif ev.type == "properties":
        batch.properties.append((run_id, {k: str(v) for k, v in data["properties"].items()}))
    elif ev.type == "files":
        batch.files.extend(FileRecord(run_id, n, s) for n, s in data["files"])
    elif ev.type == "child":
        batch.children.append(RunRecord(
            id=run_id, experiment=owner.experiment, status=RunStatus.RUNNING, created_at=ts,
            start_time=ts, run_type="runyard.childrun", parent_id=data["parent_id"],
            display_name=data["display_name"], target=owner.target, definition={},
            tags={k: v for k, v in data["tags"].items() if v is not None}))


def build_metric_row(name: str, kind: str, step: int, value: Any) -> MetricRow:
    """One metric row for a value logged directly (not through a spool)."""
    return _metric([name, kind, step, value, time.time()])
