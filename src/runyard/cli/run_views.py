"""What the run commands show: run summaries, full details, metric summaries, and their
rendering as tables (people) or dicts (``--json``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from runyard.cli import output

if TYPE_CHECKING:
    from runyard.run import Run

_STATUS_STYLE = {"Completed": "green", "Failed": "red", "NotResponding": "red",
                 "Canceled": "yellow", "Running": "cyan"}


@dataclass
class MetricSummary:
    """One metric: its kind, how many values were logged, and the last scalar value."""

    name: str
    kind: str
    count: int
    last: Any = None


def metric_summaries(run: Run) -> list[MetricSummary]:
    """Every metric of ``run`` (call after something refreshed the run, e.g. get_details).

    ``Run.get_metrics`` cannot tell a repeated scalar from a list metric, so the kinds come
    from the workspace store's metric rows (ordered by name, step, insertion).
    """
    out: dict[str, MetricSummary] = {}
    for row in run.workspace.client.get_metric_rows(run.id):
        m = out.setdefault(row.name, MetricSummary(row.name, row.kind, 0))
        m.count += 1
        m.kind = row.kind
        if row.kind == "scalar":
            m.last = row.value if row.value_json is None else json.loads(row.value_json)
    return list(out.values())


def summary(run: Run) -> dict[str, Any]:
    """The fields of a ``run list`` row (SDK key names)."""
    d = run.get_details()
    return {
        "runId": d["runId"], "experiment": d["experiment"], "status": d["status"],
        "target": d["target"], "createdTimeUtc": d["createdTimeUtc"],
        "startTimeUtc": d["startTimeUtc"], "endTimeUtc": d.get("endTimeUtc"),
        "durationSeconds": output.duration_seconds(d["startTimeUtc"], d.get("endTimeUtc")),
        "tags": d["tags"],
    }


def details(run: Run) -> tuple[dict[str, Any], list[MetricSummary]]:
    """``Run.get_details()`` plus metrics, their summary, files and status events; and the
    metric summaries."""
    d = run.get_details()
    metrics = metric_summaries(run)
    d["durationSeconds"] = output.duration_seconds(d["startTimeUtc"], d.get("endTimeUtc"))
    d["metricsSummary"] = {m.name: m.last for m in metrics if m.kind == "scalar"}
    d["metrics"] = run.get_metrics()
    d["files"] = run.get_file_names()
    d["events"] = run.get_events()
    return d, metrics


def _status(value: str) -> Any:
    from rich.text import Text  # noqa: PLC0415

    return Text(value, style=_STATUS_STYLE.get(value, ""))


def print_list(rows: Iterable[dict[str, Any]]) -> None:
    """The ``run list`` table."""
    output.table(
        ["RUN ID", "EXPERIMENT", "STATUS", "TARGET", "STARTED", "DURATION"],
        [[r["runId"], r["experiment"], r["status"], r["target"],
          output.local_time(r["startTimeUtc"]), output.human_duration(r["durationSeconds"])]
         for r in rows],
        empty="no runs")


def _command_line(d: dict[str, Any]) -> str | None:
    rd = d.get("runDefinition") or {}
    if rd.get("command"):
        cmd = rd["command"]
        return cmd if isinstance(cmd, str) else shlex.join(str(c) for c in cmd)
    if rd.get("script"):
        return shlex.join([str(rd["script"]), *(str(a) for a in rd.get("arguments") or [])])
    return None


def _section(title: str) -> None:
    click.echo()
    click.secho(title, bold=True)


def print_metrics(metrics: list[MetricSummary]) -> None:
    """Metrics table: the last value of each scalar, the kind of the others."""
    output.table(["METRIC", "LAST", "VALUES"],
                 [[m.name, m.last if m.kind == "scalar" else f"({m.kind})", m.count]
                  for m in metrics], empty="no metrics")


def print_details(d: dict[str, Any], metrics: list[MetricSummary]) -> None:
    """The ``run show`` view of ``details(run)``."""
    click.secho(f"Run {d['runId']}", bold=True)
    fields = [
        ("experiment", d["experiment"]), ("status", _status(d["status"])),
        ("target", d["target"]), ("type", d["type"]), ("attempt", d["attempt"]),
        ("created", output.local_time(d["createdTimeUtc"])),
        ("started", output.local_time(d["startTimeUtc"])),
        ("ended", output.local_time(d.get("endTimeUtc"))),
        ("duration", output.human_duration(d["durationSeconds"])),
        ("command", _command_line(d)), ("snapshot", d.get("snapshotId")),
    ]
    if d.get("parentRunId"):
        fields.insert(1, ("parent", d["parentRunId"]))
    _grid(fields)
    if d.get("rejectedEvents"):
        click.secho(f"warning: {d['rejectedEvents']} spool lines were rejected (not applied); "
                    "see system_logs/rejected_events.jsonl", fg="yellow", err=True)
    for title, values in (("Tags", d["tags"]), ("Properties", d["properties"])):
        if values:
            _section(title)
            _grid(sorted(values.items()))
    error = d.get("error")
    if error:
        _section("Error")
        click.echo(error.get("message", json.dumps(error)))
        if error.get("traceback"):
            click.echo()
            click.echo(error["traceback"])
    _section("Metrics")
    print_metrics(metrics)
    _section("Files")
    if d["files"]:
        for name in d["files"]:
            click.echo(f"  {name}")
    else:
        click.echo("no files", err=True)
    _section("Status events")
    output.table(["TIME", "STATUS", "ATTEMPT", "CAUSE"],
                 [[output.local_time(e["time"]), e["status"], e["attempt"], e["cause"]]
                  for e in d["events"]], empty="no events")


def _grid(pairs: Iterable[tuple[str, Any]]) -> None:
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(key, value if isinstance(value, Text) else Text(output.text(value)))
    output.console().print(grid)
