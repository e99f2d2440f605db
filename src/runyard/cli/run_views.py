"""What the run commands show: run summaries, full details, metric summaries, a sweep's trials,
and their rendering as tables (people) or dicts (``--json``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from runyard.cli import output

if TYPE_CHECKING:
    from runyard.run import HyperDriveRun, Run

_STATUS_STYLE = {"Completed": "green", "Failed": "red", "NotResponding": "red",
                 "Canceled": "yellow", "Running": "cyan"}


@dataclass
class MetricSummary:
    """One metric: its kind, how many values were logged, the last scalar value and, for
    numbers, the smallest and largest."""

    name: str
    kind: str
    count: int
    last: Any = None
    min: float | None = None
    max: float | None = None

    def add(self, value: Any) -> None:
        """Take one more scalar value."""
        self.last = value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.min = value if self.min is None else min(self.min, value)
            self.max = value if self.max is None else max(self.max, value)


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
            m.add(row.value if row.value_json is None else json.loads(row.value_json))
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
    metric summaries; for a sweep, its ``trials`` (:func:`trial_rows`) too."""
    from runyard.run import HyperDriveRun  # noqa: PLC0415

    d = run.get_details()
    metrics = metric_summaries(run)
    d["durationSeconds"] = output.duration_seconds(d["startTimeUtc"], d.get("endTimeUtc"))
    d["metricsSummary"] = {m.name: m.last for m in metrics if m.kind == "scalar"}
    d["metricStats"] = {m.name: {"kind": m.kind, "count": m.count, "min": m.min, "max": m.max,
                                 "last": m.last} for m in metrics}
    d["metrics"] = run.get_metrics()
    d["files"] = run.get_file_names()
    d["events"] = run.get_events()
    d["children"] = [summary(c) for c in run.get_children()]
    if isinstance(run, HyperDriveRun):  # a sweep: its trials, best primary metric first
        name, goal = run.primary_metric
        d["primaryMetric"] = {"name": name, "goal": goal}
        d["trials"] = trial_rows(run)
    return d, metrics


def arguments(d: dict[str, Any]) -> dict[str, str]:
    """The script's ``--name value`` / ``--name=value`` / ``--flag`` arguments, by name."""
    args = [str(a) for a in ((d.get("runDefinition") or {}).get("arguments") or [])]
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) > 1 and not _number(a):
            key, sep, value = a.lstrip("-").partition("=")
            if not sep:
                nxt = args[i + 1] if i + 1 < len(args) else None
                if nxt is not None and (not nxt.startswith("-") or _number(nxt)):
                    value, i = nxt, i + 1
                else:
                    value = "true"
            out[key] = value
        i += 1
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def comparison(runs: list[Run]) -> dict[str, Any]:
    """Runs side by side: status, duration, target, arguments, tags and each metric's last
    value (non-scalar metrics by their kind), one row per field."""
    cols = [details(r) for r in runs]
    rows: list[tuple[str, list[Any]]] = [
        ("experiment", [d["experiment"] for d, _ in cols]),
        ("status", [d["status"] for d, _ in cols]),
        ("target", [d["target"] for d, _ in cols]),
        ("duration", [output.human_duration(d["durationSeconds"]) for d, _ in cols]),
    ]
    args = [arguments(d) for d, _ in cols]
    for key in sorted({k for a in args for k in a}):
        rows.append((f"arg {key}", [a.get(key) for a in args]))
    for key in sorted({k for d, _ in cols for k in d["tags"]}):
        rows.append((f"tag {key}", [d["tags"].get(key) for d, _ in cols]))
    stats = [{m.name: m for m in ms} for _, ms in cols]
    for name in sorted({k for s in stats for k in s}):
        rows.append((f"metric {name}", [
            None if name not in s else (s[name].last if s[name].kind == "scalar"
                                        else f"({s[name].kind})") for s in stats]))
    return {"runIds": [d["runId"] for d, _ in cols],
            "rows": [{"field": f, "values": v} for f, v in rows],
            "runs": [{"runId": d["runId"], "status": d["status"],
                      "durationSeconds": d["durationSeconds"], "arguments": a,
                      "tags": d["tags"], "metrics": d["metricStats"]}
                     for (d, _), a in zip(cols, args, strict=True)]}


def print_comparison(data: dict[str, Any]) -> None:
    """The ``run compare`` table: one column per run."""
    output.table(["FIELD", *data["runIds"]],
                 [[row["field"], *row["values"]] for row in data["rows"]])


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
    """Metrics table: how many values, min, max and last of each scalar, the kind of the
    others."""
    output.table(["METRIC", "VALUES", "MIN", "MAX", "LAST"],
                 [[m.name, m.count, m.min, m.max,
                   m.last if m.kind == "scalar" else f"({m.kind})"]
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
    if d.get("trials") is not None:
        _section(f"Trials (best {d['primaryMetric']['name']} first)")
        print_trials(d["trials"], d["primaryMetric"]["name"])
    elif d.get("children"):
        _section("Child runs")
        output.table(["RUN ID", "STATUS", "STARTED", "DURATION"],
                     [[c["runId"], c["status"], output.local_time(c["startTimeUtc"]),
                       output.human_duration(c["durationSeconds"])] for c in d["children"]])
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


def trial_rows(hd: HyperDriveRun) -> list[dict[str, Any]]:
    """The trials, best primary metric first (no metric: last): ``runId``, ``trial``,
    ``status``, ``bestPrimaryMetric``, ``hyperparameters``, ``terminationReason``."""
    from runyard.services.sweeps.controller import TERMINATED_TAG  # noqa: PLC0415
    from runyard.store.base import RunFilter  # noqa: PLC0415

    # one store read for every trial's tags (Run.tags would sync each trial in turn)
    tags = {c.id: c.tags for c in hd.workspace.client.list_runs(
        RunFilter(parent_id=hd.id, top_level_only=False))}
    out = []
    for row in hd.get_children_sorted_by_primary_metric():
        run_id = str(row["run_id"])
        index = run_id.rsplit("_", 1)[-1]
        out.append({"runId": run_id, "trial": int(index) if index.isdigit() else index,
                    "status": row["status"], "bestPrimaryMetric": row["best_primary_metric"],
                    "hyperparameters": row["hyperparameters"],
                    "terminationReason": tags.get(run_id, {}).get(TERMINATED_TAG)})
    scored = [r for r in out if r["bestPrimaryMetric"] is not None]
    return scored + sorted((r for r in out if r["bestPrimaryMetric"] is None),
                           key=lambda r: (str(type(r["trial"])), r["trial"]))


def print_trials(rows: list[dict[str, Any]], metric: str, *, top: int = 0) -> None:
    """The trials table (one column per hyperparameter); ``top``: only the first N."""
    shown = rows[:top] if top else rows
    keys: list[str] = []
    for r in shown:
        keys += [k for k in r["hyperparameters"] if k not in keys]
    reasons = any(r["terminationReason"] for r in shown)
    output.table(
        ["TRIAL", "RUN ID", "STATUS", metric.upper() or "METRIC", *keys,
         *(["TERMINATION"] if reasons else [])],
        [[r["trial"], r["runId"], r["status"], r["bestPrimaryMetric"],
          *(r["hyperparameters"].get(k) for k in keys),
          *([r["terminationReason"]] if reasons else [])] for r in shown],
        empty="no trials yet")
    if top and len(rows) > top:
        click.echo(f"({len(rows) - top} more trial{'s' if len(rows) - top != 1 else ''}; "
                   "--top 0 shows all)", err=True)


def _grid(pairs: Iterable[tuple[str, Any]]) -> None:
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(key, value if isinstance(value, Text) else Text(output.text(value)))
    output.console().print(grid)
