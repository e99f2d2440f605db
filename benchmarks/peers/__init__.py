"""Peer systems the benchmarks compare runyard against (run in their own environments)."""
