"""``runyard model``: the workspace's model registry (list, show, register, download, delete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace


@click.group("model")
def model() -> None:
    """Registered models: versioned files with tags, properties and the run that made them."""


def _kv(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=f"--{what}")
        out[key] = value
    return out


def _brief(m: Any) -> dict[str, Any]:
    d: dict[str, Any] = m.serialize()
    d.pop("files", None)
    return d


@model.command("list")
@click.option("--name", default=None, help="Only versions of this model.")
@click.option("--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="Filter by tag.")
@click.option("--property", "props", multiple=True, metavar="KEY[=VALUE]",
              help="Filter by property.")
@click.option("--latest", is_flag=True, help="Only the newest version of each model.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_models(name: str | None, tags: tuple[str, ...], props: tuple[str, ...], latest: bool,
                as_json: bool) -> None:
    """List registered model versions (by name, newest version first)."""
    from runyard.model import Model  # noqa: PLC0415

    def flt(pairs: tuple[str, ...]) -> dict[str, str | None] | None:
        if not pairs:
            return None
        return {k: (v if sep else None) for k, sep, v in (p.partition("=") for p in pairs)}

    models = Model.list(current_workspace(), name, tags=flt(tags), properties=flt(props),
                        latest=latest)
    if as_json:
        output.print_json([_brief(m) for m in models])
        return
    output.table(["NAME", "VERSION", "SIZE", "RUN", "CREATED", "TAGS"],
                 [[m.name, m.version, m.size, m.run_id, output.local_time(
                     m.created_time.timestamp()),
                   ", ".join(f"{k}={v}" for k, v in m.tags.items()) or None] for m in models],
                 empty="no registered models")


@model.command("show")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Default: the latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, version: int | None, as_json: bool) -> None:
    """Show one model version with its files."""
    from runyard.model import Model  # noqa: PLC0415

    data = Model(current_workspace(), name, version=version).serialize()
    if as_json:
        output.print_json(data)
        return
    for key in ("id", "description", "runId", "experimentName", "framework", "createdTime",
                "sizeBytes", "tags", "properties"):
        click.echo(f"{key}: {output.text(data[key])}")
    for f in data["files"]:
        click.echo(f"  {f['path']}  {f['size']}")


@model.command("register")
@click.argument("path")
@click.option("--name", "model_name", required=True, help="The model's name.")
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE")
@click.option("--property", "props", multiple=True, metavar="KEY=VALUE")
@click.option("--framework", default=None)
@click.option("--framework-version", default=None)
@click.option("--run", "run_id", default=None,
              help="Register PATH from this run's artifacts (e.g. outputs/model.pkl).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def register(path: str, model_name: str, description: str | None, tags: tuple[str, ...],
             props: tuple[str, ...], framework: str | None, framework_version: str | None,
             run_id: str | None, as_json: bool) -> None:
    """Register a local file or folder (or a run's artifact) as a new model version."""
    from runyard.model import Model  # noqa: PLC0415

    ws = current_workspace()
    meta: dict[str, Any] = {"tags": _kv(tags, "tag"), "properties": _kv(props, "property"),
                            "description": description, "model_framework": framework,
                            "model_framework_version": framework_version}
    if run_id:
        rec = ws.client.register_run_model(run_id, model_name, path, **meta)
    else:
        rec = ws.client.register_model(Path(path), model_name, **meta)
    m = Model._from_record(ws, rec)
    if as_json:
        output.print_json(_brief(m))
    else:
        click.echo(f"registered {m.id} ({m.size} bytes)")


@model.command("download")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Default: the latest.")
@click.option("--target", "target_dir", default=".", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def download(name: str, version: int | None, target_dir: str, overwrite: bool,
             as_json: bool) -> None:
    """Download a model version's file or folder."""
    from runyard.model import Model  # noqa: PLC0415

    m = Model(current_workspace(), name, version=version)
    path = m.download(target_dir, exist_ok=overwrite)
    if as_json:
        output.print_json({"id": m.id, "path": path})
    else:
        click.echo(path)


@model.command("delete")
@click.argument("name")
@click.option("--version", type=int, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def delete(name: str, version: int, as_json: bool) -> None:
    """Delete one model version (its files are freed by `runyard gc`)."""
    rec = current_workspace().client.delete_model(name, version)
    if as_json:
        output.print_json({"deleted": rec.id})
    else:
        click.echo(f"deleted {rec.id}")
