"""``runyard compute``: create, attach, list, show, update and remove compute targets."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from runyard.cli import output
from runyard.cli.workspace import current_workspace

if TYPE_CHECKING:
    from collections.abc import Callable

    from runyard.compute.config import ComputeConfiguration
    from runyard.computetarget import ComputeTarget


@click.group("compute")
def compute() -> None:
    """Compute targets (where runs execute)."""


#: How to give each secret setting instead of on the command line.
_SECRET_INPUT = {
    "password": "use --password-stdin (one line from standard input; a hidden prompt when "
                "standard input is a terminal)",
    "private_key_passphrase": "use --passphrase-stdin (one line from standard input; a hidden "
                              "prompt when standard input is a terminal)",
    "private_key": "use --private-key-file PATH",
}
_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "private_key")


def _refuse_secret(key: str, secret_fields: tuple[str, ...] = ()) -> None:
    """Refuse a secret given as a command-line value (it would stay in the shell history and
    be visible to every user in the process list)."""
    from runyard.errors import InvalidParameter  # noqa: PLC0415

    name = key.replace("-", "_").lower()
    if name in secret_fields or (not name.endswith("_file")
                                 and any(w in name for w in _SECRET_WORDS)):
        how = _SECRET_INPUT.get(name, "secrets are set through the SDK or standard input")
        raise InvalidParameter("--param", f"{key!r} is a secret and is never accepted as a "
                               f"command-line value (shell history and the process list would "
                               f"keep it); {how}")


def _parse_params(params: tuple[str, ...],
                  secret_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    from runyard.errors import InvalidParameter  # noqa: PLC0415

    out: dict[str, Any] = {}
    for item in params:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidParameter("--param", f"{item!r} must look like KEY=VALUE")
        _refuse_secret(key, secret_fields)
        try:
            out[key.replace("-", "_")] = json.loads(raw)
        except ValueError:
            out[key.replace("-", "_")] = raw
    return out


_COMMON = [
    click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
                 help="Any setting of the kind's configuration (repeatable)."),
    click.option("--vm-size", help="cluster: node size (see `runyard compute vm-sizes`)."),
    click.option("--min-nodes", type=int, help="cluster: nodes kept when idle."),
    click.option("--max-nodes", type=int, help="cluster: most nodes to scale to."),
    click.option("--idle-seconds-before-scaledown", type=int,
                 help="cluster: idle time before scaling down."),
    click.option("--vm-priority", type=click.Choice(["dedicated", "lowpriority"])),
    click.option("--max-concurrent-runs", type=int, help="local: runs executing at once."),
    click.option("--description"),
]


def _with_common(fn: Any) -> Any:
    for opt in reversed(_COMMON):
        fn = opt(fn)
    return fn


def _settings(params: tuple[str, ...], secret_fields: tuple[str, ...] = (),
              **flags: Any) -> dict[str, Any]:
    settings = {k: v for k, v in flags.items() if v is not None}
    settings.update(_parse_params(params, secret_fields))
    return settings


def _read_secret(prompt: str) -> str:
    """One line from standard input, or a hidden prompt when it is a terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True))
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.rstrip("\r\n")


def _show(target: ComputeTarget, as_json: bool) -> None:
    data = target.serialize()
    if as_json:
        output.print_json(data)
        return
    rows = [["name", data["name"]], ["kind", data["kind"]],
            ["managed", "yes" if data["managed"] else "no (attached)"],
            ["state", data["provisioning_state"]]]
    if data["errors"]:
        rows.append(["errors", "; ".join(data["errors"])])
    for k, v in data["node_state_counts"].items():
        rows.append([f"nodes {k}", v])
    for k, v in sorted(data["configuration"].items()):
        if k != "schema_version" and v not in (None, {}, []):
            rows.append([k, v])
    output.table(["FIELD", "VALUE"], rows)


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


@compute.command("create")
@click.argument("name")
@click.option("--kind", required=True, help="Kind of target: local, cluster, ...")
@_with_common
@click.option("--wait", is_flag=True,
              help="Wait until it is up (a cluster: until min_nodes nodes are), showing its "
                   "node states as they change.")
@click.option("--timeout", type=click.FloatRange(min=0), default=1200, show_default=True,
              help="With --wait: seconds to wait at most.")
@click.option("--json", "as_json", is_flag=True)
def create(name: str, kind: str, params: tuple[str, ...], as_json: bool, wait: bool,
           timeout: float, **flags: Any) -> None:
    """Create a managed compute target NAME of KIND."""
    from runyard.compute.kinds import load_kind  # noqa: PLC0415
    from runyard.computetarget import ComputeTarget  # noqa: PLC0415
    from runyard.errors import ComputeTargetInvalid, NotFound  # noqa: PLC0415

    try:
        cls = load_kind(kind)
    except NotFound as exc:
        raise ComputeTargetInvalid("--kind", str(exc)) from None
    make: Callable[..., ComputeConfiguration] | None = (
        cls.config_class.build if cls.config_class is not None else None)
    if make is None or not cls.managed:
        raise ComputeTargetInvalid("--kind", f"{kind!r} targets are attached, not created; "
                                   "use `runyard compute attach`")
    target = ComputeTarget.create(current_workspace(), name,
                                  make(**_settings(params, cls.config_class.secret_fields
                                                   if cls.config_class else (), **flags)))
    if wait:
        _wait_up(target, timeout, sys.stderr if as_json else sys.stdout)
    _show(target, as_json)


def _wait_up(target: ComputeTarget, timeout: float, out: Any) -> None:
    """Print the target's state and node states as they change until it is Succeeded with
    ``min_nodes`` nodes up; a failed target or the timeout is an error."""
    import time  # noqa: PLC0415

    from runyard.computetarget import print_progress  # noqa: PLC0415
    from runyard.errors import ComputeTargetError  # noqa: PLC0415

    want = int(target.config.get("min_nodes") or 0)
    deadline = time.monotonic() + timeout
    last = ""
    with output.progress(f"waiting for {target.name} to be up"
                         + (f" with {want} nodes" if want else ""), stderr=out is sys.stderr):
        while True:
            st = target.status()
            last = print_progress(target.name, st, last, out)
            if st.provisioning_state in ("Failed", "Canceled", "Unknown"):
                raise ComputeTargetError(f"target {target.name!r} is {st.provisioning_state}"
                                         + (f": {'; '.join(st.errors)}" if st.errors else ""))
            up = st.node_state_counts.get("idle", 0) + st.node_state_counts.get("running", 0)
            if st.provisioning_state == "Succeeded" and up >= want:
                return
            if time.monotonic() > deadline:
                raise ComputeTargetError(f"target {target.name!r} is not up after {timeout} s "
                                         f"({last}); it keeps starting: see `runyard compute "
                                         f"show {target.name}`")
            time.sleep(0.5)


@compute.command("attach")
@click.argument("name")
@click.option("--kind", required=True, help="Kind of target: remote, ...")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE")
@click.option("--address")
@click.option("--ssh-port", type=int)
@click.option("--username")
@click.option("--private-key-file", type=click.Path(dir_okay=False))
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (a hidden prompt on a terminal); "
                   "never from the command line.")
@click.option("--passphrase-stdin", is_flag=True,
              help="Read the private key's passphrase from standard input (after the password "
                   "when both are read; a hidden prompt on a terminal).")
@click.option("--password", "password_value", hidden=True,
              help="Refused: passwords are never taken from the command line.")
@click.option("--trust-unknown-host-key", is_flag=True, default=None)
@click.option("--json", "as_json", is_flag=True)
def attach(name: str, kind: str, params: tuple[str, ...], password_stdin: bool,
           passphrase_stdin: bool, password_value: str | None, as_json: bool,
           **flags: Any) -> None:
    """Attach an existing machine or cluster as compute target NAME.

    Secrets are never command-line values: give the password with ``--password-stdin`` and a
    key's passphrase with ``--passphrase-stdin`` (piped, or typed at a hidden prompt); a
    secret given with ``--param``/``-p`` is refused.
    """
    from runyard.compute.kinds import load_kind  # noqa: PLC0415
    from runyard.computetarget import ComputeTarget  # noqa: PLC0415
    from runyard.errors import ComputeTargetInvalid, NotFound  # noqa: PLC0415

    try:
        cls = load_kind(kind)
    except NotFound as exc:
        raise ComputeTargetInvalid("--kind", str(exc)) from None
    make: Callable[..., ComputeConfiguration] | None = (
        cls.config_class.build if cls.config_class is not None else None)
    if make is None or cls.managed:
        raise ComputeTargetInvalid("--kind", f"{kind!r} targets are created, not attached; "
                                   "use `runyard compute create`")
    if password_value is not None:
        raise ComputeTargetInvalid("--password", f"passwords are never accepted as "
                                   f"command-line values; {_SECRET_INPUT['password']}")
    settings = _settings(params, cls.config_class.secret_fields if cls.config_class else (),
                         **flags)
    if password_stdin:
        settings["password"] = _read_secret("Password")
    if passphrase_stdin:
        settings["private_key_passphrase"] = _read_secret("Private key passphrase")
    target = ComputeTarget.attach(current_workspace(), name, make(**settings))
    _show(target, as_json)


@compute.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def show(name: str, as_json: bool) -> None:
    """Show a target's kind, state and configuration (never its secrets)."""
    _show(current_workspace().get_target(name), as_json)


@compute.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def status(name: str, as_json: bool) -> None:
    """Provisioning state, errors and node counts."""
    st = current_workspace().get_target(name).get_status()
    data = {"name": name, "provisioningState": st.provisioning_state, "errors": st.errors,
            "nodeStateCounts": st.node_state_counts}
    if as_json:
        output.print_json(data)
    else:
        click.echo(f"{name}: {st.provisioning_state}")
        for k, v in st.node_state_counts.items():
            click.echo(f"  {k}: {v}")
        for e in st.errors:
            click.echo(f"  error: {e}")


@compute.command("update")
@click.argument("name")
@_with_common
@click.option("--json", "as_json", is_flag=True)
def update(name: str, params: tuple[str, ...], as_json: bool, **flags: Any) -> None:
    """Change updatable settings of a target."""
    target = current_workspace().get_target(name)
    target.update(**_settings(params, **flags))
    _show(target, as_json)


@compute.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Cancel the target's unfinished runs first.")
def delete(name: str, force: bool) -> None:
    """Delete a managed target (refused while it has unfinished runs, unless --force)."""
    current_workspace().get_target(name).delete(force=force)
    click.echo(f"deleted {name}")


@compute.command("detach")
@click.argument("name")
@click.option("--force", is_flag=True, help="Cancel the target's unfinished runs first.")
def detach(name: str, force: bool) -> None:
    """Detach an attached target (refused while it has unfinished runs, unless --force)."""
    current_workspace().get_target(name).detach(force=force)
    click.echo(f"detached {name}")


@compute.command("vm-sizes")
@click.option("--json", "as_json", is_flag=True)
def vm_sizes(as_json: bool) -> None:
    """The VM sizes a cluster accepts."""
    from runyard.compute.vmsizes import supported_vmsizes  # noqa: PLC0415

    rows = supported_vmsizes()
    if as_json:
        output.print_json(rows)
    else:
        output.table(["NAME", "VCPUS", "MEMORY GB", "GPUS", "FAMILY"],
                     [[r["name"], r["vcpus"], r["memory_gb"], r["gpus"], r["family"]]
                      for r in rows])
