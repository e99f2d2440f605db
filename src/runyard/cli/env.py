"""``runyard env``: the environment cache of the local target, and registered environments."""

from __future__ import annotations

import time
from typing import Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace


@click.group("env")
def env() -> None:
    """Environments: built environments in the cache, registered definitions."""


def _packages(item: dict[str, Any]) -> str | None:
    pkgs = list(item.get("packages") or [])
    if not pkgs:
        return None
    shown = ", ".join(pkgs[:4])
    return shown + (f" (+{len(pkgs) - 4})" if len(pkgs) > 4 else "")


def _mib(size: Any) -> str | None:
    return None if size is None else f"{size / (1024 * 1024):.1f} MiB"


@env.command("list")
@click.option("--registered", is_flag=True,
              help="List registered environment definitions instead of built environments.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_envs(registered: bool, as_json: bool) -> None:
    """List built environments in the local cache (newest use first)."""
    ws = current_workspace()
    if registered:
        from runyard.environment import Environment  # noqa: PLC0415

        regs = [{"name": e.name, "version": e.version,
                 "builder": e.python.builder, "userManaged": e.python.user_managed_dependencies,
                 "docker": e.docker.enabled} for e in Environment.list(ws).values()]
        if as_json:
            output.print_json(regs)
        else:
            output.table(["NAME", "VERSION", "BUILDER", "USER MANAGED", "DOCKER"],
                         [[r["name"], r["version"], r["builder"], r["userManaged"], r["docker"]]
                          for r in regs], empty="no registered environments")
        return
    from runyard.environments import local_cache_dir  # noqa: PLC0415
    from runyard.runtime.envbuild import list_cache  # noqa: PLC0415

    items = list_cache(local_cache_dir(ws))
    if as_json:
        output.print_json(items)
        return
    output.table(
        ["KEY", "BUILDER", "PYTHON", "PACKAGES", "SIZE", "CREATED", "LAST USED", "IN USE"],
        [[i["key"], i.get("builder") or ("(incomplete)" if not i["complete"] else None),
          i.get("python"), _packages(i), _mib(i.get("size_bytes")),
          output.local_time(i.get("created")), output.local_time(i.get("last_used")),
          "yes" if i.get("in_use") else None] for i in items],
        empty="no built environments (they are built when a run needs one)")


@env.command("prune")
@click.option("--older-than", "days", type=click.FloatRange(min=0), required=True,
              metavar="DAYS", help="Remove environments no run has used for DAYS days.")
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of what was removed.")
def prune_envs(days: float, dry_run: bool, as_json: bool) -> None:
    """Remove unused environments and leftovers of failed builds (never one in use)."""
    from runyard.environments import local_cache_dir  # noqa: PLC0415
    from runyard.runtime.envbuild import prune_cache  # noqa: PLC0415

    removed = prune_cache(local_cache_dir(current_workspace()), days * 86400, dry_run=dry_run,
                          now=time.time())
    if as_json:
        output.print_json(removed)
        return
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        click.echo(f"{verb} {item['key']} ({item.get('reason')}): {item['path']}")
    click.echo(f"{verb} {len(removed)} environment folder(s)", err=True)
