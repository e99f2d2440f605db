"""A canary search over every sink (issue 10, point 7): no secret reaches anything runyard
writes, prints or hands to a script.

Unique canaries are planted where secrets really live:

* ``RUNYARD_SECRET_KEY`` in the submitter's environment (a real Fernet key: the secrets below
  are encrypted with it);
* a ``RUNYARD_*`` variable holding a database URL with a password (scrubbing must drop it; it
  does not change which database the workspace uses);
* the password of a real SSH host (a target attached with it through the CLI, password on
  standard input) and the passphrase of an encrypted private key (a target attached with it
  through the SDK), plus a line of the key material itself;
* a wrong password given to a failing attach (SDK and CLI).

Then a local run and a remote run execute a script that dumps its environment (outputs, logs,
driver log) and waits; the CLI lists and shows everything; reprs are taken. Every canary is
searched for in: every file of the workspace folder (SQLite database, WAL and SHM included,
the reconciler's log, spools, artifacts), the files of runyard's folder on the host, files
downloaded with ``runyard run download``, the captured stdout/stderr of every CLI command, the
reprs and details of the SDK objects, the attach errors, Python's log records, the command
line of every process on this machine and the environment of the runs' script processes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from sshhost import SSHHost, running_host  # noqa: E402

import runyard  # noqa: E402
from runyard import (  # noqa: E402
    Experiment,
    Run,
    RunConfiguration,
    ScriptRunConfig,
    Workspace,
)
from runyard.computetarget import ComputeTarget, RemoteCompute  # noqa: E402
from runyard.errors import ComputeTargetInvalid  # noqa: E402
from runyard.runtime import procmarks  # noqa: E402
from runyard.secrets import ENV_CONFIG_HOME, ENV_SECRET_KEY  # noqa: E402
from support import wait_for  # noqa: E402

SRC = str(Path(runyard.__file__).resolve().parents[1])
CANARY_KEY = Fernet.generate_key().decode()
CANARY_DB_PW = "CANARYdbpw9c41e7"
CANARY_URL_VAR = "RUNYARD_CANARY_ARCHIVE_URL"
CANARY_SSH_PW = "CANARYsshpw2d8f05"
CANARY_PASSPHRASE = "CANARYpassphrase6a3b1"
CANARY_WRONG_PW = "CANARYwrongpw71c9d"
#: Not a secret: proves that the dumped environment is the submitter's (scrubbed) one.
CONTROL_VAR, CONTROL_VALUE = "RY_CANARY_CONTROL", "visible-e5b2"

DUMP = """
    import json, os, sys, time
    env = dict(os.environ)
    os.makedirs("outputs", exist_ok=True)
    os.makedirs("logs", exist_ok=True)
    for name in ("outputs/env.json", "logs/env.json"):
        with open(name, "w") as fh:
            json.dump(env, fh)
    print("ENV", json.dumps(env), flush=True)
    print("dumped", flush=True)
    deadline = time.time() + 60
    while not os.path.exists("release") and time.time() < deadline:
        time.sleep(0.05)
    print("released", flush=True)
"""


class Sinks:
    """Texts and files searched for every canary, and what was found."""

    def __init__(self, canaries: dict[str, str]) -> None:
        self.canaries = canaries
        self.counts: dict[str, int] = {}   # sink kind -> items searched
        self.bytes: dict[str, int] = {}
        self.found: list[tuple[str, str, str]] = []  # (kind, where, canary name)

    def text(self, kind: str, where: str, data: str | bytes) -> None:
        raw = data if isinstance(data, bytes) else data.encode(errors="surrogateescape")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.bytes[kind] = self.bytes.get(kind, 0) + len(raw)
        for name, value in self.canaries.items():
            if value.encode() in raw:
                self.found.append((kind, where, name))

    def files(self, kind: str, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.text(kind, str(path), path.read_bytes())

    def table(self) -> str:
        rows = [f"{'sink':<34} {'searched':>8} {'bytes':>10} {'canaries found':>15}"]
        for kind in self.counts:
            hits = sum(1 for k, _, _ in self.found if k == kind)
            rows.append(f"{kind:<34} {self.counts[kind]:>8} {self.bytes[kind]:>10} {hits:>15}")
        rows.append(f"{'total':<34} {sum(self.counts.values()):>8} "
                    f"{sum(self.bytes.values()):>10} {len(self.found):>15}")
        rows.append(f"canaries: {', '.join(self.canaries)}")
        return "\n".join(rows)


@pytest.fixture(scope="module")
def host() -> Iterator[SSHHost]:
    with running_host("the canary search (a test SSH host)", password=CANARY_SSH_PW,
                      passphrase=CANARY_PASSPHRASE) as h:
        yield h



def _proc_bytes(pid: str, what: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes()
    except OSError:
        return b""


def driver_log(ws: Workspace, run: Run) -> str:
    """The run's driver log as pulled so far (reading the status pulls a remote run's)."""
    run.get_status()
    path = ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt"
    return path.read_text(errors="replace") if path.is_file() else ""


def logged(ws: Workspace, run: Run, text: str) -> bool:
    """Whether the run's driver log (as pulled so far) holds ``text``."""
    return text in driver_log(ws, run)


def marked_scripts(run_id: str) -> list[str]:
    """Pids (as text) of the processes carrying the run's marker: its script's processes."""
    entry = f"{procmarks.ENV_RUN_MARKER}={procmarks.run_marker(run_id, 1)}".encode()
    return [p for p in os.listdir("/proc")
            if p.isdigit() and entry in _proc_bytes(p, "environ").split(b"\0")]


def test_no_canary_reaches_any_sink(tmp_path: Path, host: SSHHost,
                                    monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)  # paramiko's debug log included
    key_material = host.key_file.read_text().splitlines()[1]  # a line of a private key
    canaries = {"RUNYARD_SECRET_KEY": CANARY_KEY, "db URL password": CANARY_DB_PW,
                "ssh password": CANARY_SSH_PW, "key passphrase": CANARY_PASSPHRASE,
                "wrong password": CANARY_WRONG_PW, "private key line": key_material}
    sinks = Sinks(canaries)
    # the search itself finds a planted canary (so a zero below means something)
    probe = Sinks(canaries)
    probe.text("probe", "planted", f"x{CANARY_DB_PW}y".encode())
    assert [name for _, _, name in probe.found] == ["db URL password"]

    monkeypatch.setenv(ENV_CONFIG_HOME, str(tmp_path / "config"))
    monkeypatch.setenv(ENV_SECRET_KEY, CANARY_KEY)
    monkeypatch.setenv(CANARY_URL_VAR, f"postgresql://runyard:{CANARY_DB_PW}@127.0.0.1:1/ry")
    monkeypatch.setenv(CONTROL_VAR, CONTROL_VALUE)
    root = tmp_path / "ws"
    ws = Workspace.create("canaries", root)
    wsdir = str(root)
    cli_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}

    def cli(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        proc = subprocess.run([sys.executable, "-m", "runyard.cli", "-w", wsdir, *args],
                              input=stdin, env=cli_env, capture_output=True, text=True,
                              timeout=180, check=False)
        assert (proc.returncode == 0) == ok, (args, proc.returncode, proc.stdout, proc.stderr)
        sinks.text("CLI stdout/stderr", " ".join(args), proc.stdout + "\n" + proc.stderr)
        return proc.stdout + proc.stderr

    # -- targets: a failing attach, a password target (CLI), a passphrase target (SDK) -------
    wrong = RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        password=CANARY_WRONG_PW, known_hosts_file=str(host.known_hosts))
    sinks.text("reprs and details", "attach configuration", repr(wrong) + str(wrong))
    with pytest.raises(ComputeTargetInvalid, match="wrong password") as err:
        ComputeTarget.attach(ws, "bad", wrong)
    sinks.text("error messages", "SDK attach, wrong password",
               f"{err.value}\n{err.value!r}\n{json.dumps(err.value.to_dict())}")
    out = cli("compute", "attach", "bad", "--kind", "remote", "--address", host.address,
              "--ssh-port", str(host.port), "--username", host.username, "--password-stdin",
              "-p", f"known_hosts_file={host.known_hosts}", stdin=CANARY_WRONG_PW + "\n",
              ok=False)
    assert "wrong password" in out
    sinks.text("error messages", "CLI attach, wrong password", out)
    cli("compute", "attach", "pw-box", "--kind", "remote", "--address", host.address,
        "--ssh-port", str(host.port), "--username", host.username, "--password-stdin",
        "-p", f"known_hosts_file={host.known_hosts}", stdin=CANARY_SSH_PW + "\n")
    assert set(ws.store.get_secrets("compute/pw-box")) == {"password"}
    key_target = ComputeTarget.attach(ws, "key-box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(host.enc_key_file), private_key_passphrase=CANARY_PASSPHRASE,
        known_hosts_file=str(host.known_hosts)))
    assert set(ws.store.get_secrets("compute/key-box")) == {"private_key",
                                                             "private_key_passphrase"}
    clear_key = ComputeTarget.attach(ws, "clear-key-box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(host.key_file), known_hosts_file=str(host.known_hosts)))

    # -- a local run and a remote run that dump their environment and wait ---------------------
    src = tmp_path / "project"
    src.mkdir()
    (src / "dump.py").write_text(textwrap.dedent(DUMP))
    rc = RunConfiguration()
    rc.environment.environment_variables = {"RY_RUN_VAR": "plain"}
    runs = {"local": Experiment(ws, "canary").submit(
                ScriptRunConfig(str(src), "dump.py", run_config=rc)),
            "remote (password)": Experiment(ws, "canary").submit(
                ScriptRunConfig(str(src), "dump.py", compute_target="pw-box"))}
    runs["remote (passphrase key)"] = Experiment(ws, "canary").submit(
        ScriptRunConfig(str(src), "dump.py", compute_target="key-box"))
    for label, run in runs.items():
        pids = wait_for(partial(marked_scripts, run.id), 120, f"{label}: its script")
        wait_for(partial(logged, ws, run, "dumped"), 120, f"{label}: the dump")
        for pid in pids:  # the live script: its environment as the kernel holds it
            sinks.text("script process environ", f"{label} pid {pid}",
                       _proc_bytes(pid, "environ"))
        # every process's command line on this machine (the host's included) while it runs
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            sinks.text("process command lines", pid, _proc_bytes(pid, "cmdline"))
        handle = ws.store.get_run(run.id).handle  # type: ignore[union-attr]
        if label == "local":  # a script can read its parent's environ: the runner's
            assert handle is not None
            runner_env = _proc_bytes(str(handle["pid"]), "environ")
            assert b"RUNYARD_" in runner_env  # it is the live runner's
            sinks.text("runner process environ", f"{label} pid {handle['pid']}", runner_env)
        cwd = os.readlink(f"/proc/{pids[0]}/cwd")
        Path(cwd, "release").write_text("go")
    for label, run in runs.items():
        assert run.wait_for_completion(timeout=120)["status"] == "Completed", label
        assert logged(ws, run, "released"), label

    # the dumps are real: the script's own environment
    for label, run in runs.items():
        got = Path(run.download_file("outputs/env.json", str(tmp_path / "dl" / run.id)))
        env = json.loads(got.read_text())
        assert env["RUNYARD_RUN_ID"] == run.id, label
        assert ENV_SECRET_KEY not in env and CANARY_URL_VAR not in env, label
        sinks.text("script environment dumps", f"{label} outputs/env.json", got.read_bytes())
    local_env = json.loads((ws.run_dir(runs["local"].id) / "artifacts/logs/env.json")
                           .read_text())
    assert local_env[CONTROL_VAR] == CONTROL_VALUE  # the submitter's env did reach the script
    assert local_env["RY_RUN_VAR"] == "plain"
    assert os.environ[ENV_SECRET_KEY] == CANARY_KEY  # and it held the canaries

    # -- the CLI over everything ------------------------------------------------------------
    cli("compute", "list")
    for name in ("pw-box", "key-box", "clear-key-box"):
        cli("compute", "show", name)
        cli("compute", "show", name, "--json")
        cli("compute", "status", name)
    cli("run", "list")
    for run in runs.values():
        cli("run", "show", run.id)
        cli("run", "logs", run.id)
        dl = tmp_path / "downloads" / run.id
        cli("run", "download", run.id, "-o", str(dl))
        sinks.files("downloaded run files", dl)

    # -- reprs and details of the SDK objects -----------------------------------------------
    for obj in (ws, key_target, clear_key, ws.compute_targets.get("pw-box"), rc,
                *runs.values(), Run.get(ws, runs["remote (password)"].id)):
        sinks.text("reprs and details", type(obj).__name__, f"{obj!r}\n{obj}")
    for target in (key_target, clear_key):
        sinks.text("reprs and details", f"{target.name} serialize",
                   json.dumps(target.serialize(), default=str))
    for run in runs.values():
        sinks.text("reprs and details", f"{run.id} details",
                   json.dumps(run.get_details(), default=str)
                   + json.dumps(run.get_metrics(), default=str))
    ws.close()

    # -- files: the workspace folder (database, WAL, reconciler log, runs), the host's folder
    sinks.files("workspace folder files", root)  # runyard.db, -wal, -shm when present
    assert (root / ".runyard" / "runyard.db").is_file()
    assert (root / ".runyard" / "reconciler.log").is_file()  # the detached reconciler's log
    sinks.files("SSH host's runyard folder", Path(host.workdir))
    captured = capsys.readouterr()
    sinks.text("Python logging and stdout", "captured", captured.out + captured.err)
    sinks.text("Python logging and stdout", "log records",
               caplog.text + "\n".join(r.getMessage() for r in caplog.records))

    with capsys.disabled():
        print("\n[runyard canary search]\n" + sinks.table())
    assert not sinks.found, sinks.found
    assert sinks.counts["workspace folder files"] > 10
    assert sinks.counts["script process environ"] >= len(runs)
