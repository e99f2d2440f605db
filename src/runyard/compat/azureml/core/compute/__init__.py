"""``azureml.core.compute``: ComputeTarget and the Azure kinds mapped onto runyard's kinds."""

from __future__ import annotations

from typing import Any, ClassVar

from runyard.compat.azureml._missing import partly
from runyard.compute.cluster.config import ClusterProvisioningConfiguration
from runyard.computetarget import ClusterCompute, ComputeTarget, RemoteCompute
from runyard.errors import ComputeTargetNotSupported

#: Arguments of AmlCompute.provisioning_configuration that only mean something in Azure.
_AZURE_ONLY_CLUSTER_ARGS = ("admin_user_password", "admin_user_ssh_key", "location")


class AmlCompute(ClusterCompute):
    """Azure's managed cluster: runyard's ``cluster`` kind."""

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> ClusterProvisioningConfiguration:
        """Azure's arguments; Azure-only ones (admin passwords, location) are ignored."""
        clean = {k: v for k, v in kwargs.items() if k not in _AZURE_ONLY_CLUSTER_ARGS}
        return ClusterProvisioningConfiguration.build(**clean)


class _NotLanded:
    """An Azure kind whose runyard counterpart has not landed yet."""

    feature: ClassVar[str] = ""

    @classmethod
    def _refuse(cls) -> ComputeTargetNotSupported:
        return ComputeTargetNotSupported(f"{cls.__name__}: runyard does not include "
                                         f"{cls.feature} yet")

    @classmethod
    def attach_configuration(cls, *args: Any, **kwargs: Any) -> Any:
        """Refused: see the class docstring."""
        raise cls._refuse()

    @classmethod
    def provisioning_configuration(cls, *args: Any, **kwargs: Any) -> Any:
        """Refused: see the class docstring."""
        raise cls._refuse()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise self._refuse()


class HDInsightCompute(_NotLanded):
    """Spark over SSH on a head node (runyard's ``spark`` kind): not landed yet."""

    feature = "the spark kind (spark-submit to a cluster or over SSH)"


class DatabricksCompute(_NotLanded):
    """The Databricks Jobs API (runyard's ``databricks`` kind): not landed yet."""

    feature = "the databricks kind (Databricks Jobs REST API)"


class AdlaCompute(_NotLanded):
    """Data Lake Analytics (runyard's ``sql`` kind): not landed yet."""

    feature = "the sql kind (SQL steps on DuckDB or Spark SQL)"


__all__ = ["AdlaCompute", "AmlCompute", "ComputeTarget", "DatabricksCompute",
           "HDInsightCompute", "RemoteCompute"]

#: v1 compute classes with no runyard counterpart yet: name -> what is missing.
__getattr__ = partly("azureml.core.compute", {
    "AksCompute": "AKS compute (model deployment)",
    "BatchCompute": "Azure Batch compute",
    "ComputeInstance": "compute instances",
    "DataFactoryCompute": "Data Factory compute",
    "DsvmCompute": "DSVM creation (attach the machine as RemoteCompute instead)",
    "KubernetesCompute": "Kubernetes compute (use AmlCompute with provider='kubernetes')",
    "SynapseCompute": "Synapse compute",
})
