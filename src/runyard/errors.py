"""The one error root of runyard and its subclasses, and the table generated from them.

Every error runyard raises on purpose derives from :class:`RunyardError`. Each class carries an
``error_code`` (stable, machine readable, unique) and an ``http_status`` so that errors can cross
a REST boundary as ``{error_code, message, details}`` with a fitting status and be raised again
as the same class.

The table ``error code <-> class <-> HTTP status`` is not kept by hand: defining a subclass
anywhere (in this module or in any other one, once that module is imported) registers it by its
``error_code``. A class that does not set its own ``error_code`` gets its class name; two classes
claiming the same code raise :class:`TypeError` when the second one is created.

Azure ML v1's exception classes (``AzureMLException``, ``UserErrorException``,
``ComputeTargetException``, ``ActivityFailedException``, ...; exported as
``runyard.compat.azureml.exceptions``) are defined here too, and runyard's errors subclass the
matching one, so that a ported script's v1 ``except`` clauses catch them: ``InvalidParameter``,
``NotFound``, ``AlreadyExists``, ``NotSupported``, ``InvalidTransition`` -> ``UserErrorException``;
``RunFailed`` -> ``ActivityFailedException``; ``ComputeTargetError``, ``TargetUnavailable`` ->
``ComputeTargetException``; ``SnapshotTooLarge`` -> ``SnapshotException``; ``WorkspaceError`` ->
``WorkspaceException``; ``RunyardError`` -> ``AzureMLException``. They are not runyard errors
(no code in the table); ``RunyardError`` stays the one root of runyard's own errors.

This module is part of the runtime bundle (Python >= 3.8, standard library only): keep it free of
imports beyond :mod:`typing` and of newer-than-3.8 syntax outside annotations.

HTTP statuses (RFC 9110), and why:

=========================  ======  ==============================================================
class                      status  why
=========================  ======  ==============================================================
RunyardError               500     unknown / unclassified failure: the server's fault
InvalidParameter           400     a value in the request is wrong; resending it fails again
SnapshotTooLarge           413     Content Too Large: the uploaded snapshot exceeds the limits
NotFound                   404     the named object does not exist
AlreadyExists              409     conflicts with an existing object of that name
NotSupported               422     see :class:`NotSupported`
TargetUnavailable          503     the target is down or unreachable *right now*; retry later
InvalidTransition          409     conflicts with the run's current state
DatasetChanged             409     a registered dataset's files changed since registration
WorkspaceError             500     the server's workspace folder or database cannot be used
DatabaseMissing            500     the workspace database is gone or was replaced under the server
DatabaseBusy               503     another process holds the database past the busy timeout; retry
DiskFull                   507     Insufficient Storage: the disk of the workspace is full
RunFailed                  409     see :class:`RunFailed`
ComputeTargetError         500     a compute-target operation failed on the server side
ComputeTargetBusy          409     conflicts with the target's live runs (``force`` resolves it)
=========================  ======  ==============================================================

Subclasses inherit the status of their parent unless they set their own (``ComputeTargetNotFound``
is a 404 through ``NotFound``, ``ComputeTargetInvalid`` a 400, and so on).
"""

from __future__ import annotations

from typing import Any, ClassVar

#: error code -> class; filled by :meth:`RunyardError.__init_subclass__` (read it through
#: :func:`error_table` / :func:`error_class`).
_REGISTRY: dict[str, type[RunyardError]] = {}


# -- Azure ML v1's exception classes (``azureml.exceptions``) --------------------------------------
# Defined here, at the root, so that runyard's errors can subclass them: a ported v1 script's
# ``except UserErrorException`` / ``except ComputeTargetException`` clauses catch runyard's errors.
# They are not runyard errors themselves (no error code, never raised by runyard directly).


class AzureMLException(Exception):
    """Root of Azure ML v1's exceptions; every :class:`RunyardError` is one."""

    def __init__(self, exception_message: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(exception_message, *args)
        self.message = exception_message


class UserErrorException(AzureMLException):
    """v1: the caller passed something wrong (runyard: bad values, missing or unsupported)."""


class ActivityFailedException(AzureMLException):
    """v1: a run ended Failed (runyard: :class:`RunFailed`)."""


class AuthenticationException(AzureMLException):
    """v1: authentication failed (runyard has no Azure login; kept for ``except`` clauses)."""


class ComputeTargetException(AzureMLException):
    """v1: a compute-target operation failed (runyard: :class:`ComputeTargetError`,
    :class:`TargetUnavailable`)."""


class DatasetException(AzureMLException):
    """v1: a dataset operation failed."""


class DiscoveryUrlNotFoundException(AzureMLException):
    """v1: the service discovery URL was not found (never raised by runyard)."""


class ExperimentExecutionException(AzureMLException):
    """v1: submitting or following a run failed."""


class ModelNotFoundException(AzureMLException):
    """v1: no model of that name or version."""


class ModelPathNotFoundException(AzureMLException):
    """v1: a model path does not exist."""


class ProjectSystemException(AzureMLException):
    """v1: the project folder or its configuration cannot be used."""


class RunConfigurationException(AzureMLException):
    """v1: a run configuration is wrong."""


class SnapshotException(AzureMLException):
    """v1: the code snapshot failed (runyard: :class:`SnapshotTooLarge`)."""


class TrainingException(AzureMLException):
    """v1: a training (estimator) error."""


class WebserviceException(AzureMLException):
    """v1: a model deployment error."""


class WorkspaceException(AzureMLException):
    """v1: the workspace cannot be created or opened (runyard: :class:`WorkspaceError`)."""


#: The names ``azureml.exceptions`` exports (``runyard.compat.azureml.exceptions``).
AZUREML_EXCEPTIONS = (
    "AzureMLException", "ActivityFailedException", "AuthenticationException",
    "ComputeTargetException", "DatasetException", "DiscoveryUrlNotFoundException",
    "ExperimentExecutionException", "ModelNotFoundException", "ModelPathNotFoundException",
    "ProjectSystemException", "RunConfigurationException", "SnapshotException",
    "TrainingException", "UserErrorException", "WebserviceException", "WorkspaceException",
)


class RunyardError(AzureMLException):
    """Root of every error raised by runyard."""

    error_code: ClassVar[str] = "RunyardError"
    http_status: ClassVar[int] = 500

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """Serialize as ``{error_code, message, details}``."""
        return {"error_code": self.error_code, "message": self.message, "details": self.details}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RunyardError:
        """Rebuild the error class named by ``data['error_code']`` (unknown: ``RunyardError``)."""
        cls = error_class(str(data.get("error_code")))
        message = str(data.get("message", ""))
        details = dict(data.get("details") or {})
        if issubclass(cls, InvalidParameter):
            field = str(details.get("field", ""))
            prefix = f"{field}: "
            text = message[len(prefix):] if message.startswith(prefix) else message
            return cls(field, text, details=details)
        return cls(message, details=details)


def _register(cls: type[RunyardError]) -> None:
    """Put ``cls`` in the table under its own code (its class name unless it sets one).

    A code is the class's own: a class that does not set ``error_code`` in its body, or that
    merely restates the code of one of its bases, gets its class name instead of inheriting the
    base's code (otherwise it would cross the REST boundary as the base class). Re-creating a
    class of the same module and qualified name (a module reload) replaces the old entry; any
    other class already holding the code is a :class:`TypeError`.
    """
    own = cls.__dict__.get("error_code")
    inherited = {getattr(base, "error_code", None) for base in cls.__mro__[1:]}
    if own is None or own in inherited:
        own = cls.__name__
        cls.error_code = own
    if not isinstance(own, str) or not own:
        raise TypeError(f"{cls.__qualname__}.error_code must be a non-empty str, got {own!r}")
    status = cls.http_status
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise TypeError(f"{cls.__qualname__}.http_status must be an int in 400..599, "
                        f"got {status!r}")
    holder = _REGISTRY.get(own)
    if holder is not None and holder is not cls and (
            holder.__module__, holder.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"error code {own!r} of {cls.__module__}.{cls.__qualname__} is already "
                        f"taken by {holder.__module__}.{holder.__qualname__}")
    _REGISTRY[own] = cls


def _unregister(cls: type[RunyardError]) -> None:
    """Drop ``cls`` from the table (for tests that define throw-away error classes)."""
    if _REGISTRY.get(cls.error_code) is cls:
        del _REGISTRY[cls.error_code]


def error_table() -> list[tuple[str, type[RunyardError], int]]:
    """Every registered ``(error_code, class, http_status)``, sorted by code.

    Classes defined outside this module are in it once their module has been imported.
    """
    return [(code, _REGISTRY[code], _REGISTRY[code].http_status) for code in sorted(_REGISTRY)]


def error_class(code: str) -> type[RunyardError]:
    """The class registered under ``code``; :class:`RunyardError` for an unknown code."""
    return _REGISTRY.get(code, RunyardError)


def http_status_of(exc_or_cls: BaseException | type[BaseException]) -> int:
    """The HTTP status of an error or error class; 500 for anything not a :class:`RunyardError`."""
    cls = exc_or_cls if isinstance(exc_or_cls, type) else type(exc_or_cls)
    if issubclass(cls, RunyardError):
        return cls.http_status
    return RunyardError.http_status


_register(RunyardError)


class InvalidParameter(RunyardError, UserErrorException):
    """A user-supplied value is wrong; the message names the field and the fix."""

    error_code = "InvalidParameter"
    http_status = 400

    def __init__(self, field: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        d = {"field": field, **(details or {})}
        super().__init__(f"{field}: {message}", details=d)
        self.field = field


class NotFound(RunyardError, UserErrorException):
    """A named object (workspace, experiment, run, file, target) does not exist."""

    error_code = "NotFound"
    http_status = 404


class AlreadyExists(RunyardError, UserErrorException):
    """An object with that name already exists."""

    error_code = "AlreadyExists"
    http_status = 409


class NotSupported(RunyardError, UserErrorException):
    """The request is valid but this kind, target or build cannot do it (the reason says why).

    HTTP 422 (Unprocessable Content): the request is well formed and its values are valid (a
    wrong value is ``InvalidParameter``'s 400), but the chosen target cannot carry it out; the
    client must change the request (another target or kind), so it is a 4xx that is not retried
    and does not count as a server failure. Not 501: RFC 9110 keeps 501 for a server that does
    not support the request *method* for any resource, and a 5xx reads as the server's fault
    (retries, error budgets, alerts).
    """

    error_code = "NotSupported"
    http_status = 422


class TargetUnavailable(RunyardError, ComputeTargetException):
    """A compute target cannot be reached or used right now."""

    error_code = "TargetUnavailable"
    http_status = 503


class InvalidTransition(RunyardError, UserErrorException):
    """A run-state change was refused (terminal states never change)."""

    error_code = "InvalidTransition"
    http_status = 409


class SnapshotTooLarge(InvalidParameter, SnapshotException):
    """The source directory exceeds the snapshot limits (HTTP 413 Content Too Large)."""

    error_code = "SnapshotTooLarge"
    http_status = 413


class DatasetChanged(RunyardError, DatasetException):
    """The bytes of a registered dataset version changed on its datastore: the version means
    the recorded bytes, which cannot be read any more (``details["changed"]`` lists them)."""

    error_code = "DatasetChanged"
    http_status = 409


class WorkspaceError(RunyardError, WorkspaceException):
    """The workspace folder or its database cannot be used."""

    error_code = "WorkspaceError"
    http_status = 500


class DatabaseMissing(WorkspaceError):
    """The workspace database is missing, or its file was replaced or deleted while in use.

    Opening a workspace never creates its database (only ``Workspace.create`` / ``runyard init``
    does); the message names the file and how to recover (restore it or start over).
    """

    error_code = "DatabaseMissing"


class DatabaseBusy(WorkspaceError):
    """Another process held the workspace database longer than the busy timeout.

    HTTP 503 (Service Unavailable): nothing is wrong with the request; retrying later works once
    the other process lets go. The message names the database, the timeout and how to raise it.
    """

    error_code = "DatabaseBusy"
    http_status = 503


class DiskFull(WorkspaceError):
    """The disk that holds the workspace (its database or its files) is full.

    HTTP 507 (Insufficient Storage, RFC 4918): the server cannot store what the request needs.
    The message names the file and says to free disk space.
    """

    error_code = "DiskFull"
    http_status = 507


class RunFailed(RunyardError, ActivityFailedException):
    """A run ended Failed or NotResponding (raised by ``wait_for_completion``).

    HTTP 409 (Conflict): everything worked, but the run's state (Failed) conflicts with what the
    request waited for; a 5xx would blame the server for the user's script and invite retries.
    """

    error_code = "RunFailed"
    http_status = 409


class ComputeTargetError(RunyardError, ComputeTargetException):
    """Any error about a compute target (``ComputeTargetException`` in the compat layer)."""

    error_code = "ComputeTargetError"
    # Deliberately no ``http_status`` here: it would shadow NotFound's 404, InvalidParameter's
    # 400, ... in the multiple-inheritance subclasses below; the 500 comes from RunyardError.


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
    http_status = 409
