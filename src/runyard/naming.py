"""Name rules for workspaces, experiments and run configurations (from the Azure ML v1 spec)."""

from __future__ import annotations

import re

from runyard.errors import InvalidParameter

_WORKSPACE = re.compile(r"^[A-Za-z0-9][\w-]{1,32}$", re.ASCII)
_EXPERIMENT = re.compile(r"^[A-Za-z0-9][\w-]{1,254}$", re.ASCII)
_RUNCONFIG = re.compile(r"^[A-Za-z0-9][\w.-]{0,127}$", re.ASCII)


def check_workspace_name(name: object) -> str:
    """Workspace names: 2-33 characters, letters, digits, '-' and '_', first alphanumeric."""
    if not isinstance(name, str) or not _WORKSPACE.fullmatch(name):
        raise InvalidParameter(
            "name", f"invalid workspace name {name!r}: use 2 to 33 letters, digits, '-' or '_', "
            "starting with a letter or digit (for example 'my-workspace')")
    return name


def check_experiment_name(name: object) -> str:
    """Experiment names: 2-255 characters, letters, digits, '-' and '_', first alphanumeric."""
    if not isinstance(name, str) or not _EXPERIMENT.fullmatch(name):
        raise InvalidParameter(
            "experiment_name", f"invalid experiment name {name!r}: use 2 to 255 letters, digits, "
            "'-' or '_', starting with a letter or digit (for example 'train-sklearn')")
    return name


def check_runconfig_name(name: object) -> str:
    """Run-configuration names: a letter or digit, then letters, digits, '.', '-', '_'."""
    if not isinstance(name, str) or not _RUNCONFIG.fullmatch(name):
        raise InvalidParameter(
            "name", f"invalid run configuration name {name!r}: use letters, digits, '.', '-' "
            "or '_', starting with a letter or digit, no path separators (for example 'local')")
    return name


#: Longest tag, property and metric name; longest tag or property value (the spool ingest
#: applies the same caps to what scripts write, cutting with a marker instead of refusing).
MAX_KEY_CHARS = 255
MAX_VALUE_CHARS = 4096


def check_key(field: str, key: object) -> str:
    """A tag, property or metric name: a non-empty string of at most 255 characters without
    control characters (NUL included)."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS \
            or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidParameter(field, f"name {repr(key)[:80]} must be a non-empty string of at "
                               f"most {MAX_KEY_CHARS} characters without control characters")
    return key


def check_values(field: str, values: dict[str, object], *, allow_none: bool) -> None:
    """Names and string values of tags or properties (NUL refused, values capped)."""
    for key, value in values.items():
        check_key(field, key)
        if value is None and allow_none:
            continue
        if not isinstance(value, str):
            raise InvalidParameter(f"{field}[{key!r}]", f"{type(value).__name__} is not a "
                                   "string value")
        if "\x00" in value:
            raise InvalidParameter(f"{field}[{key!r}]", "contains a NUL character")
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidParameter(f"{field}[{key!r}]", f"is {len(value)} characters long; "
                                   f"the limit is {MAX_VALUE_CHARS} (store bigger values as "
                                   "a file with upload_file)")


#: v1's later rule for run input and output names (also an environment-variable-safe name).
BINDING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def check_binding_name(name: object, field: str = "name") -> str:
    """``name`` when it can name a run input or output, else ``InvalidParameter``."""
    if not isinstance(name, str) or not BINDING_NAME.fullmatch(name):
        raise InvalidParameter(field, f"{name!r} cannot name a run input or output: use "
                               "letters, digits and '_', starting with a letter or '_' "
                               "(e.g. 'train_data'), at most 128 characters")
    return name
