"""SSH connections (paramiko): host-key check before authentication, exec, SFTP, a pool.

Why paramiko rather than asyncssh: the compute-target contract is synchronous (``submit``,
``poll`` and ``cancel`` are called from plain threads and processes); paramiko's ``Transport``
is a thread-safe synchronous client, so no event loop thread has to be bridged.

Every remote command is built from an argument list with :func:`shlex.join`; nothing from a
user is ever pasted into a command string. Credentials stay in :class:`~runyard.secrets.Secret`
objects until the moment paramiko sends them, and no message raised here contains them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import paramiko

from runyard.compute.remote.ssh import hostkeys
from runyard.errors import ComputeTargetInvalid, RunyardError, TargetUnavailable
from runyard.secrets import Secret

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Failures to reach a host are retried after 0.5 s, 1 s, 2 s, ... at most this far apart.
MAX_BACKOFF_SECONDS = 15.0
KEEPALIVE_SECONDS = 15
TCP_USER_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Settings:
    """What a connection needs (built from a target's configuration and secrets)."""

    address: str
    port: int
    username: str
    password: Secret | None = None
    private_key: Secret | None = None
    private_key_passphrase: Secret | None = None
    private_key_file: str | None = None
    host_key: str | None = None
    known_hosts_file: str | None = None
    trust_unknown_host_key: bool = False
    connect_timeout: float = 10.0

    @property
    def where(self) -> str:
        return f"{self.username}@{self.address}:{self.port}"

    def identity(self) -> str:
        """A digest of every setting (a pooled connection is reused only while it matches)."""
        h = hashlib.sha256()
        for value in (self.address, self.port, self.username, self.host_key,
                      self.known_hosts_file, self.trust_unknown_host_key,
                      *(s.reveal() if s else "" for s in (self.password, self.private_key,
                                                          self.private_key_passphrase))):
            h.update(repr(value).encode() + b"\0")
        return h.hexdigest()


class ReconnectBackoff(TargetUnavailable):
    """A connect that was not attempted: the last one failed and its backoff has not passed
    (so it says nothing new about the host)."""


class ConnectionLost(TargetUnavailable):
    """The connection broke during an operation (the caller may reconnect and retry)."""


def load_private_key(text: Secret, passphrase: Secret | None, source: str) -> paramiko.PKey:
    """Parse a private key (OpenSSH or PEM); errors name the problem, never the secret."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415

    data = text.reveal().encode()
    pw = passphrase.reveal().encode() if passphrase is not None else None
    loaded: Any
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=pw)
        except ValueError as first:
            if b"OPENSSH PRIVATE KEY" in data:
                raise first
            loaded = serialization.load_pem_private_key(data, password=pw)
    except TypeError as exc:  # encrypted without passphrase, or passphrase for a plain key
        if pw is None:
            raise ComputeTargetInvalid(
                "private_key_passphrase", f"the private key {source} is encrypted; give its "
                "private_key_passphrase") from None
        if "not encrypted" in str(exc):
            return _load_as(data, None, source)
        raise ComputeTargetInvalid("private_key_file",
                                   f"cannot read the private key {source}") from None
    except ValueError as exc:
        if pw is not None and ("password" in str(exc).lower() or "decrypt" in str(exc).lower()
                               or "checksum" in str(exc).lower()):
            raise ComputeTargetInvalid(
                "private_key_passphrase", f"wrong passphrase for the private key {source} "
                "(it could not be decrypted)") from None
        raise ComputeTargetInvalid(
            "private_key_file", f"{source} is not a private key that runyard can use (OpenSSH "
            "or PEM; ed25519, ECDSA or RSA)") from None
    except Exception:  # noqa: BLE001  (unsupported algorithms and the like)
        raise ComputeTargetInvalid("private_key_file", f"cannot load the private key {source} "
                                   "(unsupported key type?)") from None
    if not isinstance(loaded, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey,
                               ec.EllipticCurvePrivateKey)):
        raise ComputeTargetInvalid("private_key_file", f"{source}: only ed25519, ECDSA and RSA "
                                   "keys are supported")
    return _load_as(data, pw, source)


def _load_as(data: bytes, pw: bytes | None, source: str) -> paramiko.PKey:
    password = pw.decode() if pw is not None else None
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            key: paramiko.PKey = cls.from_private_key(io.StringIO(data.decode()),
                                                      password=password)
            return key
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            errors.append(type(exc).__name__)
    raise ComputeTargetInvalid("private_key_file", f"cannot load the private key {source} "
                               f"({', '.join(errors)})")


class Connection:
    """One authenticated SSH connection (a paramiko ``Transport``) plus a lazy SFTP client.

    Thread safe: operations are serialized by :attr:`lock`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.host_key_line = ""
        self._sftp: paramiko.SFTPClient | None = None
        self.transport = self._open()

    # -- connecting ------------------------------------------------------------------------
    def _open(self) -> paramiko.Transport:
        s = self.settings
        host = s.address[1:-1] if s.address.startswith("[") else s.address
        try:
            sock = socket.create_connection((host, s.port), timeout=s.connect_timeout)
        except OSError as exc:
            why = exc.strerror or (str(exc) if str(exc) else type(exc).__name__)
            if isinstance(exc, TimeoutError | socket.timeout):
                why = f"no answer within {s.connect_timeout:g} s"
            raise TargetUnavailable(f"cannot reach {s.address} port {s.port}: {why} (is the "
                                    "host up, the address right and sshd listening?)",
                                    details={"address": s.address, "port": s.port}) from None
        _dead_peer_detection(sock)
        transport = paramiko.Transport(sock)
        try:
            known = hostkeys.known_keys(s.known_hosts_file, s.address, s.port)
            types = hostkeys.preferred_types(s.host_key, known)
            if types:
                opts = transport.get_security_options()
                offered = [t for t in types if t in opts.key_types]
                if offered:
                    opts.key_types = offered
            try:
                transport.start_client(timeout=s.connect_timeout)
                key = transport.get_remote_server_key()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TargetUnavailable(f"the SSH handshake with {s.address} port {s.port} "
                                        f"failed: {exc or type(exc).__name__} (is it an SSH "
                                        "server, and up?)") from None
            self.host_key_line = hostkeys.check(
                key, address=s.address, port=s.port, pinned=s.host_key,
                known_hosts=s.known_hosts_file, trust_unknown=s.trust_unknown_host_key)
            self._authenticate(transport)
            transport.set_keepalive(KEEPALIVE_SECONDS)
            return transport
        except BaseException:
            transport.close()
            raise

    def _authenticate(self, transport: paramiko.Transport) -> None:
        s = self.settings
        refused: list[str] = []
        if s.private_key is not None:
            source = s.private_key_file or "(stored key)"
            pkey = load_private_key(s.private_key, s.private_key_passphrase, source)
            if self._try_auth(lambda: transport.auth_publickey(s.username, pkey), refused,
                              "key", f"the key {source} was not accepted for {s.username!r}"):
                return
            if s.password is None:
                raise ComputeTargetInvalid("private_key_file", f"authentication failed at "
                                           f"{s.where}: {refused[0]}")
        if s.password is not None:
            password = s.password
            if self._try_auth(lambda: transport.auth_password(s.username, password.reveal()),
                              refused, "password", f"wrong password for user {s.username!r}"):
                return
            raise ComputeTargetInvalid("password", f"authentication failed at {s.where}: "
                                       + "; ".join(refused))
        raise ComputeTargetInvalid("password", "give a password or a private_key_file")

    def _try_auth(self, attempt: Callable[[], object], refused: list[str], method: str,
                  rejected: str) -> bool:
        """Run one authentication attempt; a refusal is noted in ``refused``."""
        try:
            attempt()
            return True
        except paramiko.BadAuthenticationType as exc:
            refused.append(f"{method} authentication is not allowed there (allowed: "
                           f"{', '.join(exc.allowed_types)})")
        except paramiko.AuthenticationException:
            refused.append(rejected)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TargetUnavailable(f"{self.settings.where}: the connection broke during "
                                    f"authentication ({type(exc).__name__})") from None
        return False

    # -- using -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.transport.is_active()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sftp is not None:
                self._sftp.close()
        self._sftp = None
        with contextlib.suppress(Exception):
            self.transport.close()

    def _lost(self, exc: BaseException, what: str) -> ConnectionLost:
        self.close()
        return ConnectionLost(f"the SSH connection to {self.settings.address} broke during "
                              f"{what} ({type(exc).__name__}: {exc})")

    def exec(self, argv: Sequence[str], stdin: bytes | Iterator[bytes] = b"",
             timeout: float = 120.0) -> tuple[int, bytes, bytes]:
        """Run ``argv`` on the host (quoted for its shell); returns (exit code, stdout, stderr)."""
        command = shlex.join(argv)
        with self.lock:
            try:
                chan = self.transport.open_session(timeout=self.settings.connect_timeout)
                try:
                    chan.settimeout(timeout)
                    chan.exec_command(command)
                    chunks = [stdin] if isinstance(stdin, bytes) else stdin
                    try:
                        for chunk in chunks:
                            if chunk:
                                chan.sendall(chunk)
                        chan.shutdown_write()
                    except OSError:
                        if not (chan.exit_status_ready() or chan.eof_received or chan.closed):
                            raise
                        # the command ended before reading all its input: its output says why
                    out, err = _drain(chan, timeout)
                    code = chan.recv_exit_status()
                finally:
                    chan.close()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise self._lost(exc, f"`{argv[-1] if argv else ''}`") from None
        return code, out, err

    def sftp(self) -> paramiko.SFTPClient:
        with self.lock:
            if self._sftp is None:
                try:
                    self._sftp = paramiko.SFTPClient.from_transport(self.transport)
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    raise self._lost(exc, "SFTP start") from None
                if self._sftp is None:
                    raise ConnectionLost(f"{self.settings.address}: SFTP is not available")
            return self._sftp

    def with_sftp(self, fn: Callable[[paramiko.SFTPClient], _T], what: str) -> _T:
        """Run ``fn`` with the SFTP client; a broken connection raises ``ConnectionLost``."""
        with self.lock:
            client = self.sftp()
            try:
                return fn(client)
            except (TimeoutError, paramiko.SSHException, EOFError, ConnectionError) as exc:
                raise self._lost(exc, what) from None


def _dead_peer_detection(sock: socket.socket) -> None:
    """TCP keepalive and a user timeout: a vanished host breaks the connection in ~30 s
    instead of leaving reads hanging until the kernel gives up (minutes)."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)


def _drain(chan: paramiko.Channel, timeout: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr to the end; ``timeout``: the longest silence allowed."""
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        got = False
        while chan.recv_ready():
            out.append(chan.recv(1 << 16))
            got = True
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(1 << 16))
            got = True
        if got:
            deadline = time.monotonic() + timeout
        if (chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready()
                and (chan.eof_received or chan.closed)):
            break
        if chan.closed and not chan.recv_ready() and not chan.recv_stderr_ready():
            break
        if not got:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end of the remote command within {timeout:g} s")
            select.select([chan], [], [], 0.05)
    return b"".join(out), b"".join(err)


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: Connection | None = None
        self.identity = ""
        self.failures = 0
        self.next_try = 0.0
        self.last_error: RunyardError | None = None
        self.known_blobs: set[str] = set()
        self.agent_ready = ""


class Pool:
    """Live connections by key (workspace + target), with reconnect backoff.

    A failed connect is not retried before its backoff (0.5 s doubling, at most
    ``MAX_BACKOFF_SECONDS``) has passed: callers get the last error at once meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def entry(self, key: str) -> _Entry:
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                e = self._entries[key] = _Entry()
            return e

    def get(self, key: str, settings: Settings, *, fresh: bool = False) -> tuple[Connection,
                                                                                   _Entry]:
        e = self.entry(key)
        ident = settings.identity()
        with e.lock:
            if e.conn is not None and (fresh or e.identity != ident or not e.conn.active):
                e.conn.close()
                e.conn = None
            if e.identity != ident:
                e.identity, e.failures, e.next_try = ident, 0, 0.0
                e.known_blobs.clear()
                e.agent_ready = ""
            if e.conn is None:
                now = time.monotonic()
                if now < e.next_try and e.last_error is not None:
                    raise ReconnectBackoff(f"{e.last_error.message} (not retried yet: the next "
                                           f"attempt is in {e.next_try - now:.1f} s)")
                try:
                    e.conn = Connection(settings)
                except RunyardError as exc:
                    e.failures += 1
                    e.next_try = now + min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (e.failures - 1))
                    e.last_error = exc
                    raise
                e.failures, e.next_try, e.last_error = 0, 0.0, None
            return e.conn, e

    def drop(self, key: str) -> None:
        e = self.entry(key)
        with e.lock:
            if e.conn is not None:
                e.conn.close()
                e.conn = None

    def close_all(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for e in entries:
            if e.conn is not None:
                e.conn.close()


#: The process's connections (a cache: targets are short-lived objects, made per call).
POOL = Pool()
