"""Curated environments: read-only environments with Azure ML v1's names, in every workspace.

v1 code says ``Environment.get(ws, "AzureML-Minimal")`` or ``"AzureML-Tutorial"``; runyard
answers with an environment of the same name whose ``python.conda_dependencies`` are pins that
install today with uv on Python 3.11 (v1's pins, such as ``scikit-learn==0.20.3`` on
Python 3.6, do not). Where the pinned framework moved on, the entry says what it maps to
(``maps_to``); the table in ``docs/curated-environments.md`` lists them all. The ``azureml-*``
packages v1's environments listed are kept in the definitions, as v1 had them, and dropped when
the environment is built (runyard provides the ``azureml`` import path).

Curated names are reserved: registering an environment under an ``AzureML-`` name is refused.
A curated environment has version ``1``; it is built like any other system-managed
environment, once per target.
"""

from __future__ import annotations

import difflib
from typing import Any

__all__ = ["CURATED", "CURATED_PREFIX", "CURATED_VERSION", "closest_names", "curated_definition",
           "is_curated_name"]

#: Names starting with this are curated (and reserved for them).
CURATED_PREFIX = "AzureML-"
#: The version every curated environment has.
CURATED_VERSION = 1
_PYTHON = "3.11"
_SKLEARN = ["scikit-learn==1.9.1", "numpy==2.4.6", "scipy==1.17.1", "joblib==1.5.3"]
_TORCH = ["torch==2.15.0", "numpy==2.4.6"]
_TF = ["tensorflow-cpu==2.21.0"]

#: name -> what it installs: ``pip`` (pip requirements, as pinned), ``v1`` (what v1's
#: environment had, for the table), ``maps_to`` (how the pins differ from v1's, or "").
CURATED: dict[str, dict[str, Any]] = {
    "AzureML-Minimal": {
        "pip": ["azureml-core", "azureml-defaults"],
        "v1": "python 3.6.2, azureml-core, azureml-defaults",
        "maps_to": "nothing beyond Python 3.11 (the azureml packages are runyard's)"},
    "AzureML-Tutorial": {
        "pip": ["azureml-core", "azureml-defaults", "azureml-widgets", "numpy==2.4.6",
                "pandas==3.1.1", "scikit-learn==1.9.1", "scipy==1.17.1",
                "matplotlib==3.11.2"],
        "v1": "python 3.6.2, azureml-sdk extras, numpy, pandas, scikit-learn, matplotlib",
        "maps_to": "current numpy/pandas/scikit-learn/scipy/matplotlib"},
    "AzureML-Scikit-learn-0.20.3": {
        "pip": ["azureml-core", "azureml-defaults", *_SKLEARN],
        "v1": "python 3.6.2, scikit-learn 0.20.3",
        "maps_to": "scikit-learn 1.9.1 (0.20.3 has no build for Python 3.11)"},
    "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu": {
        "pip": ["azureml-core", "azureml-defaults", *_SKLEARN],
        "v1": "python 3.7, scikit-learn 0.24",
        "maps_to": "scikit-learn 1.9.1 (0.24 has no build for Python 3.11)"},
    "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu": {
        "pip": ["azureml-core", "azureml-defaults", *_SKLEARN],
        "v1": "python 3.8, scikit-learn 1.0",
        "maps_to": "scikit-learn 1.9.1 (1.0 has no build for Python 3.11)"},
    "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu": {
        "pip": ["azureml-core", "azureml-defaults", "lightgbm==4.7.0", "pandas==3.1.1",
                *_SKLEARN],
        "v1": "python 3.7, lightgbm 3.2",
        "maps_to": "lightgbm 4.7.0"},
    "AzureML-PyTorch-1.6-CPU": {
        "pip": ["azureml-core", "azureml-defaults", *_TORCH],
        "v1": "python 3.6.2, torch 1.6 (CPU)",
        "maps_to": "torch 2.15.0 from PyPI (its Linux wheel also pulls the CUDA libraries)"},
    "AzureML-PyTorch-1.6-GPU": {
        "pip": ["azureml-core", "azureml-defaults", *_TORCH],
        "v1": "python 3.6.2, torch 1.6, CUDA 10.1",
        "maps_to": "torch 2.15.0 from PyPI (CUDA build; runs on CPU where no GPU is found)"},
    "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu": {
        "pip": ["azureml-core", "azureml-defaults", *_TORCH],
        "v1": "python 3.8, torch 1.10, CUDA 11",
        "maps_to": "torch 2.15.0 from PyPI"},
    "AzureML-TensorFlow-2.2-CPU": {
        "pip": ["azureml-core", "azureml-defaults", *_TF],
        "v1": "python 3.6.2, tensorflow 2.2 (CPU)",
        "maps_to": "tensorflow-cpu 2.21.0"},
    "AzureML-TensorFlow-2.3-CPU": {
        "pip": ["azureml-core", "azureml-defaults", *_TF],
        "v1": "python 3.6.2, tensorflow 2.3 (CPU)",
        "maps_to": "tensorflow-cpu 2.21.0"},
}


def is_curated_name(name: str) -> bool:
    """Whether ``name`` is in the curated namespace (``AzureML-...``; reserved)."""
    return isinstance(name, str) and name.lower().startswith(CURATED_PREFIX.lower())


def curated_definition(name: str) -> dict[str, Any] | None:
    """The definition of curated environment ``name`` (``Environment.to_dict`` form, without
    name and version), or None when there is none by that exact name."""
    entry = CURATED.get(name)
    if entry is None:
        return None
    conda = {"name": name, "channels": ["conda-forge"],
             "dependencies": [f"python={_PYTHON}", "pip", {"pip": list(entry["pip"])}]}
    return {"environmentVariables": {},
            "python": {"userManagedDependencies": False, "interpreterPath": "python",
                       "condaDependenciesFile": None, "condaDependencies": conda,
                       "baseCondaEnvironment": None, "builder": "uv"},
            "docker": {"enabled": False}}


def closest_names(name: str, known: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` names of ``known`` closest to ``name`` (case-insensitive, difflib)."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=n,
                                                            cutoff=0.6)]
