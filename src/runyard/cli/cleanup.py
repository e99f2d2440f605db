"""``runyard run delete`` and ``runyard gc``: give a workspace's disk back.

Both list what goes (kind, name, size) and the bytes freed; both check everything before
removing anything (an unknown run, a live run or a bad ``--older-than`` removes nothing).
Without ``--yes`` they ask first; ``gc --dry-run`` only lists.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace

if TYPE_CHECKING:
    from runyard.services.cleanup import CleanupReport


def human_bytes(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``3.2 MiB``, ``1.0 GiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _older_than(ctx: click.Context, param: click.Parameter, value: Any) -> float:
    try:
        days = float(value)
    except (TypeError, ValueError):
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise click.BadParameter(f"{value!r} is not a number of days >= 0 (e.g. "
                                 "--older-than 30; 0 takes everything that ended)")
    return days


def _show(report: CleanupReport, *, as_json: bool, what: str) -> None:
    if as_json:
        output.print_json(report.to_dict())
        return
    output.table(["KIND", "NAME", "SIZE", "NOTE"],
                 [[r.kind, r.name, human_bytes(r.bytes), r.note or None]
                  for r in report.removed], empty=f"nothing to {what}")
    verb = "would free" if report.dry_run else "freed"
    click.echo(f"{verb} {human_bytes(report.total_bytes)} ({report.total_bytes} bytes) in "
               f"{len(report.removed)} item(s)")


@click.command("delete")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
def delete_runs(run_ids: tuple[str, ...], yes: bool, dry_run: bool, as_json: bool) -> None:
    """Delete ended runs with their child runs: records, metrics, artifacts and folders.

    A run that has not ended is refused (cancel it first); nothing is deleted then.
    """
    client = current_workspace().client
    plan = client.delete_runs(list(run_ids), dry_run=True)  # checks every id first
    if dry_run:
        _show(plan, as_json=as_json, what="delete")
        return
    if not yes:
        _show(plan, as_json=False, what="delete")
        click.confirm(f"Delete {plan.count('run')} run(s)?", abort=True, err=True)
    _show(client.delete_runs(list(run_ids)), as_json=as_json, what="delete")


@click.command("gc")
@click.option("--older-than", "days", required=True, metavar="DAYS", callback=_older_than,
              help="Remove runs that ended more than DAYS days ago, and snapshots and "
                   "environments no run has used for DAYS days.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def gc(days: float, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Remove what the workspace no longer needs: ended runs older than DAYS (with their
    children), working copies left by ended runs, snapshot blobs no remaining run refers to,
    and built environments unused for DAYS (never one being built or used)."""
    client = current_workspace().client
    plan = client.collect_garbage(days, dry_run=True)
    if dry_run or not plan.removed:
        _show(plan, as_json=as_json, what="remove")
        return
    if not yes:
        _show(plan, as_json=False, what="remove")
        click.confirm(f"Remove these {len(plan.removed)} item(s)?", abort=True, err=True)
    _show(client.collect_garbage(days), as_json=as_json, what="remove")
