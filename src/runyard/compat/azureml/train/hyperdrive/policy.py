"""``azureml.train.hyperdrive.policy``."""

from runyard.sweeps.policies import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)

__all__ = ["BanditPolicy", "EarlyTerminationPolicy", "MedianStoppingPolicy",
           "NoTerminationPolicy", "TruncationSelectionPolicy"]
