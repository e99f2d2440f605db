"""``runyard compute``: the compute targets of the workspace."""

from __future__ import annotations

from typing import Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace


@click.group("compute")
def compute() -> None:
    """Compute targets (where runs execute)."""


@compute.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_compute(as_json: bool) -> None:
    """List compute targets with their kind and provisioning state."""
    from runyard.errors import RunyardError  # noqa: PLC0415

    rows: list[dict[str, Any]] = []
    for name, target in current_workspace().compute_targets.items():
        try:
            st = target.status()
            state, errors = st.provisioning_state, list(st.errors)
        except RunyardError as exc:  # one unreachable target must not hide the others
            state, errors = "Unknown", [str(exc)]
        rows.append({"name": name, "kind": target.kind, "provisioningState": state,
                     "errors": errors})
    if as_json:
        output.print_json(rows)
    else:
        output.table(["NAME", "KIND", "STATE", "ERRORS"],
                     [[r["name"], r["kind"], r["provisioningState"],
                       "; ".join(r["errors"]) or None] for r in rows],
                     empty="no compute targets")
