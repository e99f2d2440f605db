"""Secrets at rest: Fernet encryption with a key kept outside the database.

The key comes from ``RUNYARD_SECRET_KEY`` (servers) or from a key file in the user's runyard
config folder (``$XDG_CONFIG_HOME/runyard/secret.key``, default ``~/.config/runyard``), created
with mode 0600 on first use. Plain values are wrapped in :class:`Secret`, whose ``repr`` and
``str`` never show the value.
"""

from __future__ import annotations

import os
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


def _load_key() -> bytes:
    env = os.environ.get(ENV_SECRET_KEY)
    if env:
        return env.encode()
    from cryptography.fernet import Fernet  # noqa: PLC0415

    path = config_dir() / "secret.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
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
    return path.read_bytes().strip()


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
            raise SecretError(
                "a stored secret cannot be decrypted with this key: the key changed or is not "
                f"the one this workspace used ({ENV_SECRET_KEY} or {config_dir()}/secret.key)"
            ) from None
