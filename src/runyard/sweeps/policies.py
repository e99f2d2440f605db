"""Early-termination policies (Azure ML v1 ``azureml.train.hyperdrive.policy``).

The classes live in :mod:`runyard.services.sweeps.policies` (with their decision function, which
the sweep controller calls); this module re-exports them for the SDK. See there for the exact
semantics.
"""

from __future__ import annotations

from runyard.services.sweeps.policies import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)

__all__ = ["BanditPolicy", "EarlyTerminationPolicy", "MedianStoppingPolicy",
           "NoTerminationPolicy", "TruncationSelectionPolicy"]
