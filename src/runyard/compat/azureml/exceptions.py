"""``azureml.exceptions``: v1's exception classes.

runyard's errors subclass them (see :mod:`runyard.errors`), so a ported script's ``except``
clauses keep working: ``InvalidParameter``, ``NotFound``, ``NotSupported`` are
``UserErrorException``; ``RunFailed`` is ``ActivityFailedException``; compute-target errors and
``TargetUnavailable`` are ``ComputeTargetException``; ``SnapshotTooLarge`` is
``SnapshotException``; ``WorkspaceError`` is ``WorkspaceException``; every runyard error is an
``AzureMLException``.
"""

from runyard.errors import (
    ActivityFailedException,
    AuthenticationException,
    AzureMLException,
    ComputeTargetException,
    DatasetException,
    DiscoveryUrlNotFoundException,
    ExperimentExecutionException,
    ModelNotFoundException,
    ModelPathNotFoundException,
    ProjectSystemException,
    RunConfigurationException,
    SnapshotException,
    TrainingException,
    UserErrorException,
    WebserviceException,
    WorkspaceException,
)

__all__ = ["ActivityFailedException", "AuthenticationException", "AzureMLException",
           "ComputeTargetException", "DatasetException", "DiscoveryUrlNotFoundException",
           "ExperimentExecutionException", "ModelNotFoundException",
           "ModelPathNotFoundException", "ProjectSystemException", "RunConfigurationException",
           "SnapshotException", "TrainingException", "UserErrorException",
           "WebserviceException", "WorkspaceException"]
