"""``runyard dataset``: registered datasets (list, show, register, download)."""

from __future__ import annotations

from typing import Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace


@click.group("dataset")
def dataset() -> None:
    """Registered datasets: versioned file lists on datastores, with their content hashes."""


def _brief(rec: Any) -> dict[str, Any]:
    return {"id": rec.id, "name": rec.name, "version": rec.version, "kind": rec.kind,
            "description": rec.description, "tags": dict(rec.tags),
            "fileCount": len(rec.files), "totalSize": rec.total_size,
            "createdTime": output.local_time(rec.created_at),
            "definition": rec.definition}


def _full(rec: Any) -> dict[str, Any]:
    return {**_brief(rec), "files": [f.to_json() for f in rec.files]}


@dataset.command("list")
@click.option("--name", default=None, help="Only versions of this dataset.")
@click.option("--latest", is_flag=True, help="Only the newest version of each dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_datasets(name: str | None, latest: bool, as_json: bool) -> None:
    """List registered dataset versions (by name, newest version first)."""
    recs = current_workspace().client.list_datasets(name, latest=latest)
    if as_json:
        output.print_json([_brief(r) for r in recs])
        return
    output.table(["NAME", "VERSION", "KIND", "FILES", "SIZE", "CREATED", "TAGS"],
                 [[r.name, r.version, r.kind, len(r.files), r.total_size,
                   output.local_time(r.created_at),
                   ", ".join(f"{k}={v}" for k, v in r.tags.items()) or None] for r in recs],
                 empty="no registered datasets")


@dataset.command("show")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Default: the latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with every file's hash).")
def show(name: str, version: int | None, as_json: bool) -> None:
    """Show one dataset version with its files (datastore, path, size, sha256)."""
    rec = current_workspace().client.get_dataset(name, version)
    data = _full(rec)
    if as_json:
        output.print_json(data)
        return
    for key in ("id", "kind", "description", "createdTime", "totalSize", "tags",
                "definition"):
        click.echo(f"{key}: {output.text(data[key])}")
    for f in rec.files:
        click.echo(f"  {f.datastore}:{f.path}  {f.size}  {f.sha256}")


@dataset.command("register")
@click.option("--datastore", "datastore_name", required=True, help="The datastore's name.")
@click.option("--path", "paths", required=True, multiple=True, metavar="GLOB",
              help="A path or glob on the datastore (repeatable), e.g. 'data/**/*.csv'.")
@click.option("--name", "dataset_name", required=True, help="The dataset's name.")
@click.option("--tabular", is_flag=True, help="Delimited text files (else: a file dataset).")
@click.option("--separator", default=",", show_default=True, help="With --tabular.")
@click.option("--no-header", is_flag=True, help="With --tabular: the files have no header.")
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE")
@click.option("--new-version", is_flag=True,
              help="Register a new version when the name exists with another definition.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def register(datastore_name: str, paths: tuple[str, ...], dataset_name: str, tabular: bool,
             separator: str, no_header: bool, description: str | None, tags: tuple[str, ...],
             new_version: bool, as_json: bool) -> None:
    """Register the files PATHs name on a datastore as a new dataset version."""
    from runyard.dataset import Dataset  # noqa: PLC0415
    from runyard.datastore import Datastore  # noqa: PLC0415

    ws = current_workspace()
    kv: dict[str, str] = {}
    for pair in tags:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        kv[key] = value
    store = Datastore(ws, datastore_name)
    where = [(store, p) for p in paths]
    ds: Any = (Dataset.Tabular.from_delimited_files(where, separator=separator,
                                                    header=not no_header) if tabular
               else Dataset.File.from_files(where))
    reg = ds.register(ws, dataset_name, description=description, tags=kv,
                      create_new_version=new_version)
    rec = ws.client.get_dataset(dataset_name, reg.version)
    if as_json:
        output.print_json(_brief(rec))
    else:
        click.echo(f"registered {rec.id} ({len(rec.files)} files, {rec.total_size} bytes)")


@dataset.command("download")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Default: the latest.")
@click.option("--target", "target_dir", default=".", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def download(name: str, version: int | None, target_dir: str, overwrite: bool,
             as_json: bool) -> None:
    """Download a dataset version's files (checked against their recorded sha256)."""
    from runyard.dataset import FileDataset, _from_record  # noqa: PLC0415

    ws = current_workspace()
    rec = ws.client.get_dataset(name, version)
    ds = _from_record(ws, rec)
    if not isinstance(ds, FileDataset):  # a tabular dataset's files, as files
        ds = FileDataset(ws, ds._paths, {}, [], list(rec.files), rec)
    paths = ds.download(target_dir, overwrite=overwrite)
    if as_json:
        output.print_json({"id": rec.id, "paths": paths})
    else:
        for p in paths:
            click.echo(p)
