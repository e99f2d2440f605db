"""The ``azureml`` alias that lets an unchanged v1 training script log to runyard.

This folder holds a tiny ``azureml`` package (``azureml/__init__.py``). With the folder on a
script's ``PYTHONPATH``, ``from azureml.core import Run`` (and every other ``azureml.X`` that
:mod:`runyard.compat.azureml` provides) imports runyard's own module: ``azureml.core.Run`` *is*
``runyard.run.Run``, so ``Run.get_context()`` finds the run and ``run.log`` reaches runyard.

The runner puts the folder first on the script's ``PYTHONPATH`` when the job's variables carry
:data:`ENV_AZUREML_ALIAS` (set at submission for system-managed environments: there the SDK's
``azureml-*`` packages are dropped from the spec); a user-managed interpreter never gets it, so a
real SDK installed there wins. Standard library only, Python >= 3.8.
"""

from __future__ import annotations

import os
import re
from typing import Any

#: Job variable that asks the runner for the alias (value ``"1"``).
ENV_AZUREML_ALIAS = "RUNYARD_AZUREML_ALIAS"


def alias_path() -> str:
    """The folder to put on ``PYTHONPATH`` (it holds the ``azureml`` alias package)."""
    return os.path.dirname(os.path.abspath(__file__))


def with_alias(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the alias folder first on ``PYTHONPATH`` when it asks for it
    (:data:`ENV_AZUREML_ALIAS` is ``"1"``); unchanged otherwise."""
    if env.get(ENV_AZUREML_ALIAS) != "1":
        return env
    out = dict(env)
    rest = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != alias_path()]
    out["PYTHONPATH"] = os.pathsep.join([alias_path(), *rest])
    return out


# -- the real SDK's offline run ---------------------------------------------------------------
#: What the Azure ML SDK v1 prints when a script logs to its offline run (``_OfflineRun``: the
#: script ran outside an Azure ML job), one line per call: ``Attempted to log scalar metric
#: accuracy:`` (the value follows on the next line) or ``Attempted to track file model.pkl at
#: outputs/model.pkl``.
_OFFLINE = re.compile(rb"^Attempted to (?:log (\w+) metric (.*):|track file (.*) at )")
_SCAN_LIMIT = 64 * 1024 * 1024


def offline_sdk_lines(log_path: str | os.PathLike[str], start: int = 0) -> list[str]:
    """What the script logged to the real SDK's offline run: one entry per SDK message found in
    the log after byte ``start`` (``scalar metric accuracy``, ``file model.pkl``)."""
    found: list[str] = []
    try:
        with open(log_path, "rb") as fh:
            fh.seek(start)
            read = 0
            for line in fh:
                read += len(line)
                if read > _SCAN_LIMIT:
                    break
                m = _OFFLINE.match(line)
                if m is None:
                    continue
                if m.group(1) is not None:
                    found.append(f"{m.group(1).decode(errors='replace')} metric "
                                 f"{m.group(2).decode(errors='replace')}")
                else:
                    found.append(f"file {m.group(3).decode(errors='replace')}")
    except OSError:
        return found
    return found


def offline_sdk_error(log_path: str | os.PathLike[str], start: int = 0) -> dict[str, Any] | None:
    """The run's error when the script logged to the real SDK's offline run, else None.

    A script that says ``from azureml.core import Run`` in an interpreter with the real Azure ML
    SDK installed gets the SDK's offline run: its metrics go nowhere runyard can see and the SDK
    only prints a line each. runyard fails such a run rather than let it end Completed with no
    metrics.
    """
    lines = offline_sdk_lines(log_path, start)
    if not lines:
        return None
    shown = ", ".join(dict.fromkeys(lines[:5]))
    return {"message": (
        f"the script logged {len(lines)} value{'s' if len(lines) != 1 else ''} to the Azure ML "
        f"SDK's offline run, which runyard cannot see ({shown}{', ...' if len(lines) > 5 else ''}"
        "): its interpreter has the real azureml SDK installed. Change `from azureml.core "
        "import Run` to `from runyard import Run` in the training script, or use a "
        "system-managed environment (user_managed_dependencies=False), where `azureml` is "
        "runyard's"), "offline_sdk_values": len(lines), "reason": "azureml_offline_run"}
