"""Workspace stores: the abstract contract and its implementations."""
