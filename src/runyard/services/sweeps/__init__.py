"""Hyperparameter sweeps, service side: the pure pieces a sweep controller builds on.

- :mod:`runyard.services.sweeps.search`: parameter expressions (validation of v1's JSON lists)
  and :class:`~runyard.services.sweeps.search.Search`, the Optuna adapter that suggests trials
  and can be rebuilt from the stored trials of a sweep.
- :mod:`runyard.services.sweeps.policies`: the early-termination policies and
  :func:`~runyard.services.sweeps.policies.to_cancel`, their pure decision function.

Nothing here touches the store: the controller reads and writes the state and calls these.
"""
