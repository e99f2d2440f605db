"""Old import paths of the user-facing compute classes keep working, with a DeprecationWarning."""

from __future__ import annotations

import importlib

import pytest

import runyard.computetarget as sdk

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("module", "name"), [
    ("runyard.compute.base", "ComputeTarget"),
    ("runyard.compute.cluster", "ClusterCompute"),
    ("runyard.compute.local", "LocalTarget"),
    ("runyard.compute.remote", "RemoteCompute"),
])
def test_old_path_warns_and_gives_the_sdk_class(module: str, name: str) -> None:
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{name} moved: import it from "
                      "runyard.computetarget"):
        cls = getattr(mod, name)
    assert cls is getattr(sdk, name)


def test_unknown_names_still_raise_attribute_error() -> None:
    mod = importlib.import_module("runyard.compute.cluster")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = mod.Nope
