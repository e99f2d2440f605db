"""Removing runyard's credentials from the environment a user's script gets.

A script never needs runyard's secret key or the credentials of its database: what it needs
comes through the jobwire variables (:mod:`runyard.runtime.jobwire`). The runner and the
processes that start it (the local kind, an SSH host agent, a Ray worker) may inherit them from
whoever started them, so the script's environment is scrubbed where it is built:
:func:`runyard.runtime.jobwire.script_env` and the runner itself, on every kind.

:func:`scrub` removes

* every name in :data:`SECRET_ENV_NAMES` (the secret key, the database URL) and any name the
  caller adds;
* any ``RUNYARD_*`` variable whose name says it holds a credential (``PASSWORD``, ``SECRET``,
  ``TOKEN``, ``CREDENTIAL``, ``PASSPHRASE``, or ending in ``_KEY``);
* any ``RUNYARD_*`` variable whose value holds a URL with a password
  (``postgresql://user:pw@host/db``).

This is a guard against leaks (an environment dump logged or uploaded by a script), not a
sandbox: a script that runs as the same user as runyard can read that user's files.
Standard library only (Python >= 3.8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["SECRET_ENV_NAMES", "is_secret", "scrub"]

#: Variables that hold credentials of runyard itself (see ``runyard.secrets`` and
#: ``runyard.settings``). Kept here because the runtime must not import those modules.
SECRET_ENV_NAMES = frozenset({
    "RUNYARD_SECRET_KEY",
    "RUNYARD_DATABASE_URL",
})

_PREFIX = "RUNYARD_"
_CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PASSPHRASE|_KEY$")
#: ``scheme://user:password@`` (the password may be empty only when written ``user:@``, which
#: holds no secret, so at least one character is required).
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@\s:]*:[^/?#@\s]+@")


def is_secret(name: str, value: str, extra_names: Iterable[str] = ()) -> bool:
    """Whether the variable ``name=value`` carries a credential (see the module docs)."""
    if name in SECRET_ENV_NAMES or name in frozenset(extra_names):
        return True
    if not name.upper().startswith(_PREFIX):
        return False
    return bool(_CREDENTIAL_NAME.search(name.upper()[len(_PREFIX):])
                or _URL_WITH_PASSWORD.search(value or ""))


def scrub(env: Mapping[str, str], extra_names: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``env`` without the variables that carry credentials (see the module docs).

    ``extra_names``: more variable names to remove (a deployment's own credentials).
    """
    extra = frozenset(extra_names)
    return {k: v for k, v in env.items() if not is_secret(k, v, extra)}
