"""The public surface of ``import runyard``: exactly these names, all resolvable."""

from __future__ import annotations

import importlib
import inspect

import pytest

import runyard

EXPECTED_ALL = [
    "AlreadyExists",
    "Environment",
    "Experiment",
    "InvalidParameter",
    "NotFound",
    "NotSupported",
    "Run",
    "RunConfiguration",
    "RunFailed",
    "RunStatus",
    "RunyardError",
    "ScriptRunConfig",
    "TargetUnavailable",
    "Workspace",
    "__version__",
]

HOME = {
    "AlreadyExists": "runyard.errors",
    "Environment": "runyard.environment",
    "Experiment": "runyard.experiment",
    "InvalidParameter": "runyard.errors",
    "NotFound": "runyard.errors",
    "NotSupported": "runyard.errors",
    "Run": "runyard.run",
    "RunConfiguration": "runyard.runconfig",
    "RunFailed": "runyard.errors",
    "RunStatus": "runyard.entities",
    "RunyardError": "runyard.errors",
    "ScriptRunConfig": "runyard.runconfig",
    "TargetUnavailable": "runyard.errors",
    "Workspace": "runyard.workspace",
}


def test_all_is_pinned() -> None:
    assert runyard.__all__ == EXPECTED_ALL
    assert len(set(runyard.__all__)) == len(runyard.__all__)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_name_resolves(name: str) -> None:
    value = getattr(runyard, name)
    assert value is not None
    if name == "__version__":
        assert isinstance(value, str) and value.count(".") >= 2
        return
    assert inspect.isclass(value)
    assert value is getattr(importlib.import_module(HOME[name]), name)
    assert value.__name__ == name
    # `from runyard import X` gives the same object
    ns: dict[str, object] = {}
    exec(f"from runyard import {name}", ns)
    assert ns[name] is value


def test_star_import_gives_exactly_all() -> None:
    ns: dict[str, object] = {}
    exec("from runyard import *", ns)
    assert sorted(k for k in ns if k != "__builtins__") == sorted(EXPECTED_ALL)


def test_errors_share_one_root() -> None:
    for name in ("AlreadyExists", "InvalidParameter", "NotFound", "NotSupported", "RunFailed",
                 "TargetUnavailable"):
        assert issubclass(getattr(runyard, name), runyard.RunyardError)
    assert issubclass(runyard.RunyardError, Exception)


def test_dir_lists_the_public_names() -> None:
    listed = dir(runyard)
    for name in EXPECTED_ALL:
        assert name in listed
    assert listed == sorted(listed)


@pytest.mark.parametrize("name", ["Workspacee", "Dataset", "ScriptRun", "get_context",
                                  "_LAZY_MISSING"])
def test_unknown_attribute_raises_attribute_error(name: str) -> None:
    with pytest.raises(AttributeError, match=name):
        getattr(runyard, name)
    assert not hasattr(runyard, name)


def test_unknown_name_import_fails() -> None:
    with pytest.raises(ImportError):
        exec("from runyard import NoSuchThing", {})
