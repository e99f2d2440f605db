"""``runyard run``: submit, list, show, logs, cancel and download runs."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runyard.cli import output, run_views
from runyard.cli.workspace import current_workspace
from runyard.entities import RunStatus
from runyard.logcap import READ_CHUNK_BYTES, LineCapper

if TYPE_CHECKING:
    from runyard.environment import Environment
    from runyard.run import Run
    from runyard.workspace import Workspace

#: Exit code when a waited-for run did not end Completed.
RUN_NOT_COMPLETED_EXIT = 1
INTERRUPTED_EXIT = 130


@click.group("run")
def run() -> None:
    """Submit runs and look at them."""


def _get(run_id: str) -> Run:
    from runyard.run import Run  # noqa: PLC0415

    return Run.get(current_workspace(), run_id)


def _parse_tags(ctx: click.Context, param: click.Parameter,
                values: tuple[str, ...]) -> dict[str, str | None]:
    tags: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise click.BadParameter(f"{item!r}: give KEY=VALUE (or just KEY)")
        tags[key.strip()] = value if sep else None
    return tags


def _wait(r: Run, *, as_json: bool = False, show_metrics: bool = True) -> None:
    """Stream the run's log until it ends, then show the outcome; exit 1 unless Completed."""
    try:
        with output.progress(f"waiting for run {r.id} (Ctrl-C stops waiting, not the run)",
                             stderr=as_json):
            r.wait_for_completion(show_output=True, raise_on_error=False,
                                  out=sys.stderr if as_json else sys.stdout)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: run {r.id} keeps running; stop it with "
                   f"`runyard run cancel {r.id}`", err=True)
        raise click.exceptions.Exit(INTERRUPTED_EXIT) from None
    d, metrics = run_views.details(r)
    if as_json:
        output.print_json(d)
    elif show_metrics:
        click.secho("Metrics", bold=True)
        run_views.print_metrics(metrics)
    if d["status"] != RunStatus.COMPLETED.value:
        message = (d.get("error") or {}).get("message")
        click.echo(f"run {r.id} ended {d['status']}" + (f": {message}" if message else ""),
                   err=True)
        raise click.exceptions.Exit(RUN_NOT_COMPLETED_EXIT)


@run.command("submit", context_settings={"ignore_unknown_options": True,
                                         "allow_interspersed_args": False})
@click.argument("script")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--experiment", default="default", show_default=True,
              help="Experiment to record the run in (created if needed).")
@click.option("--target", help="Compute target (default: the run configuration's, else local).")
@click.option("--runconfig", metavar="NAME",
              help="Start from .runyard/NAME.runconfig in the source folder.")
@click.option("--source-dir", default=".", show_default=True, type=click.Path(),
              help="Folder snapshotted and run from; SCRIPT is relative to it.")
@click.option("--tag", "tags", multiple=True, callback=_parse_tags, metavar="KEY=VALUE",
              help="Tag the run (repeatable).")
@click.option("--conda-file", type=click.Path(exists=True, dir_okay=False),
              help="Build the run's environment from this conda environment.yml.")
@click.option("--pip-requirements", type=click.Path(exists=True, dir_okay=False),
              help="Build the run's environment from this pip requirements.txt.")
@click.option("--environment", "environment", metavar="NAME[:VERSION]",
              help="Use a registered environment (latest version unless :VERSION).")
@click.option("--wait", is_flag=True,
              help="Stream the log and each status change until the run ends, show its "
                   "metrics; exit 1 unless it ends Completed.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run (with --wait: its details) as JSON; the log goes to stderr.")
def submit(script: str, args: tuple[str, ...], experiment: str, target: str | None,
           runconfig: str | None, source_dir: str, tags: dict[str, str | None],
           conda_file: str | None, pip_requirements: str | None, environment: str | None,
           wait: bool, as_json: bool) -> None:
    """Run SCRIPT with ARGS (everything after SCRIPT goes to the script).

    Options go before SCRIPT: runyard run submit --wait train.py --lr 0.1

    Without --conda-file, --pip-requirements or --environment (one at most), the script runs
    in the run configuration's environment, by default the interpreter runyard runs in.
    """
    from runyard.experiment import Experiment  # noqa: PLC0415
    from runyard.runconfig import RunConfiguration, ScriptRunConfig  # noqa: PLC0415

    if script.startswith("-"):  # an unknown option before SCRIPT (ignore_unknown_options)
        raise click.UsageError(f"no such option: {script} (the script's own options go after "
                               "SCRIPT)")
    given = [f"--{n}" for n, v in (("conda-file", conda_file),
                                    ("pip-requirements", pip_requirements),
                                    ("environment", environment)) if v]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} exclude each other: give one "
                               "environment")
    ws = current_workspace()
    rc = RunConfiguration.load(source_dir, runconfig) if runconfig else None
    env = _environment(ws, conda_file, pip_requirements, environment)
    config = ScriptRunConfig(source_directory=source_dir, script=script,
                             arguments=list(args) if args else None, run_config=rc,
                             compute_target=target, environment=env)
    with output.progress(f"submitting {script}: snapshot of {source_dir}, then the run",
                         stderr=True):
        r = Experiment(ws, experiment).submit(config, tags=tags)
    if wait:
        _wait(r, as_json=as_json)
    elif as_json:
        output.print_json({"runId": r.id, "experiment": experiment, "status": r.get_status()})
    else:
        click.echo(r.id)
        click.echo(f"follow it with: runyard run logs -f {r.id}", err=True)


def _environment(ws: Workspace, conda_file: str | None, pip_requirements: str | None,
                 environment: str | None) -> Environment | None:
    """The environment the submit options ask for (None: the run configuration's)."""
    from pathlib import Path  # noqa: PLC0415

    from runyard.environment import Environment  # noqa: PLC0415
    from runyard.errors import InvalidParameter, NotFound  # noqa: PLC0415

    option, path = (("--conda-file", conda_file) if conda_file else
                    ("--pip-requirements", pip_requirements))
    if path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).resolve().parent.name
                      + "-" + Path(path).stem).strip("-.") or "cli-env"
        try:
            if conda_file:
                return Environment.from_conda_specification(name, path)
            return Environment.from_pip_requirements(name, path)
        except InvalidParameter as exc:
            raise InvalidParameter(option, f"{exc} (fix the file, or drop {option})") from None
    if environment:
        name, _, version = environment.partition(":")
        if not name:
            raise InvalidParameter("--environment", f"{environment!r}: give NAME or "
                                   "NAME:VERSION of a registered environment "
                                   "(`runyard env list --registered`)")
        try:
            return Environment.get(ws, name, version or None)
        except NotFound as exc:
            raise InvalidParameter("--environment", f"{exc}; register it first "
                                   "(Environment.register) or use --conda-file / "
                                   "--pip-requirements") from None
    return None


@run.command("list")
@click.option("-e", "--experiment", help="Only runs of this experiment.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
              help="Only runs in this status.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Newest N runs (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_runs(experiment: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List top-level runs, newest first."""
    from runyard.experiment import Experiment  # noqa: PLC0415

    ws = current_workspace()
    ws.client.reconcile()  # so that statuses (and the --status filter) are current
    runs: list[Run] = []
    for exp in Experiment.list(ws, experiment_name=experiment):
        found = exp.get_runs(status=status)
        runs.extend(itertools.islice(found, limit) if limit else found)
    rows = sorted((run_views.summary(r) for r in runs), reverse=True,
                  key=lambda s: (output.parse_iso(s["createdTimeUtc"]), s["runId"]))
    rows = rows[:limit] if limit else rows
    if as_json:
        output.print_json(rows)
    else:
        run_views.print_list(rows)


@run.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the details as JSON.")
def show(run_id: str, as_json: bool) -> None:
    """Status, times, error, tags, properties, metrics, files and status events of a run."""
    d, metrics = run_views.details(_get(run_id))
    if as_json:
        output.print_json(d)
    else:
        run_views.print_details(d, metrics)


@run.command("logs")
@click.argument("run_id")
@click.option("-f", "--follow", is_flag=True,
              help="Stream the log until the run ends; exit 1 unless it ends Completed.")
def logs(run_id: str, follow: bool) -> None:
    """Print the driver log (the script's stdout and stderr)."""
    from runyard.runtime.runner import DRIVER_LOG  # noqa: PLC0415

    r = _get(run_id)
    if follow:
        _wait(r, show_metrics=False)
        return
    if DRIVER_LOG not in r.get_file_names():
        click.echo(f"run {r.id} has no log yet (status {r.get_status()})", err=True)
        return
    sys.stdout.flush()
    offset, capper = 0, LineCapper()
    while chunk := r.workspace.client.read_file(r.id, DRIVER_LOG, offset, READ_CHUNK_BYTES):
        sys.stdout.buffer.write(capper.feed(chunk))
        offset += len(chunk)
    sys.stdout.buffer.flush()


@run.command("cancel")
@click.argument("run_id")
def cancel(run_id: str) -> None:
    """Stop a run and its whole process tree (a finished run is left as it is)."""
    r = _get(run_id)
    before = r.get_status()
    if RunStatus(before).terminal:
        click.echo(f"run {r.id} already ended {before}; nothing to cancel")
        return
    r.cancel()
    click.echo(f"run {r.id}: {r.get_status()}")


def default_download_dir(r: Run) -> Path:
    """Where ``run download`` writes without ``--output``: ``./<run id>/``, unless the current
    folder is inside the run's source folder (the next snapshot would take the files in):
    then ``<workspace>/.runyard/downloads/<run id>/``, which snapshots never include."""
    cwd = Path.cwd().resolve()
    record = r.workspace.client.get_run(r.id)
    source = (record.definition.get("sourceDirectory") if record is not None else None)
    if source and cwd.is_relative_to(Path(str(source)).resolve()):
        return current_workspace().data_dir / "downloads" / r.id
    return cwd / r.id


@run.command("download")
@click.argument("run_id")
@click.option("--prefix", help="Only files whose path starts with this (e.g. outputs/).")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False),
              help="Folder to write the files into (default: ./RUN_ID/, or "
                   ".runyard/downloads/RUN_ID/ of the workspace when the current folder is "
                   "inside the run's source folder).")
def download(run_id: str, prefix: str | None, output_dir: str | None) -> None:
    """Copy a run's files (outputs/, logs/, system_logs/...) keeping their paths.

    Never writes into the run's source folder unless --output says so.
    """
    r = _get(run_id)
    dest = Path(output_dir) if output_dir else default_download_dir(r)
    files = r.download_files(prefix=prefix, output_directory=str(dest))
    for f in files:
        click.echo(f)
    if not files:
        click.echo(f"run {r.id} has no files" + (f" starting with {prefix!r}" if prefix else ""),
                   err=True)
    else:
        click.echo(f"{len(files)} file{'s' if len(files) != 1 else ''} written to {dest}",
                   err=True)


@run.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(run_ids: tuple[str, ...], as_json: bool) -> None:
    """Runs side by side: status, duration, arguments, tags and each metric's last value."""
    if len(run_ids) < 2:
        raise click.UsageError("give at least two run ids to compare")
    data = run_views.comparison([_get(rid) for rid in run_ids])
    if as_json:
        output.print_json(data)
    else:
        run_views.print_comparison(data)
