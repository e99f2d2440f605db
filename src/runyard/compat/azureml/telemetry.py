"""``azureml.telemetry``: runyard collects and sends no diagnostics, anywhere."""

from __future__ import annotations

from typing import Any

__all__ = ["get_diagnostics_collection_info", "set_diagnostics_collection"]


def set_diagnostics_collection(send_diagnostics: bool = True, **_kwargs: Any) -> None:
    """Accepted for v1 scripts and does nothing: runyard has no telemetry, so nothing is sent
    whatever ``send_diagnostics`` says (no network call, no file written)."""


def get_diagnostics_collection_info(**_kwargs: Any) -> dict[str, Any]:
    """Always ``{"send_diagnostics": False}``: runyard sends no diagnostics."""
    return {"send_diagnostics": False}
