"""Host-key policy: known_hosts, fingerprints, and the key pinned on an attached target.

At attach the server's key is looked up in known_hosts (``~/.ssh/known_hosts`` unless the target
names another file):

* the same key is there: accepted;
* a different key is there for that host: refused, always ("changed");
* nothing is there: refused with the key's fingerprint, unless the user attached with
  ``trust_unknown_host_key=True`` (recorded on the target).

The accepted key is pinned in the target's configuration (``host_key``); every later connection
must present exactly that key (and known_hosts must not disagree), otherwise it is refused as
changed. Keys are checked before any credential is sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import paramiko

from runyard.errors import ComputeTargetError, ComputeTargetInvalid


class HostKeyChanged(ComputeTargetError):
    """The host presented a key other than the known or pinned one (always refused)."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_line(key: paramiko.PKey) -> str:
    """``<type> <base64>`` of a public key (what known_hosts and ``host_key`` hold)."""
    return f"{key.get_name()} {key.get_base64()}"


def host_name(address: str, port: int) -> str:
    """The known_hosts name of ``address:port`` (``[addr]:port`` unless port 22)."""
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    return bare if port == 22 else f"[{bare}]:{port}"


def default_known_hosts() -> str:
    return str(Path.home() / ".ssh" / "known_hosts")


def known_keys(known_hosts: str | None, address: str, port: int) -> list[str]:
    """The ``<type> <base64>`` keys known_hosts holds for the host (hashed names included)."""
    path = os.path.expanduser(known_hosts or default_known_hosts())
    if not os.path.isfile(path):
        return []
    keys = paramiko.HostKeys()
    try:
        keys.load(path)
    except (OSError, paramiko.SSHException, ValueError):
        return []
    found = keys.lookup(host_name(address, port))
    if not found:
        return []
    return [f"{kt} {k.get_base64()}" for kt, k in found.items()]


def preferred_types(pinned: str | None, known: list[str]) -> list[str]:
    """Host-key algorithms to ask for, so that the server shows the key we can check."""
    wanted = [pinned.split()[0]] if pinned else [k.split()[0] for k in known]
    out: list[str] = []
    for t in wanted:
        if t == "ssh-rsa":  # an RSA key is negotiated as rsa-sha2-*
            out += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        else:
            out.append(t)
    return out


def check(key: paramiko.PKey, *, address: str, port: int, pinned: str | None,
          known_hosts: str | None, trust_unknown: bool) -> str:
    """Accept or refuse the server's key; returns its ``<type> <base64>`` line when accepted."""
    line = key_line(key)
    shown = f"{key.get_name()} {fingerprint(key)}"
    where = f"{address}:{port}"
    file = known_hosts or default_known_hosts()
    known = known_keys(known_hosts, address, port)
    if pinned is not None and line != pinned:
        raise HostKeyChanged(
            f"the host key of {where} CHANGED: it now presents {shown}, but this target was "
            f"attached with a different key. Refused (someone may be intercepting the "
            f"connection). If the host was really reinstalled, detach and attach it again.",
            details={"fingerprint": fingerprint(key), "address": address, "port": port})
    if known and line not in known:
        raise HostKeyChanged(
            f"the host key of {where} does not match known_hosts ({file}): the host presents "
            f"{shown}. Refused (someone may be intercepting the connection). If the host was "
            f"really reinstalled, remove its old entry (ssh-keygen -R) and attach again.",
            details={"fingerprint": fingerprint(key), "address": address, "port": port})
    if pinned is None and not known and not trust_unknown:
        raise ComputeTargetInvalid(
            "trust_unknown_host_key",
            f"the host key of {where} is unknown (not in {file}): {shown}. Check this "
            f"fingerprint with the host's owner, then add the key to known_hosts "
            f"(ssh-keyscan) or attach with trust_unknown_host_key=True",
            details={"fingerprint": fingerprint(key), "address": address, "port": port})
    return line
