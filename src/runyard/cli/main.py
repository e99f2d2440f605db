"""The ``runyard`` command group, its global options and the error handling.

Exit codes: 0 success; 1 a waited-for run did not end Completed; 2 a usage error or any
``RunyardError`` (printed as ``error: <message>`` on stderr, no traceback). Unexpected
exceptions propagate with their traceback. The SDK is imported inside the commands so that
``runyard --help`` stays fast.
"""

from __future__ import annotations

from typing import IO, Any

import click

from runyard import __version__
from runyard.cli.cleanup import delete_runs, gc
from runyard.cli.compute import compute
from runyard.cli.datasets import dataset
from runyard.cli.datastores import datastore
from runyard.cli.env import env
from runyard.cli.experiments import experiment
from runyard.cli.models import model
from runyard.cli.reconcile import reconcile
from runyard.cli.runs import run
from runyard.cli.sweeps import sweep
from runyard.cli.workspace import WorkspaceRef, init
from runyard.errors import RunyardError

USER_ERROR_EXIT = 2


class UserError(click.ClickException):
    """A ``RunyardError`` shown as ``error: <message>`` with exit code 2."""

    exit_code = USER_ERROR_EXIT

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _RunyardGroup(click.Group):
    """The root group: turns every ``RunyardError`` raised by a command into a ``UserError``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunyardError as exc:
            raise UserError(str(exc)) from exc


@click.group(cls=_RunyardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-w", "--workspace", "workspace",
              type=click.Path(exists=True, file_okay=True, dir_okay=True),
              help="Workspace folder (or a config.json naming one); default: the workspace "
                   "found from the current folder upwards.")
@click.version_option(__version__, prog_name="runyard")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """runyard: write train.py once, run it anywhere, and keep every run on record."""
    ctx.obj = WorkspaceRef(workspace)


cli.add_command(init)
cli.add_command(run)
cli.add_command(sweep)
cli.add_command(experiment)
cli.add_command(compute)
cli.add_command(datastore)
cli.add_command(dataset)
cli.add_command(env)
cli.add_command(model)
cli.add_command(reconcile)
cli.add_command(gc)
run.add_command(delete_runs)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``runyard = "runyard.cli.main:main"``)."""
    cli.main(args=argv, prog_name="runyard")


if __name__ == "__main__":
    main()
