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
