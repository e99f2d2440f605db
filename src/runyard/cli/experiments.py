"""``runyard experiment``: the experiments of the workspace."""

from __future__ import annotations

from typing import Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace


@click.group("experiment")
def experiment() -> None:
    """Experiments (named groups of runs)."""


@experiment.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_experiments(as_json: bool) -> None:
    """List experiments with their number of runs and latest run."""
    from runyard.experiment import Experiment  # noqa: PLC0415

    rows: list[dict[str, Any]] = []
    for exp in Experiment.list(current_workspace()):
        runs = list(exp.get_runs())
        rows.append({"name": exp.name, "id": exp.id, "runs": len(runs),
                     "latestRunId": runs[0].id if runs else None})
    if as_json:
        output.print_json(rows)
    else:
        output.table(["EXPERIMENT", "RUNS", "LATEST RUN"],
                     [[r["name"], r["runs"], r["latestRunId"]] for r in rows],
                     empty="no experiments")
