"""``runyard reconcile``: run the workspace's reconciler in the foreground."""

from __future__ import annotations

import contextlib

import click

from runyard.cli.workspace import current_workspace


@click.command("reconcile")
@click.option("--once", is_flag=True, help="One pass over the live runs, then exit.")
def reconcile(once: bool) -> None:
    """Move every run of the workspace forward until interrupted (for a service manager).

    Exits at once (status 0) when another reconciler already leads this workspace.
    """
    from runyard.services.runs.reconciler import reconcile as one_pass  # noqa: PLC0415
    from runyard.services.runs.reconciler import serve  # noqa: PLC0415

    ws = current_workspace()
    if once:
        runs = one_pass(ws.context)
        click.echo(f"{len(runs)} live run(s) reconciled")
        return
    click.echo(f"reconciling workspace {ws.name!r} in {ws.path} (Ctrl-C to stop)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve(ws.context, detached=False)
