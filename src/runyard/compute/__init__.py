"""Compute targets: the contract (``base``) and one module per kind."""
