"""Secrets at rest: Fernet encryption with a key kept outside the database.

The key comes from ``RUNYARD_SECRET_KEY`` (servers) or from a key file in the user's runyard
config folder (``$XDG_CONFIG_HOME/runyard/secret.key``, default ``~/.config/runyard``), created
with mode 0600 on first use. Plain values are wrapped in :class:`Secret`, whose ``repr`` and
``str`` never show the value.

The key file is guarded:

* a key file that group or others may read is refused (``chmod 600 <path>`` fixes it);
* a key made here leaves its fingerprint next to it (``secret.key.fingerprint``); when the key
  file then goes missing, loading the key is an error that says how to restore it, never a
  silent new key (deleting the fingerprint file is how to start over on purpose);
* a secret that does not decrypt says whether the key file was made after the secret was
  stored (the key was replaced) and how to restore it.

``RUNYARD_SECRET_KEY`` never reaches a user's script (:mod:`runyard.runtime.envscrub`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from runyard.errors import RunyardError

ENV_SECRET_KEY = "RUNYARD_SECRET_KEY"
ENV_CONFIG_HOME = "RUNYARD_CONFIG_HOME"


class SecretError(RunyardError):
    """A secret cannot be encrypted or decrypted (wrong or missing key)."""

    error_code = "SecretError"


class Secret:
    """A secret string: ``reveal()`` gives the value; printing it never does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value (pass it only to the code that needs it)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not picklable")


def config_dir() -> Path:
    """The user's runyard config folder (holds the secret key file)."""
    explicit = os.environ.get(ENV_CONFIG_HOME)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "runyard"


KEY_FILE_NAME = "secret.key"
#: Next to the key file: the fingerprint of the key made there (not a secret). Its presence
#: says that a key existed, so secrets may be stored with it somewhere: a missing key file is
#: then an error to fix, never a reason to make a new key.
FINGERPRINT_FILE_NAME = "secret.key.fingerprint"


def key_file() -> Path:
    """The key file (used when ``RUNYARD_SECRET_KEY`` is not set)."""
    return config_dir() / KEY_FILE_NAME


def fingerprint(key: bytes) -> str:
    """A short, non-secret identifier of a key (the first 16 hex digits of its sha256)."""
    return hashlib.sha256(key.strip()).hexdigest()[:16]


def _restore_hint(path: Path) -> str:
    return (f"restore the key file from your backup to {path} (then `chmod 600 {path}`), or "
            f"set {ENV_SECRET_KEY} to the key")


def _token_time(token: bytes) -> int | None:
    """When a Fernet token was made (its unauthenticated header: readable without the key)."""
    try:
        raw = base64.urlsafe_b64decode(token)
    except (binascii.Error, ValueError, TypeError):
        return None
    return int.from_bytes(raw[1:9], "big") if len(raw) >= 9 and raw[0] == 0x80 else None


def _read_key_file(path: Path) -> bytes:
    """The key in ``path``; refused when others may read it. FileNotFoundError if missing."""
    fd = os.open(path, os.O_RDONLY)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise SecretError(
                f"the secret key file {path} is open to other users (mode {mode:04o}); "
                f"run `chmod 600 {path}`. If others may already have read it, also treat the "
                "stored secrets as exposed and change them")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read().strip()
    finally:
        os.close(fd)


def _load_key() -> bytes:
    env = os.environ.get(ENV_SECRET_KEY)
    if env:
        return env.encode()
    from cryptography.fernet import Fernet  # noqa: PLC0415

    path = key_file()
    marker = path.with_name(FINGERPRINT_FILE_NAME)
    try:
        key = _read_key_file(path)
    except FileNotFoundError:
        pass
    else:
        if not marker.exists():  # a key file made before fingerprints were kept
            with contextlib.suppress(OSError):
                _write_fingerprint(marker, key)
        return key
    if marker.exists():
        known = marker.read_text().strip()
        raise SecretError(
            f"the secret key file {path} is missing, but a key was made there before "
            f"(fingerprint {known}), so secrets stored with it cannot be read without it: "
            f"{_restore_hint(path)}. runyard does not make a new key in its place; if the key "
            f"is lost for good, delete {marker} to start over (secrets stored with the old "
            "key must then be given again, e.g. by re-attaching the compute targets)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # first writer wins; a concurrent creator reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    key = _read_key_file(path)
    _write_fingerprint(marker, key)
    return key


def _write_fingerprint(marker: Path, key: bytes) -> None:
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(fingerprint(key) + "\n")
    os.replace(tmp, marker)


class SecretBox:
    """Encrypts and decrypts secret values with the workspace-independent key."""

    def __init__(self, key: bytes | None = None) -> None:
        from cryptography.fernet import Fernet  # noqa: PLC0415

        try:
            self._fernet = Fernet(key or _load_key())
        except ValueError:
            raise SecretError(f"the secret key is not a valid Fernet key; fix "
                              f"{ENV_SECRET_KEY} or the key file in {config_dir()}") from None

    def encrypt(self, value: str | Secret) -> bytes:
        """Ciphertext of a value."""
        plain = value.reveal() if isinstance(value, Secret) else value
        return self._fernet.encrypt(plain.encode())

    def decrypt(self, token: bytes) -> Secret:
        """The secret behind a ciphertext."""
        from cryptography.fernet import InvalidToken  # noqa: PLC0415

        try:
            return Secret(self._fernet.decrypt(token).decode())
        except InvalidToken:
            raise SecretError(self._wrong_key_message(token)) from None

    def _wrong_key_message(self, token: bytes) -> str:
        path = key_file()
        where = (ENV_SECRET_KEY if os.environ.get(ENV_SECRET_KEY)
                 else f"the key file {path}")
        text = ("a stored secret cannot be decrypted with this key: it was stored with another "
                f"key than the one in {where}")
        stored_at = _token_time(token)
        made_at = None
        if not os.environ.get(ENV_SECRET_KEY):
            with contextlib.suppress(OSError):
                made_at = path.stat().st_mtime
        if stored_at is not None and made_at is not None and made_at > stored_at:
            text += (f". The key file was made at {time.ctime(made_at)}, after the secret was "
                     f"stored ({time.ctime(stored_at)}): the original key file was deleted or "
                     f"replaced; {_restore_hint(path)}")
        else:
            text += f"; {_restore_hint(path)}"
        return text + (". If the original key is lost, give the secrets again (re-attach the "
                       "compute target)")
