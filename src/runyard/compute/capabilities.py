"""The capability matrix: what each compute kind supports, and why not when it doesn't.

Starts from the Azure ML v1 table (seed document); where runyard's engines allow more, it allows
it and says so (``extended``), and the README's support table marks it.
"""

from __future__ import annotations

from runyard.compute.base import Capabilities, Capability
from runyard.errors import ComputeTargetNotSupported

_Y = Capability(True)

LOCAL = Capabilities(
    gpu=Capability(True, "uses the GPUs of this machine when it has them"),
    sweeps=Capability(True, "extended: Azure ML did not allow sweeps on local"),
    automl=_Y,
    script_runs=_Y,
    pipelines=Capability(True, "extended: Azure ML did not allow local pipeline steps"),
    multi_node=Capability(False, "the local target is one machine; use a cluster target"),
)
CLUSTER = Capabilities(gpu=_Y, sweeps=_Y, automl=_Y, script_runs=_Y, pipelines=_Y,
                       multi_node=_Y)
REMOTE = Capabilities(
    gpu=_Y, sweeps=_Y, automl=_Y, script_runs=_Y, pipelines=_Y,
    multi_node=Capability(False, "a remote target is one host; use a cluster target"),
)
SPARK = Capabilities(
    gpu=Capability(False, "Spark targets run on CPU executors"),
    sweeps=Capability(False, "sweeps need script-run children; use a cluster or remote target"),
    automl=Capability(False, "AutoML is not offered on Spark targets"),
    script_runs=_Y,
    pipelines=_Y,
    multi_node=_Y,
)
DATABRICKS = Capabilities(
    gpu=Capability(False, "not offered on Databricks targets"),
    sweeps=Capability(False, "not offered on Databricks targets"),
    automl=_Y,
    script_runs=Capability(False, "Databricks targets run only inside pipelines "
                           "(DatabricksStep)"),
    pipelines=_Y,
    multi_node=_Y,
)
SQL = Capabilities(
    gpu=Capability(False, "SQL targets run queries"),
    sweeps=Capability(False, "SQL targets run queries"),
    automl=Capability(False, "SQL targets run queries"),
    script_runs=Capability(False, "SQL targets run only inside pipelines (SQL steps)"),
    pipelines=_Y,
    multi_node=Capability(False, "SQL targets run queries"),
)

MATRIX: dict[str, Capabilities] = {"local": LOCAL, "cluster": CLUSTER, "remote": REMOTE,
                                   "spark": SPARK, "databricks": DATABRICKS, "sql": SQL}
FEATURES = ("gpu", "sweeps", "automl", "script_runs", "pipelines", "multi_node")


def require(kind: str, caps: Capabilities, feature: str, target_name: str) -> None:
    """Raise ``ComputeTargetNotSupported`` with the reason when ``feature`` is unsupported."""
    cap: Capability = getattr(caps, feature)
    if not cap.supported:
        raise ComputeTargetNotSupported(
            f"target {target_name!r} ({kind}) does not support {feature.replace('_', ' ')}: "
            f"{cap.reason}")
