"""``azureml.train.hyperdrive.sampling``."""

from runyard.sweeps.sampling import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
)

__all__ = ["BayesianParameterSampling", "GridParameterSampling", "HyperParameterSampling",
           "RandomParameterSampling"]
