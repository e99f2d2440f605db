"""Name rules (workspaces, experiments, run configurations) and the error hierarchy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from runyard import errors
from runyard.errors import InvalidParameter, RunyardError, SnapshotTooLarge
from runyard.naming import check_experiment_name, check_runconfig_name, check_workspace_name

# -- names -------------------------------------------------------------------------------------
VALID_WORKSPACE = ["ab", "my-workspace", "ws_1", "A1", "9lives", "a" * 33, "x-_-y"]
INVALID_WORKSPACE = ["", "a", "a" * 34, "-ws", "_ws", "my ws", " ws", "ws ", "éws",
                     "ws.prod", "ws/1", "ws\\1", "../ws", "ws!", "ws\tx"]
VALID_EXPERIMENT = ["ab", "train-sklearn", "exp_2024", "X9", "a" * 255, "0-0"]
INVALID_EXPERIMENT = ["", "e", "a" * 256, "-exp", "_exp", "my exp", "exp name", "éxp",
                      "✓exp", "exp.v1", "exp/1", "../exp", "exp:1", "exp\x00"]


@pytest.mark.parametrize("name", VALID_WORKSPACE)
def test_valid_workspace_names(name: str) -> None:
    assert check_workspace_name(name) == name


@pytest.mark.parametrize("name", [*INVALID_WORKSPACE, None, 42, b"ws-bytes"])
def test_invalid_workspace_names(name: Any) -> None:
    with pytest.raises(InvalidParameter) as ei:
        check_workspace_name(name)
    assert ei.value.field == "name"
    assert str(ei.value).startswith("name: ")
    assert repr(name) in str(ei.value)


@pytest.mark.parametrize("name", VALID_EXPERIMENT)
def test_valid_experiment_names(name: str) -> None:
    assert check_experiment_name(name) == name


@pytest.mark.parametrize("name", [*INVALID_EXPERIMENT, None, 3.5, ["exp"]])
def test_invalid_experiment_names(name: Any) -> None:
    with pytest.raises(InvalidParameter) as ei:
        check_experiment_name(name)
    assert ei.value.field == "experiment_name"
    assert str(ei.value).startswith("experiment_name: ")


@pytest.mark.parametrize("name", ["local", "my.config", "a", "cluster-v2_final", "x" * 128])
def test_valid_runconfig_names(name: str) -> None:
    assert check_runconfig_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "-x", "x" * 129, "a b", "é"])
def test_invalid_runconfig_names(name: str) -> None:
    with pytest.raises(InvalidParameter, match="^name: "):
        check_runconfig_name(name)


@pytest.mark.parametrize("check", [check_workspace_name, check_experiment_name,
                                   check_runconfig_name],
                         ids=["workspace", "experiment", "runconfig"])
def test_trailing_newline_is_refused(check: Callable[[object], str]) -> None:
    with pytest.raises(InvalidParameter):
        check("ab\n")


@pytest.mark.parametrize(("check", "name"), [
    (check_workspace_name, "wörkspace"), (check_experiment_name, "exp-é"),
    (check_experiment_name, "ab\u0663"), (check_runconfig_name, "cfg-ß"),
], ids=["workspace", "experiment-letter", "experiment-digit", "runconfig"])
def test_non_ascii_after_first_character_is_refused(check: Callable[[object], str],
                                                    name: str) -> None:
    with pytest.raises(InvalidParameter):
        check(name)


# -- errors ------------------------------------------------------------------------------------
def _all_error_classes() -> list[type[RunyardError]]:
    found = [v for v in vars(errors).values()
             if isinstance(v, type) and issubclass(v, RunyardError)]
    return sorted(found, key=lambda c: c.__name__)


ALL_ERRORS = _all_error_classes()
PLAIN_ERRORS = [c for c in ALL_ERRORS if not issubclass(c, InvalidParameter)]


def test_every_error_class_has_a_unique_code() -> None:
    names = {c.__name__ for c in ALL_ERRORS}
    assert {"RunyardError", "InvalidParameter", "NotFound", "AlreadyExists", "NotSupported",
            "TargetUnavailable", "InvalidTransition", "SnapshotTooLarge", "WorkspaceError",
            "RunFailed"} <= names
    codes = [c.error_code for c in ALL_ERRORS]
    assert len(set(codes)) == len(codes)
    assert all(c.error_code == c.__name__ for c in ALL_ERRORS)


@pytest.mark.parametrize("cls", PLAIN_ERRORS, ids=lambda c: c.__name__)
def test_error_round_trips_through_dict(cls: type[RunyardError]) -> None:
    err = cls("something went wrong: 'x'", details={"run_id": "r1", "n": 3, "nested": {"a": [1]}})
    data = json.loads(json.dumps(err.to_dict()))  # as it would cross a REST boundary
    assert data == {"error_code": cls.error_code, "message": "something went wrong: 'x'",
                    "details": {"run_id": "r1", "n": 3, "nested": {"a": [1]}}}
    back = RunyardError.from_dict(data)
    assert type(back) is cls
    assert back.message == err.message and str(back) == str(err)
    assert back.details == err.details
    assert back.to_dict() == err.to_dict()


@pytest.mark.parametrize("cls", [InvalidParameter, SnapshotTooLarge], ids=lambda c: c.__name__)
def test_invalid_parameter_round_trips_through_dict(cls: type[InvalidParameter]) -> None:
    err = cls("source_directory", "is 3 GB; the limit is 300 MB", details={"bytes": 3})
    data = json.loads(json.dumps(err.to_dict()))
    back = RunyardError.from_dict(data)
    assert type(back) is cls
    assert isinstance(back, InvalidParameter) and back.field == "source_directory"
    assert back.message == err.message == "source_directory: is 3 GB; the limit is 300 MB"
    assert back.details == {"field": "source_directory", "bytes": 3}
    assert back.to_dict() == err.to_dict()


def test_unknown_error_code_becomes_the_root() -> None:
    back = RunyardError.from_dict({"error_code": "SomethingNew", "message": "m",
                                   "details": {"k": 1}})
    assert type(back) is RunyardError and back.message == "m" and back.details == {"k": 1}
    empty = RunyardError.from_dict({})
    assert type(empty) is RunyardError and empty.message == "" and empty.details == {}


def test_details_are_copied() -> None:
    details = {"a": 1}
    err = errors.NotFound("gone", details=details)
    details["a"] = 2
    assert err.details == {"a": 1}
    assert RunyardError("x").details == {}


@pytest.mark.parametrize("field", ["name", "experiment_name", "properties['seed']",
                                   "runconfig.foo"])
def test_invalid_parameter_message_starts_with_field(field: str) -> None:
    err = InvalidParameter(field, "must be something else", details={"got": 1})
    assert str(err) == f"{field}: must be something else"
    assert err.message == str(err) and err.field == field
    assert err.details == {"field": field, "got": 1}
    assert err.to_dict()["message"].startswith(f"{field}: ")
    assert isinstance(err, RunyardError) and err.error_code == "InvalidParameter"
    big = SnapshotTooLarge("source_directory", "too big")
    assert str(big).startswith("source_directory: ") and isinstance(big, InvalidParameter)
    assert big.error_code == "SnapshotTooLarge"
