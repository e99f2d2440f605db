"""Azurite (the Azure Storage emulator) for the blob datastore tests and benchmark.

``start_azurite(tmp)`` installs ``azurite@3`` into ``<repo>/.test-azurite`` with npm once
(cached; ``scripts/test`` does it up front), starts ``azurite-blob`` on a free loopback port and
returns an :class:`Azurite`; ``stop()`` ends that process by its pid. Missing node/npm is an
error with the fix, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AZURITE_DIR = REPO / ".test-azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
#: The emulator's documented well-known development account and key (public, not a secret).
ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")


def install_azurite() -> Path:
    """The ``azurite-blob`` executable, installed with npm when missing."""
    if AZURITE_BIN.exists():
        return AZURITE_BIN
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("the Azure Blob datastore tests need Azurite, installed with npm: "
                           "install Node.js >= 18 and npm (apt-get install nodejs npm), then "
                           "run scripts/test (or `npm install --prefix .test-azurite azurite@3`)")
    subprocess.run([npm, "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund",
                    "azurite@3"], check=True, capture_output=True, timeout=600)
    return AZURITE_BIN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Azurite:
    """A running Azurite blob service."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        """The account URL of the development account."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def service(self) -> object:
        """A ``BlobServiceClient`` on the development account."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(account_url=self.url,
                                 credential={"account_name": ACCOUNT, "account_key": KEY})

    def stop(self) -> None:
        """End the emulator (by its pid)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_azurite(location: Path) -> Azurite:
    """Start ``azurite-blob`` on a free loopback port with its data in ``location``."""
    exe = install_azurite()
    location.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen([str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                             "--location", str(location), "--silent", "--skipApiVersionCheck",
                             "--loose"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            Azurite(proc, port).stop()
            raise RuntimeError(f"azurite-blob exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Azurite(proc, port)
        except OSError:
            time.sleep(0.1)
    Azurite(proc, port).stop()
    raise RuntimeError("azurite-blob did not listen within 30 s")
