"""``azureml.train.dnn``: v1's ``PyTorch``, ``TensorFlow`` and ``Chainer`` estimators and the
``distributed_training`` choices ``Mpi``, ``Gloo``, ``Nccl``, ``ParameterServer`` (see
``docs/estimators.md``)."""

from __future__ import annotations

from typing import ClassVar

from runyard.compat.azureml.train.estimator import (
    Gloo,
    Mpi,
    Nccl,
    ParameterServer,
    _FrameworkEstimator,
)
from runyard.environments.conda_dependencies import pip_package_name
from runyard.errors import NotSupported

__all__ = ["Chainer", "Gloo", "Mpi", "Nccl", "ParameterServer", "PyTorch", "TensorFlow"]


class PyTorch(_FrameworkEstimator):
    """A PyTorch script; ``distributed_training`` may be ``Mpi()`` (Horovod), ``Gloo()`` or
    ``Nccl()`` (``torch.distributed``: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are set for
    each of the ``node_count x process_count_per_node`` processes)."""

    _FRAMEWORK = "PyTorch"
    _RUN_FRAMEWORK = "PyTorch"
    _BACKENDS_OK: ClassVar[tuple[str, ...]] = ("mpi", "gloo", "nccl")


class TensorFlow(_FrameworkEstimator):
    """A TensorFlow script; ``distributed_training=Mpi()`` (Horovod). ``use_gpu=True``
    installs ``tensorflow`` (with the CUDA libraries from 2.14) instead of ``tensorflow-cpu``.
    ``ParameterServer()`` is refused: runyard has no parameter-server launcher."""

    _FRAMEWORK = "TensorFlow"
    _RUN_FRAMEWORK = "TensorFlow"


class Chainer(_FrameworkEstimator):
    """A Chainer script; ``distributed_training=Mpi()`` (ChainerMN). With ``use_gpu=True``,
    list the CuPy build matching the target's CUDA in ``pip_packages`` (e.g.
    ``'cupy-cuda102==7.8.0'``): there is no one right choice to make for you."""

    _FRAMEWORK = "Chainer"

    def _pins(self, pip_packages: list[str]) -> list[str]:
        if self.use_gpu and not any(pip_package_name(p).startswith("cupy")
                                    for p in pip_packages if isinstance(p, str)):
            raise NotSupported("Chainer(use_gpu=True): Chainer runs on the GPU through CuPy, "
                               "whose package depends on the target's CUDA version; add it "
                               "to pip_packages, e.g. pip_packages=['cupy-cuda102==7.8.0']")
        return super()._pins(pip_packages)
