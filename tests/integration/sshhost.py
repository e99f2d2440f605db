"""A real OpenSSH server as a second host for tests and benchmarks.

``start_host()`` starts ``/usr/sbin/sshd`` inside a network namespace made here (its own address
on a veth pair, ``10.231.N.2``; the root-namespace end is ``10.231.N.1``), so the host is really
reached over a network. When namespaces cannot be made it falls back to sshd on a loopback port
and says so (``SSHHost.note``); ``RUNYARD_TEST_SSH_LOOPBACK=1`` forces that fallback.

sshd runs in a private mount namespace where ``/etc/passwd``, ``/etc/shadow`` and ``/etc/group``
are copies holding one extra user (``ryhost``, a free uid, home under the test folder), so
password authentication works without touching this machine's accounts. In that namespace a
1 MiB tmpfs is mounted at ``SSHHost.tiny_dir`` (a full disk that only the host sees).

The host reaches the package registries the way hosts behind a corporate proxy do: sshd gives
its sessions ``HTTPS_PROXY`` pointing at a small CONNECT proxy (port 443 only) that this module
runs on the root-namespace end of the veth. Sessions get ``PATH=/usr/bin:/bin`` (python3, no
uv); a second port (``nopython_port``) gives them a PATH without python.

Needs root, ``sshd``, ``ssh-keygen``, ``ip``, ``unshare``, ``mount`` and ``openssl``
(scripts/test installs openssh-server, iproute2 and openssl).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import random
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

USER = "ryhost"
_SERIAL = itertools.count()
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE")
SSHD = "/usr/sbin/sshd"


def missing_tools() -> list[str]:
    """What this machine lacks to run a test host (empty when it can)."""
    out = [] if os.geteuid() == 0 else ["root"]
    for tool in (SSHD, "ssh-keygen", "ssh", "ip", "unshare", "mount", "openssl"):
        if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool)):
            out.append(tool)
    return out


class ConnectProxy:
    """An HTTP CONNECT proxy to port 443 only (bounded: daemon threads, idle timeout)."""

    def __init__(self, bind: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((bind, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{bind}:{self.port}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="ry-proxy").start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = client.recv(4096)
                if not data:
                    return
                head += data
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) < 2 or parts[0] != b"CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, _, port = parts[1].decode().rpartition(":")
            if port != "443" or not host:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                return
            upstream = socket.create_connection((host, 443), timeout=30)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            socks = [client, upstream]
            while not self._stop.is_set():
                ready, _, _ = select.select(socks, [], [], 120)
                if not ready:
                    return  # idle
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class SSHHost:
    """A running test host (see the module docs)."""

    base: Path
    address: str
    port: int
    nopython_port: int
    username: str
    uid: int
    password: str
    key_file: Path
    enc_key_file: Path
    passphrase: str
    known_hosts: Path
    host_key_line: str
    home: Path
    tiny_dir: Path
    netns: str | None
    veth: str | None
    sshd_pid: int
    proxy: ConnectProxy
    note: str
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def workdir(self) -> str:
        return f"{self.home}/.runyard"

    def session_pids(self) -> list[int]:
        """sshd's per-connection processes: the listener's children (the privileged monitor
        of each connection) and their sshd children (the unprivileged side holding the
        socket). Commands started in a session are not sshd processes and are not listed."""
        parents: dict[int, int] = {}
        names: dict[int, bytes] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            parents[int(entry)] = int(fields[1])
            names[int(entry)] = stat[stat.find(b"(") + 1:stat.rfind(b")")]
        out = [p for p, pp in parents.items() if pp == self.sshd_pid]
        out += [p for p, pp in parents.items() if pp in out and names[p].startswith(b"sshd")]
        return out

    def kill_sessions(self) -> list[int]:
        """SIGKILL every SSH session process: every connection to the host drops."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}/stat") and
                                                  _state(p) not in ("Z", "X") for p in pids):
            time.sleep(0.01)
        return pids

    def user_pids(self) -> list[int]:
        """Processes running as the host's user (runners, scripts, session children)."""
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        out.append(int(entry))
        return out

    def ssh_argv(self, *command: str, port: int | None = None) -> list[str]:
        """An OpenSSH client command line (key auth) running ``command`` on the host."""
        return ["ssh", "-q", "-i", str(self.key_file), "-p", str(port or self.port),
                "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", f"{self.username}@{self.address}",
                *command]

    def pause(self) -> None:
        """Make the host unreachable: an ``unreachable`` route for its address (packets to it
        fail here at once and never leave this machine); on loopback, sshd is stopped."""
        if self.netns:
            _run(["ip", "route", "add", "unreachable", f"{self.address}/32"])
        else:
            os.kill(self.sshd_pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.netns:
            subprocess.run(["ip", "route", "del", "unreachable", f"{self.address}/32"],
                           capture_output=True, check=False)
        else:
            os.kill(self.sshd_pid, signal.SIGCONT)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return "X"
    return stat[stat.rfind(b")") + 2:].split()[0].decode()


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60,
                          **kw)  # type: ignore[call-overload]


def _free_uid() -> int:
    for uid in range(47100, 48000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise RuntimeError("no free uid")


def _used_subnets() -> set[int]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                         check=False).stdout
    used = set()
    for word in out.split():
        if word.startswith("10.231."):
            with contextlib.suppress(ValueError, IndexError):
                used.add(int(word.split(".")[2]))
    return used


def _make_netns(tag: str) -> tuple[str, str, str, str]:
    """(namespace, root-side veth, root-side address, host address)."""
    used = _used_subnets()
    n = random.choice([i for i in range(1, 254) if i not in used])
    ns, a, b = f"ryssh-{tag}", f"ry{tag}a", f"ry{tag}b"
    try:
        _run(["ip", "netns", "add", ns])
        _run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        _run(["ip", "link", "set", b, "netns", ns])
        _run(["ip", "addr", "add", f"10.231.{n}.1/24", "dev", a])
        _run(["ip", "link", "set", a, "up"])
        _run(["ip", "netns", "exec", ns, "ip", "addr", "add", f"10.231.{n}.2/24", "dev", b])
        _run(["ip", "netns", "exec", ns, "ip", "link", "set", b, "up"])
        _run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
    except (subprocess.CalledProcessError, OSError):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", a], capture_output=True, check=False)
        raise
    return ns, a, f"10.231.{n}.1", f"10.231.{n}.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sweep_stale_hosts() -> None:
    """Remove what test hosts of killed test processes left (their sshd, namespace, files)."""
    for base in Path(tempfile.gettempdir()).glob("runyard-sshhost-*"):
        try:
            owner, netns = (base / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if os.path.exists(f"/proc/{owner}"):
            continue
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            pid = int((base / "sshd.pid").read_text())
            if str(base).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        if netns != "-":
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def start_host(password: str = "pw-Test-1234", passphrase: str = "pp-Test-5678") -> SSHHost:
    """Start a test host; call :func:`stop_host` when done."""
    lacking = missing_tools()
    if lacking:
        raise RuntimeError(f"cannot start a test SSH host: missing {', '.join(lacking)}")
    sweep_stale_hosts()
    base = Path(tempfile.mkdtemp(prefix="runyard-sshhost-"))
    base.chmod(0o755)
    tag = f"{os.getpid() % 100000:05d}{next(_SERIAL) % 100:02d}"
    uid = _free_uid()
    home = base / "home" / USER
    home.mkdir(parents=True)
    os.chown(home, uid, uid)
    tiny = base / "tiny"
    tiny.mkdir()
    etc = base / "etc"
    etc.mkdir()
    hashed = _run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n").stdout.strip()
    (etc / "passwd").write_text(Path("/etc/passwd").read_text()
                                + f"{USER}:x:{uid}:{uid}:runyard test host:{home}:/bin/sh\n")
    (etc / "group").write_text(Path("/etc/group").read_text() + f"{USER}:x:{uid}:\n")
    (etc / "shadow").write_text(Path("/etc/shadow").read_text()
                                + f"{USER}:{hashed}:19000:0:99999:7:::\n")
    (etc / "shadow").chmod(0o640)
    keys = base / "keys"
    keys.mkdir()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ry-host", "-f",
          str(keys / "hostkey")])
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ry-client", "-f",
          str(keys / "client")])
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "ry-enc", "-f",
          str(keys / "client-enc")])
    auth = base / "auth"
    auth.mkdir()
    (auth / USER).write_text((keys / "client.pub").read_text()
                             + (keys / "client-enc.pub").read_text())
    netns = veth = None
    note = ""
    try:
        if os.environ.get("RUNYARD_TEST_SSH_LOOPBACK"):
            raise OSError("RUNYARD_TEST_SSH_LOOPBACK is set")
        netns, veth, proxy_bind, address = _make_netns(tag)
        port, nopy = 22, 2222
        note = f"test SSH host: sshd in network namespace {netns} at {address}:{port}"
    except (subprocess.CalledProcessError, OSError) as exc:
        err = getattr(exc, "stderr", "") or str(exc)
        proxy_bind, address = "127.0.0.1", "127.0.0.1"
        port, nopy = _free_port(), _free_port()
        note = (f"FALLBACK: network namespaces cannot be made here ({err.strip()}); the test "
                f"SSH host is sshd on loopback {address}:{port}")
    (base / "owner").write_text(f"{os.getpid()} {netns or '-'}\n")
    proxy = ConnectProxy(proxy_bind)
    pidfile = base / "sshd.pid"
    # the CA settings of this machine travel too (a proxy that inspects TLS needs its CA)
    ca = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                  if k in CA_VARIABLES and v and " " not in v)
    env_line = (f"PATH=/usr/bin:/bin HTTPS_PROXY={proxy.url} https_proxy={proxy.url} "
                f"LANG=C.UTF-8 {ca}").strip()
    nopy_bin = base / "nopython-bin"  # a PATH with the basic tools but no python
    nopy_bin.mkdir()
    for tool in ("sh", "uname", "env", "cat", "ls", "mkdir"):
        found = shutil.which(tool, path="/usr/bin:/bin")
        if found:
            (nopy_bin / tool).symlink_to(found)
    cfg = base / "sshd_config"
    cfg.write_text(f"""\
Port {port}
Port {nopy}
ListenAddress {address}
HostKey {keys / 'hostkey'}
PidFile {pidfile}
AuthorizedKeysFile {auth}/%u
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
UsePAM no
StrictModes no
MaxStartups 100
MaxSessions 100
ClientAliveInterval 0
LogLevel VERBOSE
Subsystem sftp internal-sftp
SetEnv {env_line}
Match LocalPort {nopy}
    SetEnv PATH={nopy_bin} HTTPS_PROXY={proxy.url}
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    log = base / "sshd.log"
    script = (f"set -e; mount --bind {etc}/passwd /etc/passwd; "
              f"mount --bind {etc}/shadow /etc/shadow; mount --bind {etc}/group /etc/group; "
              f"mount -t tmpfs -o size=1m,mode=1777 ry-tiny {tiny}; "
              f"exec {SSHD} -f {cfg} -E {log}")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    try:
        _run([*prefix, "unshare", "--mount", "--propagation", "private", "sh", "-c", script])
        deadline = time.monotonic() + 10
        # sshd creates the pid file before it writes the pid: wait for both
        while time.monotonic() < deadline and not (
                pidfile.exists() and pidfile.read_text().strip()):
            time.sleep(0.02)
        sshd_pid = int(pidfile.read_text().strip())
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((address, port),
                                                                        timeout=1):
                break
            time.sleep(0.05)
    except BaseException:
        proxy.close()
        if netns:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
        raise
    key_line = (keys / "hostkey.pub").read_text().split()
    name = address if port == 22 else f"[{address}]:{port}"
    known = base / "known_hosts"
    known.write_text(f"{name} {key_line[0]} {key_line[1]}\n"
                     f"[{address}]:{nopy} {key_line[0]} {key_line[1]}\n")
    return SSHHost(base=base, address=address, port=port, nopython_port=nopy, username=USER,
                   uid=uid, password=password, key_file=keys / "client",
                   enc_key_file=keys / "client-enc", passphrase=passphrase, known_hosts=known,
                   host_key_line=f"{key_line[0]} {key_line[1]}", home=home, tiny_dir=tiny,
                   netns=netns, veth=veth, sshd_pid=sshd_pid, proxy=proxy, note=note, log=log)


def stop_host(host: SSHHost) -> None:
    """Stop sshd, everything the host's user runs, the proxy; remove the namespace and files."""
    host.resume()
    for pid in [host.sshd_pid, *host.session_pids(), *host.user_pids()]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    host.proxy.close()
    if host.netns:
        subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False)
        if host.veth:
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True, check=False)
    deadline = time.monotonic() + 5
    while host.user_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(host.base, ignore_errors=True)


@contextlib.contextmanager
def running_host(purpose: str, **kw: str) -> Iterator[SSHHost]:
    """A started test host for a module fixture: fails (never skips) naming what is missing
    for ``purpose``; closes runyard's SSH connection pool and stops the host afterwards."""
    import pytest

    from runyard.compute.remote.ssh.connection import POOL

    lacking = missing_tools()
    if lacking:
        pytest.fail(f"{purpose} need(s) {', '.join(lacking)} (scripts/test installs "
                    "openssh-server, iproute2 and openssl; run as root)", pytrace=False)
    h = start_host(**kw)
    try:
        yield h
    finally:
        POOL.close_all()
        stop_host(h)
