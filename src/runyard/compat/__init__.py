"""Compatibility layers for code written against other SDKs."""
