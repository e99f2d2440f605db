"""Turning spool events into an :class:`IngestBatch` (pure functions, no I/O)."""

from __future__ import annotations

import json
import time
from typing import Any

from runyard.entities import FileRecord, MetricRow, MetricSeries, RunRecord, RunStatus
from runyard.runtime.spool import parse_lines
from runyard.store.base import IngestBatch, Transition


def _metric(row: list[Any]) -> MetricRow:
    name, kind, step, value, ts = row
    if kind == "scalar" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return MetricRow(str(name), kind, int(step), float(value), None, float(ts))
    return MetricRow(str(name), str(kind), int(step), None,
                     json.dumps(value, separators=(",", ":")), float(ts))


def metric_series(run_id: str, ev: dict[str, Any]) -> MetricSeries | None:
    """The values of one ``metrics`` event, column-wise; None when the event is malformed."""
    steps, values, times = ev.get("steps"), ev.get("values"), ev.get("times")
    if not (isinstance(steps, list) and isinstance(values, list) and isinstance(times, list)
            and len(steps) == len(values) == len(times)):
        return None
    kind = str(ev.get("kind", "scalar"))
    n = len(values)
    if kind == "scalar" and all(type(v) is float or type(v) is int for v in values):
        return MetricSeries(run_id, str(ev.get("name")), kind, steps, values, [None] * n, times)
    nums: list[float | None] = []
    texts: list[str | None] = []
    for v in values:
        row = _metric(["", kind, 0, v, 0.0])
        nums.append(row.value)
        texts.append(row.value_json)
    return MetricSeries(run_id, str(ev.get("name")), kind, steps, nums, texts, times)


def build_batch(parent: RunRecord, chunks: dict[str, tuple[int, bytes]]) -> IngestBatch:
    """Parse the new bytes of each stream into one batch (offsets included)."""
    batch = IngestBatch()
    for stream, (frm, data) in chunks.items():
        batch.offsets[stream] = (frm, frm + len(data))
        for ev in parse_lines(data):
            _apply(parent, ev, batch)
    return batch


def _apply(parent: RunRecord, ev: dict[str, Any], batch: IngestBatch) -> None:
    run_id = str(ev.get("run_id") or parent.id)
    kind = ev.get("type")
    ts = float(ev.get("ts") or time.time())
    if kind == "metrics":
        series = metric_series(run_id, ev)
        if series is not None:
            batch.metric_series.append(series)
    elif kind == "status":
        try:
            status = RunStatus(str(ev.get("status")))
        except ValueError:
            return
        attempt = ev.get("attempt") if run_id == parent.id else None
        batch.transitions.append(Transition(run_id, status, str(ev.get("cause", "")), ts,
                                            attempt=attempt, error=ev.get("error")))
    elif kind == "tags":
        batch.tags.append((run_id, {str(k): (None if v is None else str(v))
                                    for k, v in (ev.get("tags") or {}).items()}))
    elif kind == "properties":
        batch.properties.append((run_id, {str(k): str(v)
                                          for k, v in (ev.get("properties") or {}).items()}))
    elif kind == "files":
        batch.files.extend(FileRecord(run_id, str(n), int(s)) for n, s in ev.get("files", ()))
    elif kind == "child":
        batch.children.append(RunRecord(
            id=run_id, experiment=parent.experiment, status=RunStatus.RUNNING, created_at=ts,
            start_time=ts, run_type="runyard.childrun",
            parent_id=str(ev.get("parent_id") or parent.id),
            display_name=ev.get("display_name"), target=parent.target,
            definition={}, tags=dict(ev.get("tags") or {})))


def build_metric_row(name: str, kind: str, step: int, value: Any) -> MetricRow:
    """One metric row for a value logged directly (not through a spool)."""
    return _metric([name, kind, step, value, time.time()])
