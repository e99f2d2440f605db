"""The error table (code <-> class <-> HTTP status) is generated from the classes themselves."""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard import errors
from runyard.errors import (
    InvalidParameter,
    NotFound,
    RunyardError,
    error_class,
    error_table,
    http_status_of,
)

PACKAGE_DIR = Path(errors.__file__).resolve().parent
#: Error classes that live outside errors.py today (the scan below must find their modules).
KNOWN_ELSEWHERE = {"SecretError", "HostKeyChanged", "RayApiError"}


def _error_modules() -> list[str]:
    """Modules of src/runyard (runtime excluded) that define a subclass of a runyard error.

    Found by reading the source (ast), not by importing everything: a class whose base is named
    like a known error class marks its module; repeated until no new class names turn up.
    """
    defs: dict[str, list[tuple[str, set[str]]]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR)
        if rel.parts[0] == "runtime" or path.name == "__main__.py":
            continue
        module = ".".join(("runyard", *rel.with_suffix("").parts))
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                         if isinstance(b, ast.Name | ast.Attribute)}
                defs.setdefault(module, []).append((node.name, bases))
    names = {c.__name__ for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, RunyardError)}
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for module, classes in defs.items():
            for name, bases in classes:
                if bases & names and name not in names:
                    names.add(name)
                    found.add(module)
                    grew = True
    return sorted(found - {"runyard.errors"})


def _import_error_modules() -> list[str]:
    """Import the modules defining error classes; skip those whose optional extra is missing."""
    imported = []
    for module in _error_modules():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # e.g. paramiko (the ssh extra) not installed
            if (exc.name or "").split(".")[0] == "runyard":
                raise
            continue
        imported.append(module)
    return imported


IMPORTED = _import_error_modules()


def _subclasses(cls: type[RunyardError]) -> Iterator[type[RunyardError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _runyard_error_classes() -> list[type[RunyardError]]:
    """RunyardError and every subclass defined in runyard (not in tests), each once."""
    gc.collect()  # throw-away classes of other tests linger in __subclasses__ until collected
    found: set[type[RunyardError]] = {RunyardError}
    found.update(c for c in _subclasses(RunyardError) if c.__module__.split(".")[0] == "runyard")
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


ALL_CLASSES = _runyard_error_classes()


def _make(cls: type[RunyardError]) -> RunyardError:
    details: dict[str, Any] = {"run_id": "r1", "n": 3, "nested": {"a": [1, "x"]}}
    if issubclass(cls, InvalidParameter):
        return cls("source_directory", "is 3 GB: the limit is 300 MB", details=details)
    return cls("something went wrong: 'x'", details=details)


@pytest.fixture
def throwaway() -> Iterator[list[type[RunyardError]]]:
    """Error classes a test defines: append them; they leave the table afterwards."""
    before = dict(errors._REGISTRY)
    made: list[type[RunyardError]] = []
    yield made
    for cls in made:
        errors._unregister(cls)
    made.clear()
    gc.collect()
    assert before == errors._REGISTRY, "a throw-away error class leaked into the table"


# -- the table holds every class ----------------------------------------------------------------
def test_modules_defining_errors_elsewhere_are_found() -> None:
    names = {c.__name__ for c in ALL_CLASSES}
    expected = set(KNOWN_ELSEWHERE)
    if importlib.util.find_spec("paramiko") is None:  # the ssh extra is not installed here
        expected.discard("HostKeyChanged")
    assert expected <= names, IMPORTED
    assert "runyard.secrets" in IMPORTED


def test_every_subclass_is_in_the_table() -> None:
    table = {cls: (code, status) for code, cls, status in error_table()}
    missing = [f"{c.__module__}.{c.__qualname__}" for c in ALL_CLASSES if c not in table]
    assert missing == []
    for cls in ALL_CLASSES:
        assert table[cls] == (cls.error_code, cls.http_status)
        assert error_class(cls.error_code) is cls


def test_codes_are_unique_and_sorted() -> None:
    rows = error_table()
    codes = [code for code, _, _ in rows]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    classes = [cls for _, cls, _ in rows]
    assert len(set(classes)) == len(classes)
    assert all(cls.error_code == code for code, cls, _ in rows)
    assert all("error_code" in vars(cls) for cls in classes), "each class must own its code"


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_class_round_trips_through_dict(cls: type[RunyardError]) -> None:
    err = _make(cls)
    data = json.loads(json.dumps(err.to_dict()))  # as it would cross a REST boundary
    assert data["error_code"] == cls.error_code
    back = RunyardError.from_dict(data)
    assert type(back) is cls
    assert back.message == err.message and str(back) == str(err)
    assert back.details == err.details
    assert back.to_dict() == err.to_dict()
    if isinstance(err, InvalidParameter):
        assert isinstance(back, InvalidParameter) and back.field == err.field


def test_unknown_code_is_the_root() -> None:
    assert error_class("NoSuchCode") is RunyardError
    assert error_class("") is RunyardError
    assert type(RunyardError.from_dict({"error_code": "NoSuchCode", "message": "m"})) \
        is RunyardError


# -- HTTP statuses ----------------------------------------------------------------------------
EXPECTED_STATUS = {
    "RunyardError": 500, "InvalidParameter": 400, "SnapshotTooLarge": 413, "NotFound": 404,
    "AlreadyExists": 409, "NotSupported": 422, "TargetUnavailable": 503,
    "InvalidTransition": 409, "WorkspaceError": 500, "RunFailed": 409,
    "ComputeTargetError": 500, "ComputeTargetNotFound": 404, "ComputeTargetInvalid": 400,
    "ComputeTargetExists": 409, "ComputeTargetNotSupported": 422, "ComputeTargetBusy": 409,
}


def test_statuses_are_http_error_statuses() -> None:
    for code, cls, status in error_table():
        assert type(status) is int and 400 <= status <= 599, (code, status)
        assert http_status_of(cls) == status == http_status_of(_make(cls))


def test_statuses_of_the_core_classes() -> None:
    got = {code: status for code, _, status in error_table() if code in EXPECTED_STATUS}
    assert got == EXPECTED_STATUS


def test_status_of_anything_else_is_500() -> None:
    assert http_status_of(ValueError("x")) == 500
    assert http_status_of(KeyError) == 500
    assert http_status_of(errors.SnapshotTooLarge("f", "m")) == 413


# -- automatic registration ---------------------------------------------------------------------
def test_a_new_subclass_is_in_the_table(throwaway: list[type[RunyardError]]) -> None:
    class SweepDiverged(RunyardError):
        """A sweep error defined "in another module", with no code of its own."""

    throwaway.append(SweepDiverged)

    class SweepTrialMissing(NotFound):
        pass

    throwaway.append(SweepTrialMissing)

    class SweepBadSpace(InvalidParameter):
        error_code = "SweepSpaceInvalid"

    throwaway.append(SweepBadSpace)

    rows = {code: (cls, status) for code, cls, status in error_table()}
    assert rows["SweepDiverged"] == (SweepDiverged, 500)
    assert rows["SweepTrialMissing"] == (SweepTrialMissing, 404)  # the status is inherited...
    assert SweepTrialMissing.error_code == "SweepTrialMissing"  # ...the code is not
    assert rows["SweepSpaceInvalid"] == (SweepBadSpace, 400)
    assert error_class("NotFound") is NotFound
    for cls in throwaway:
        back = RunyardError.from_dict(json.loads(json.dumps(_make(cls).to_dict())))
        assert type(back) is cls


def test_cleanup_removes_a_throwaway_class(throwaway: list[type[RunyardError]]) -> None:
    class Ephemeral(RunyardError):
        pass

    assert error_class("Ephemeral") is Ephemeral
    errors._unregister(Ephemeral)
    assert error_class("Ephemeral") is RunyardError
    errors._unregister(Ephemeral)  # a second time is harmless


def test_restating_the_parent_code_gets_the_class_name(
        throwaway: list[type[RunyardError]]) -> None:
    class KeyMismatch(errors.ComputeTargetError):
        error_code = "ComputeTargetError"

    throwaway.append(KeyMismatch)
    assert KeyMismatch.error_code == "KeyMismatch"
    assert error_class("KeyMismatch") is KeyMismatch
    assert error_class("ComputeTargetError") is errors.ComputeTargetError


def test_a_duplicate_code_is_a_type_error(throwaway: list[type[RunyardError]]) -> None:
    with pytest.raises(TypeError, match="'NotFound'.*already taken by runyard.errors.NotFound"):
        class Shadow(RunyardError):
            error_code = "NotFound"

    class First(RunyardError):
        error_code = "SweepPruned"

    throwaway.append(First)
    with pytest.raises(TypeError, match="already taken"):
        class Second(InvalidParameter):
            error_code = "SweepPruned"

    with pytest.raises(TypeError, match="already taken"):
        class SnapshotTooLarge(RunyardError):  # same name as errors.SnapshotTooLarge, no code
            pass

    assert error_class("SweepPruned") is First
    assert error_class("NotFound") is NotFound
    assert error_class("SnapshotTooLarge") is errors.SnapshotTooLarge


@pytest.mark.parametrize("bad", [200, 600, "404", 404.0, True, None])
def test_a_bad_status_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="http_status"):
        class Odd(RunyardError):
            error_code = "OddStatus"
            http_status = bad
    assert error_class("OddStatus") is RunyardError


# -- the module stays light (it ships in the runtime bundle, Python >= 3.8) ----------------------
def test_errors_module_imports_only_typing() -> None:
    tree = ast.parse(Path(errors.__file__).read_text(encoding="utf-8"), feature_version=(3, 8))
    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names}
    assert imported <= {"__future__", "typing"}
