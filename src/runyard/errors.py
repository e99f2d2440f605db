"""The one error root of runyard and its subclasses.

Every error runyard raises on purpose derives from :class:`RunyardError`. Each carries an
``error_code`` (stable, machine readable) so that errors can cross a REST boundary as
``{error_code, message, details}`` and be raised again as the same class.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RunyardError(Exception):
    """Root of every error raised by runyard."""

    error_code: ClassVar[str] = "RunyardError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """Serialize as ``{error_code, message, details}``."""
        return {"error_code": self.error_code, "message": self.message, "details": self.details}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RunyardError:
        """Rebuild the error class named by ``data['error_code']``."""
        cls = _BY_CODE.get(str(data.get("error_code")), RunyardError)
        message = str(data.get("message", ""))
        details = dict(data.get("details") or {})
        if issubclass(cls, InvalidParameter):
            field = str(details.get("field", ""))
            prefix = f"{field}: "
            text = message[len(prefix):] if message.startswith(prefix) else message
            return cls(field, text, details=details)
        return cls(message, details=details)


class InvalidParameter(RunyardError):
    """A user-supplied value is wrong; the message names the field and the fix."""

    error_code = "InvalidParameter"

    def __init__(self, field: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        d = {"field": field, **(details or {})}
        super().__init__(f"{field}: {message}", details=d)
        self.field = field


class NotFound(RunyardError):
    """A named object (workspace, experiment, run, file, target) does not exist."""

    error_code = "NotFound"


class AlreadyExists(RunyardError):
    """An object with that name already exists."""

    error_code = "AlreadyExists"


class NotSupported(RunyardError):
    """The request is valid but this kind, target or build cannot do it (the reason says why)."""

    error_code = "NotSupported"


class TargetUnavailable(RunyardError):
    """A compute target cannot be reached or used right now."""

    error_code = "TargetUnavailable"


class InvalidTransition(RunyardError):
    """A run-state change was refused (terminal states never change)."""

    error_code = "InvalidTransition"


class SnapshotTooLarge(InvalidParameter):
    """The source directory exceeds the snapshot limits."""

    error_code = "SnapshotTooLarge"


class WorkspaceError(RunyardError):
    """The workspace folder or its database cannot be used."""

    error_code = "WorkspaceError"


class RunFailed(RunyardError):
    """A run ended Failed or NotResponding (raised by ``wait_for_completion``)."""

    error_code = "RunFailed"


class ComputeTargetError(RunyardError):
    """Any error about a compute target (``ComputeTargetException`` in the compat layer)."""

    error_code = "ComputeTargetError"


class ComputeTargetNotFound(ComputeTargetError, NotFound):
    """No compute target of that name in the workspace."""

    error_code = "ComputeTargetNotFound"


class ComputeTargetInvalid(ComputeTargetError, InvalidParameter):
    """A compute-target name or configuration value is wrong (names the field and the fix)."""

    error_code = "ComputeTargetInvalid"


class ComputeTargetExists(ComputeTargetError, AlreadyExists):
    """A compute target of that name already exists."""

    error_code = "ComputeTargetExists"


class ComputeTargetNotSupported(ComputeTargetError, NotSupported):
    """The kind or the operation is not available (the message says what is missing)."""

    error_code = "ComputeTargetNotSupported"


class ComputeTargetBusy(ComputeTargetError):
    """The target still has live runs; deleting it needs ``force``."""

    error_code = "ComputeTargetBusy"


_BY_CODE: dict[str, type[RunyardError]] = {
    c.error_code: c
    for c in (
        RunyardError,
        InvalidParameter,
        NotFound,
        AlreadyExists,
        NotSupported,
        TargetUnavailable,
        InvalidTransition,
        SnapshotTooLarge,
        WorkspaceError,
        RunFailed,
        ComputeTargetError,
        ComputeTargetNotFound,
        ComputeTargetInvalid,
        ComputeTargetExists,
        ComputeTargetNotSupported,
        ComputeTargetBusy,
    )
}
