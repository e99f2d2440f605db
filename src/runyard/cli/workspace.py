"""Opening the workspace the command works on, and ``runyard init``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runyard.cli import output

if TYPE_CHECKING:
    from runyard.workspace import Workspace


@dataclass
class WorkspaceRef:
    """The ``--workspace`` option; opens the workspace on first use and closes it at exit."""

    path: str | None
    _ws: Workspace | None = field(default=None, repr=False)

    def open(self) -> Workspace:
        if self._ws is None:
            from runyard.workspace import Workspace  # noqa: PLC0415

            self._ws = Workspace.from_config(self.path)
            click.get_current_context().find_root().call_on_close(self._ws.close)
        return self._ws


def current_workspace() -> Workspace:
    """The workspace of the running command (``--workspace`` or found from the cwd)."""
    return click.get_current_context().ensure_object(WorkspaceRef).open()


def default_workspace_name(folder: Path) -> str:
    """``folder``'s name made a valid workspace name (2-33 of letters, digits, '-', '_')."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", folder.name)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:33].rstrip("-")
    if len(name) < 2:
        name = f"{name}-workspace" if name else "workspace"
    return name


_IGNORE_LINES = {".runyard", ".runyard/", "/.runyard", "/.runyard/"}


def ignore_in_git(root: Path) -> str | None:
    """Inside a git repository, make sure ``root/.gitignore`` ignores ``.runyard/`` (created
    or appended once). Returns what was done, None outside git or when already ignored."""
    if not any((p / ".git").exists() for p in (root, *root.parents)):
        return None
    gi = root / ".gitignore"
    text = gi.read_text(errors="replace") if gi.is_file() else ""
    if any(line.strip() in _IGNORE_LINES for line in text.splitlines()):
        return None
    sep = "" if not text or text.endswith("\n") else "\n"
    with open(gi, "a") as fh:
        fh.write(f"{sep}# runyard workspace (database, snapshots, runs)\n.runyard/\n")
    return f"{'added .runyard/ to' if text else 'created'} {gi} (ignores .runyard/)"


@click.command("init")
@click.option("--name", help="Workspace name (default: the folder name, made valid).")
@click.option("--path", "path", type=click.Path(file_okay=False),
              help="Folder of the workspace (default: --workspace, else the current folder).")
@click.option("--exist-ok", is_flag=True, help="Open the workspace if it already exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the workspace details as JSON.")
@click.pass_obj
def init(ref: WorkspaceRef, name: str | None, path: str | None, exist_ok: bool,
         as_json: bool) -> None:
    """Create a workspace (a .runyard/ folder holding the database, snapshots and runs).

    Inside a git repository, .runyard/ is added to the folder's .gitignore (once).
    """
    from runyard import settings  # noqa: PLC0415
    from runyard.workspace import Workspace  # noqa: PLC0415

    root = Path(path or (ref.path if ref is not None else None) or ".").resolve()
    existed = (root / settings.CONFIG_DIR_NAME / settings.CONFIG_FILE_NAME).is_file()
    ws = Workspace.create(name or default_workspace_name(root), root, exist_ok=exist_ok)
    try:
        details = ws.get_details()
    finally:
        ws.close()
    ignored = ignore_in_git(root)
    if as_json:
        output.print_json(details)
        if ignored:
            click.echo(ignored, err=True)
        return
    verb = "Opened existing" if existed else "Created"
    click.echo(f"{verb} workspace {details['name']!r} in {details['path']}")
    click.echo(f"database: {details['database']}")
    if ignored:
        click.echo(ignored)
