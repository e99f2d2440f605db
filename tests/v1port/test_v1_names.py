"""Every documented Azure ML v1 public name either imports from ``runyard.compat.azureml`` or
raises ``NotSupported`` naming what is missing: never a bare ImportError / AttributeError.

The list is taken from the v1 reference (shared/reference/azureml-v1-api.md): the modules v1
code imports and the names it imports from them.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from runyard.errors import NotSupported

#: (v1 module, name). Spelled as in v1; ``azureml.`` maps to ``runyard.compat.azureml.``.
V1_NAMES: list[tuple[str, str]] = [
    *[("azureml.core", n) for n in (
        "Workspace", "Experiment", "Run", "ScriptRun", "ScriptRunConfig", "RunConfiguration",
        "Environment", "ComputeTarget", "VERSION", "get_run", "Dataset", "Datastore", "Model",
        "Image", "Webservice", "Keyvault", "ContainerRegistry", "LinkedService",
        "PrivateEndPointConfig")],
    ("azureml.core.workspace", "Workspace"),
    ("azureml.core.experiment", "Experiment"),
    ("azureml.core.run", "Run"),
    ("azureml.core.run", "get_run"),
    ("azureml.core.script_run_config", "ScriptRunConfig"),
    *[("azureml.core.compute", n) for n in (
        "ComputeTarget", "AmlCompute", "RemoteCompute", "HDInsightCompute",
        "DatabricksCompute", "AdlaCompute", "AksCompute", "BatchCompute", "ComputeInstance",
        "DataFactoryCompute", "DsvmCompute", "KubernetesCompute", "SynapseCompute")],
    ("azureml.core.compute_target", "ComputeTargetException"),
    *[("azureml.core.runconfig", n) for n in (
        "RunConfiguration", "DEFAULT_CPU_IMAGE", "DEFAULT_GPU_IMAGE", "MPI_CPU_IMAGE",
        "MPI_GPU_IMAGE", "EnvironmentDefinition", "PythonEnvironment", "DockerEnvironment",
        "HistoryConfiguration", "MpiConfiguration", "PyTorchConfiguration",
        "DataReferenceConfiguration", "SparkConfiguration", "HdiConfiguration",
        "TensorflowConfiguration", "DockerConfiguration")],
    *[("azureml.core.environment", n) for n in (
        "Environment", "CondaDependencies", "PythonSection", "DockerSection", "SparkSection",
        "DatabricksSection")],
    ("azureml.core.conda_dependencies", "CondaDependencies"),
    *[("azureml.core.authentication", n) for n in (
        "InteractiveLoginAuthentication", "ServicePrincipalAuthentication",
        "MsiAuthentication", "AzureCliAuthentication", "TokenAuthentication",
        "AbstractAuthentication")],
    ("azureml.core.model", "Model"),
    ("azureml.core.model", "InferenceConfig"),
    ("azureml.core.dataset", "Dataset"),
    ("azureml.core.datastore", "Datastore"),
    *[("azureml.core.webservice", n) for n in (
        "Webservice", "AciWebservice", "AksWebservice", "LocalWebservice")],
    ("azureml.core.image", "Image"),
    ("azureml.core.image", "ContainerImage"),
    *[("azureml.data", n) for n in (
        "OutputFileDatasetConfig", "TabularDataset", "FileDataset", "DataType")],
    ("azureml.data.data_reference", "DataReference"),
    ("azureml.data.datapath", "DataPath"),
    *[("azureml.exceptions", n) for n in (
        "AzureMLException", "ActivityFailedException", "AuthenticationException",
        "ComputeTargetException", "DatasetException", "DiscoveryUrlNotFoundException",
        "ExperimentExecutionException", "ModelNotFoundException",
        "ModelPathNotFoundException", "ProjectSystemException", "RunConfigurationException",
        "SnapshotException", "TrainingException", "UserErrorException",
        "WebserviceException", "WorkspaceException")],
    ("azureml.telemetry", "set_diagnostics_collection"),
    ("azureml.telemetry", "get_diagnostics_collection_info"),
    *[("azureml.train.hyperdrive", n) for n in (
        "HyperDriveConfig", "HyperDriveRun", "RandomParameterSampling", "GridParameterSampling",
        "BayesianParameterSampling", "BanditPolicy", "MedianStoppingPolicy",
        "TruncationSelectionPolicy", "NoTerminationPolicy", "PrimaryMetricGoal", "choice",
        "uniform", "loguniform", "normal", "lognormal", "quniform", "qloguniform", "qnormal",
        "qlognormal", "randint", "HyperDriveRunConfig", "EarlyTerminationPolicy",
        "HyperParameterSampling")],
    *[("azureml.train.hyperdrive.parameter_expressions", n) for n in (
        "choice", "uniform", "loguniform", "normal", "lognormal", "quniform", "qloguniform",
        "qnormal", "qlognormal", "randint")],
    *[("azureml.train.hyperdrive.sampling", n) for n in (
        "RandomParameterSampling", "GridParameterSampling", "BayesianParameterSampling")],
    *[("azureml.train.hyperdrive.policy", n) for n in (
        "BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy",
        "NoTerminationPolicy")],
    ("azureml.train.hyperdrive.runconfig", "HyperDriveConfig"),
    ("azureml.train.hyperdrive.runconfig", "HyperDriveRunConfig"),
    ("azureml.train.hyperdrive.run", "PrimaryMetricGoal"),
    ("azureml.train.hyperdrive.run", "HyperDriveRun"),
    ("azureml.train.automl", "AutoMLConfig"),
    ("azureml.train.estimator", "Estimator"),
    *[("azureml.train.dnn", n) for n in (
        "PyTorch", "TensorFlow", "Chainer", "Mpi", "Gloo", "Nccl", "ParameterServer")],
    ("azureml.train.sklearn", "SKLearn"),
    *[("azureml.pipeline.core", n) for n in (
        "Pipeline", "PipelineData", "PipelineParameter", "PublishedPipeline", "Schedule",
        "ScheduleRecurrence", "StepSequence", "PipelineRun", "PipelineEndpoint")],
    *[("azureml.pipeline.steps", n) for n in (
        "PythonScriptStep", "EstimatorStep", "HyperDriveStep", "AutoMLStep",
        "DataTransferStep", "DatabricksStep", "AdlaStep", "MpiStep", "ParallelRunStep",
        "ParallelRunConfig", "CommandStep")],
]

#: Names whose runyard feature has landed: these must import (not raise NotSupported).
MUST_IMPORT = {
    ("azureml.core", n) for n in ("Workspace", "Experiment", "Run", "ScriptRun",
                                  "ScriptRunConfig", "RunConfiguration", "Environment",
                                  "ComputeTarget", "VERSION", "get_run")
} | {(m, n) for m, n in V1_NAMES if m in ("azureml.exceptions", "azureml.telemetry",
                                          "azureml.core.authentication",
                                          "azureml.core.conda_dependencies")} | {
    ("azureml.core.runconfig", "DEFAULT_CPU_IMAGE"), ("azureml.core.runconfig",
                                                      "DEFAULT_GPU_IMAGE"),
    ("azureml.core.environment", "CondaDependencies"), ("azureml.core.compute", "AmlCompute"),
    ("azureml.core.compute", "RemoteCompute"), ("azureml.core.run", "get_run"),
    ("azureml.core", "Model"), ("azureml.core.model", "Model"),
    ("azureml.core", "Datastore"), ("azureml.core.datastore", "Datastore"),
    ("azureml.core", "Dataset"), ("azureml.core.dataset", "Dataset"),
    ("azureml.data", "FileDataset"), ("azureml.data", "TabularDataset"),
    ("azureml.data.datapath", "DataPath"),
    ("azureml.data", "OutputFileDatasetConfig"),
    ("azureml.data.data_reference", "DataReference"),
} | {(m, n) for m, n in V1_NAMES
     # HyperDriveRun is the SDK's sweep run, resolved lazily: tolerated as NotSupported until
     # it lands (test_hyperdrive_run_is_the_sdks_sweep_run checks it once it has)
     if m.startswith("azureml.train.hyperdrive") and n != "HyperDriveRun"}

# the v1 estimators (issue 13, item 4)
MUST_IMPORT |= {("azureml.train.estimator", "Estimator"), ("azureml.train.sklearn", "SKLearn"),
                *[("azureml.train.dnn", n) for n in ("PyTorch", "TensorFlow", "Chainer", "Mpi",
                                                     "Gloo", "Nccl", "ParameterServer")]}


def compat(module: str) -> str:
    return "runyard.compat." + module


def from_import(module: str, name: str) -> Any:
    """``from <module> import <name>`` exactly as a ported script spells it."""
    ns: dict[str, Any] = {}
    exec(f"from {compat(module)} import {name}", ns)  # noqa: S102
    return ns[name]


def test_the_list_is_big_enough() -> None:
    assert len(V1_NAMES) >= 120
    assert len(set(V1_NAMES)) == len(V1_NAMES)


@pytest.mark.parametrize(("module", "name"), V1_NAMES, ids=[f"{m}.{n}" for m, n in V1_NAMES])
def test_v1_name_imports_or_says_not_supported(module: str, name: str) -> None:
    try:
        value = from_import(module, name)
    except NotSupported as exc:
        assert (module, name) not in MUST_IMPORT, f"{module}.{name} should work: {exc}"
        assert f"{module}.{name}" in str(exc) or name in str(exc), str(exc)
        assert "runyard does not include" in str(exc) or "not" in str(exc)
        return
    assert value is not None


def test_an_undocumented_name_is_a_plain_import_error() -> None:
    """The walk above can fail: a name v1 never had is an ordinary ImportError."""
    with pytest.raises(ImportError):
        from_import("azureml.core", "NoSuchV1Name")
    with pytest.raises(ImportError):
        from_import("azureml.core.compute", "NoSuchCompute")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(compat("azureml.no_such_module"))


def test_telemetry_is_a_no_op() -> None:
    from runyard.compat.azureml.telemetry import (
        get_diagnostics_collection_info,
        set_diagnostics_collection,
    )

    assert set_diagnostics_collection(send_diagnostics=True) is None
    assert get_diagnostics_collection_info() == {"send_diagnostics": False}


def test_version_is_runyards() -> None:
    import runyard
    from runyard.compat.azureml.core import VERSION

    assert runyard.__version__ == VERSION


def test_hyperdrive_run_is_the_sdks_sweep_run() -> None:
    """``HyperDriveRun`` is resolved lazily from the SDK: a ``Run`` subclass where it exists,
    ``NotSupported`` (never AttributeError/ImportError) where it does not."""
    from runyard.run import Run

    for module in ("azureml.train.hyperdrive", "azureml.train.hyperdrive.run"):
        try:
            cls = from_import(module, "HyperDriveRun")
        except NotSupported as exc:
            assert "HyperDriveRun" in str(exc)
            continue
        assert isinstance(cls, type) and issubclass(cls, Run)
