"""``runyard datastore``: list, show, register, upload to and download from datastores.

No command prints a credential: ``show`` and ``--json`` give the name, type and non-secret
settings only, and ``register-blob`` reads the account key or SAS token from standard input.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace

if TYPE_CHECKING:
    from runyard.datastores.base import TransferReport


@click.group("datastore")
def datastore() -> None:
    """Datastores (where the workspace's data lives)."""


def _read_secret(label: str) -> str:
    if sys.stdin.isatty():
        return str(click.prompt(label, hide_input=True))
    line = sys.stdin.readline().strip()
    if not line:
        from runyard.errors import InvalidParameter  # noqa: PLC0415

        raise InvalidParameter(label.replace(" ", "_"), "standard input gave an empty line")
    return line


@datastore.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_cmd(as_json: bool) -> None:
    """List the datastores (* marks the default)."""
    stores = current_workspace().datastores
    if as_json:
        output.print_json([d.to_dict() for d in stores.values()])
        return
    output.table(["name", "type", "default", "where"], [
        [d.name, d.datastore_type, "*" if d.is_default else "",
         d.container_name or d.path_on_disk or ""] for d in stores.values()])


@datastore.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
def show(name: str | None, as_json: bool) -> None:
    """Show a datastore (default: the default datastore); credentials are never shown."""
    from runyard.datastore import Datastore  # noqa: PLC0415

    d = Datastore(current_workspace(), name)
    data = d.to_dict()
    if as_json:
        output.print_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@datastore.command("register-local")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace a datastore of the same name.")
@click.option("--json", "as_json", is_flag=True)
def register_local(name: str, path: str, overwrite: bool, as_json: bool) -> None:
    """Register the folder PATH as datastore NAME."""
    from runyard.datastore import Datastore  # noqa: PLC0415

    d = Datastore.register_local_folder(current_workspace(), name, path, overwrite=overwrite)
    if as_json:
        output.print_json(d.to_dict())
    else:
        click.echo(f"registered datastore {d.name} ({d.path_on_disk})")


@datastore.command("register-blob")
@click.argument("name")
@click.option("--container", "container_name", required=True)
@click.option("--account", "account_name", required=True)
@click.option("--endpoint", default=None,
              help="DNS suffix (default core.windows.net) or a full account URL (emulators).")
@click.option("--account-key-stdin", is_flag=True,
              help="Read the account key from standard input.")
@click.option("--sas-token-stdin", is_flag=True, help="Read a SAS token from standard input.")
@click.option("--create-if-not-exists", is_flag=True)
@click.option("--overwrite", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def register_blob(name: str, container_name: str, account_name: str, endpoint: str | None,
                  account_key_stdin: bool, sas_token_stdin: bool, create_if_not_exists: bool,
                  overwrite: bool, as_json: bool) -> None:
    """Register an Azure Blob container as datastore NAME (credentials from stdin)."""
    from runyard.datastore import Datastore  # noqa: PLC0415
    from runyard.errors import InvalidParameter  # noqa: PLC0415

    if account_key_stdin == sas_token_stdin:
        raise InvalidParameter("account_key", "give exactly one of --account-key-stdin and "
                               "--sas-token-stdin (credentials are never command-line values)")
    secret = _read_secret("account key" if account_key_stdin else "sas token")
    d = Datastore.register_azure_blob_container(
        current_workspace(), name, container_name, account_name,
        sas_token=secret if sas_token_stdin else None,
        account_key=secret if account_key_stdin else None, endpoint=endpoint,
        overwrite=overwrite, create_if_not_exists=create_if_not_exists)
    if as_json:
        output.print_json(d.to_dict())
    else:
        click.echo(f"registered datastore {d.name} (container {d.container_name})")


@datastore.command("set-default")
@click.argument("name")
def set_default(name: str) -> None:
    """Make NAME the default datastore."""
    current_workspace().set_default_datastore(name)
    click.echo(f"default datastore: {name}")


def _report(name: str, path: str | None, rep: TransferReport | None, verb: str) -> dict[str, Any]:
    assert rep is not None
    return {"datastore": name, "path": path or "", verb: len(rep.transferred),
            "unchanged": len(rep.unchanged), "kept": len(rep.kept), "bytes": rep.bytes}


@datastore.command("upload")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-d", "--datastore", "name", default=None, help="Default: the default datastore.")
@click.option("-t", "--target-path", default=None, help="Folder on the datastore.")
@click.option("--overwrite", is_flag=True, help="Replace files that differ.")
@click.option("--json", "as_json", is_flag=True)
def upload(src_dir: str, name: str | None, target_path: str | None, overwrite: bool,
           as_json: bool) -> None:
    """Upload the files under SRC_DIR (unchanged files are skipped)."""
    from runyard.datastore import Datastore  # noqa: PLC0415

    d = Datastore(current_workspace(), name)
    ref = d.upload(src_dir, target_path, overwrite=overwrite, show_progress=not as_json)
    if as_json:
        output.print_json(_report(d.name, target_path, ref.report, "uploaded"))


@datastore.command("download")
@click.argument("target_dir", type=click.Path(file_okay=False))
@click.option("-d", "--datastore", "name", default=None, help="Default: the default datastore.")
@click.option("-p", "--prefix", default=None, help="Folder on the datastore (default: all).")
@click.option("--overwrite", is_flag=True, help="Replace local files that differ.")
@click.option("--json", "as_json", is_flag=True)
def download(target_dir: str, name: str | None, prefix: str | None, overwrite: bool,
             as_json: bool) -> None:
    """Download the files under --prefix into TARGET_DIR (unchanged files are skipped)."""
    from pathlib import Path  # noqa: PLC0415

    from runyard.datastore import Datastore  # noqa: PLC0415

    d = Datastore(current_workspace(), name)
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    backend = d.workspace.client.open_datastore(d.name)
    rep = backend.download(target, prefix, overwrite=overwrite, show_progress=not as_json)
    if as_json:
        output.print_json(_report(d.name, prefix, rep, "downloaded"))
