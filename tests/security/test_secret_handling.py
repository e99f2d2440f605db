"""Secrets: scrubbed from every script environment, never taken from the command line, and a
key file that is missing, replaced or open to others is a clear error. Real runs, real files,
real subprocesses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from runyard import Experiment, InvalidParameter, ScriptRunConfig, Workspace
from runyard.cli.main import cli as cli_main
from runyard.runtime import jobwire
from runyard.runtime.bundle import write_bundle
from runyard.runtime.envscrub import SECRET_ENV_NAMES, scrub
from runyard.secrets import ENV_CONFIG_HOME, ENV_SECRET_KEY, SecretBox, SecretError

CANARY_KEY = Fernet.generate_key().decode()  # a real key: a canary that also works as one
CANARY_PW = "CANARY-db-pw-4b1d"
CANARY_DB_URL = f"postgresql://runyard:{CANARY_PW}@127.0.0.1:1/runyard"
DUMP_ENV = """\
import json, os
os.makedirs("outputs", exist_ok=True)
json.dump(dict(os.environ), open("outputs/env.json", "w"))
print("dumped", len(os.environ), flush=True)
"""


@pytest.fixture(autouse=True)
def _key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv(ENV_CONFIG_HOME, str(home))
    monkeypatch.delenv(ENV_SECRET_KEY, raising=False)
    return home


def assert_no_canary(text: str) -> None:
    for canary in (CANARY_KEY, CANARY_PW):
        assert canary not in text


# -- the scrub itself ----------------------------------------------------------------------------
def test_scrub_removes_credentials_and_keeps_the_rest() -> None:
    env = {"RUNYARD_SECRET_KEY": CANARY_KEY, "RUNYARD_DATABASE_URL": CANARY_DB_URL,
           "RUNYARD_ARCHIVE_URL": f"s3://k:{CANARY_PW}@bucket/x",
           "RUNYARD_API_TOKEN": "t", "RUNYARD_SSH_PASSWORD": "p",
           "MY_DEPLOYMENT_SECRET": "d",
           "RUNYARD_DATABASE_HOST_URL": "postgresql://runyard@db/runyard",
           "RUNYARD_RUN_ID": "exp_1_ab", "RUNYARD_SPOOL_DIR": "/x", "PATH": "/usr/bin",
           "DATABASE_URL": "postgresql://u:own@db/app"}
    out = scrub(env, extra_names=["MY_DEPLOYMENT_SECRET"])
    assert out == {"RUNYARD_DATABASE_HOST_URL": "postgresql://runyard@db/runyard",
                   "RUNYARD_RUN_ID": "exp_1_ab", "RUNYARD_SPOOL_DIR": "/x",
                   "PATH": "/usr/bin", "DATABASE_URL": "postgresql://u:own@db/app"}
    assert {"RUNYARD_SECRET_KEY", "RUNYARD_DATABASE_URL"} <= SECRET_ENV_NAMES


def test_script_env_never_carries_credentials() -> None:
    job = {"env": {"RUNYARD_SECRET_KEY": CANARY_KEY, "RUNYARD_DATABASE_URL": CANARY_DB_URL,
                   "MODE": "fast"}, "experiment": "e", "attempt": 1}
    env = jobwire.script_env(job, run_id="e_1_a", spool_dir="/s", artifacts_dir="/a",
                             bundle_dir="/b", extra={"RUNYARD_X_TOKEN": "t"})
    assert env["MODE"] == "fast" and env[jobwire.ENV_RUN_ID] == "e_1_a"
    assert_no_canary(json.dumps(env))
    assert "RUNYARD_X_TOKEN" not in env


def test_the_runtime_bundle_carries_the_scrub(tmp_path: Path) -> None:
    """Remote hosts and Ray workers import the runner from the bundle alone."""
    root = write_bundle(tmp_path / "bundle")
    assert (root / "runyard" / "runtime" / "envscrub.py").is_file()


# -- canaries in real runs -----------------------------------------------------------------------
def test_canary_secret_key_never_reaches_a_local_run(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET_KEY, CANARY_KEY)
    monkeypatch.setenv("RUNYARD_CANARY_STORE_URL", CANARY_DB_URL)  # a RUNYARD_* URL w/ password
    ws = Workspace.create("canary", tmp_path / "ws", max_concurrent_runs=2)
    src = tmp_path / "project"
    src.mkdir()
    (src / "dump.py").write_text(DUMP_ENV)
    run = Experiment(ws, "canary").submit(ScriptRunConfig(str(src), "dump.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    dumped = Path(run.download_file("outputs/env.json", str(tmp_path / "env.json")))
    env = json.loads(dumped.read_text())
    assert env["RUNYARD_RUN_ID"] == run.id  # the dump is the script's real environment
    assert ENV_SECRET_KEY not in env and "RUNYARD_CANARY_STORE_URL" not in env
    assert_no_canary(dumped.read_text())
    for path in ws.run_dir(run.id).rglob("*"):  # nor any file of the run
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert CANARY_KEY.encode() not in data and CANARY_PW.encode() not in data, path
    ws.close()


def test_canary_never_reaches_the_script_from_the_runners_environment(tmp_path: Path) -> None:
    """The remote and cluster paths: the runner starts from the runtime bundle alone, in an
    environment (an SSH session, a Ray worker) that may carry runyard's credentials."""
    bundle = write_bundle(tmp_path / "bundle")
    run_dir = tmp_path / "run"
    wd, artifacts, spool = run_dir / "wd", run_dir / "artifacts", run_dir / "spool"
    for d in (wd, artifacts, spool):
        d.mkdir(parents=True)
    (wd / "dump.py").write_text(DUMP_ENV)
    job = {"run_id": "canary_1_ab", "attempt": 1, "experiment": "canary",
           "command": [sys.executable, "dump.py"], "env": {"MODE": "x"}}
    env = jobwire.script_env(job, run_id="canary_1_ab", spool_dir=str(spool),
                             artifacts_dir=str(artifacts), bundle_dir=str(bundle))
    runner = jobwire.runner_job(job, run_id="canary_1_ab", workdir=str(wd),
                                artifacts_dir=str(artifacts), spool_dir=str(spool), env=env)
    (run_dir / "job.json").write_text(json.dumps(runner))
    host_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(bundle),
                ENV_SECRET_KEY: CANARY_KEY, "RUNYARD_DATABASE_URL": CANARY_DB_URL}
    proc = subprocess.run([sys.executable, "-m", "runyard.runtime.runner",
                           str(run_dir / "job.json")], cwd=run_dir, env=host_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (artifacts / "system_logs" / "driver_log.txt").read_text()
    assert "dumped" in log, log
    dumped = json.loads((artifacts / "outputs" / "env.json").read_text())
    assert dumped["MODE"] == "x" and dumped["RUNYARD_RUN_ID"] == "canary_1_ab"
    assert ENV_SECRET_KEY not in dumped and "RUNYARD_DATABASE_URL" not in dumped
    assert_no_canary(json.dumps(dumped))


def test_credentials_are_refused_as_run_variables(tmp_path: Path) -> None:
    ws = Workspace.create("vars", tmp_path / "ws")
    src = tmp_path / "project"
    src.mkdir()
    (src / "dump.py").write_text(DUMP_ENV)
    for name, value in ((ENV_SECRET_KEY, CANARY_KEY), ("RUNYARD_DATABASE_URL", CANARY_DB_URL),
                        ("RUNYARD_BACKUP_URL", CANARY_DB_URL)):
        cfg = ScriptRunConfig(str(src), "dump.py")
        cfg.run_config.environment.environment_variables[name] = value
        with pytest.raises(InvalidParameter, match="never passed to a script") as info:
            Experiment(ws, "vars").submit(cfg)
        assert_no_canary(str(info.value))
    ws.close()


# -- passwords are never command-line values -----------------------------------------------------
@pytest.mark.parametrize("args", [
    ["-p", f"password={CANARY_PW}"],
    ["--param", f"private_key_passphrase={CANARY_PW}"],
    ["-p", f"private-key={CANARY_PW}"],
    ["--password", CANARY_PW],
])
def test_cli_refuses_a_password_on_the_command_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    args: list[str]) -> None:
    ws = Workspace.create("cli", tmp_path / "ws")
    monkeypatch.chdir(ws.path)
    res = CliRunner().invoke(cli_main, ["compute", "attach", "box", "--kind", "remote",
                                        "--address", "127.0.0.1", "--ssh-port", "1",
                                        "--username", "me", *args])
    assert res.exit_code == 2, res.output
    assert "never accepted" in res.output and "command-line" in res.output
    assert "--password-stdin" in res.output or "--passphrase-stdin" in res.output \
        or "--private-key-file" in res.output
    assert CANARY_PW not in res.output
    assert ws.store.list_compute_targets() == []
    ws.close()


def test_cli_reads_password_and_passphrase_from_stdin(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.create("cli", tmp_path / "ws")
    monkeypatch.chdir(ws.path)
    res = CliRunner().invoke(cli_main, ["compute", "attach", "box", "--kind", "remote",
                                        "--address", "127.0.0.1", "--ssh-port", "1",
                                        "--username", "me", "--password-stdin",
                                        "--passphrase-stdin"],
                             input=f"{CANARY_PW}\n{CANARY_PW}-pp\n")
    assert res.exit_code == 2 and "cannot reach 127.0.0.1" in res.output, res.output
    assert CANARY_PW not in res.output
    ws.close()


# -- the key file --------------------------------------------------------------------------------
def test_a_key_file_open_to_others_is_refused(_key_home: Path) -> None:
    SecretBox()
    key = _key_home / "secret.key"
    for mode in (0o644, 0o640, 0o604, 0o660):
        key.chmod(mode)
        with pytest.raises(SecretError, match=rf"chmod 600 {key}"):
            SecretBox()
    key.chmod(0o600)
    SecretBox()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_missing_key_file_is_an_error_never_a_silent_new_key(_key_home: Path) -> None:
    token = SecretBox().encrypt(CANARY_PW)
    key = _key_home / "secret.key"
    backup = key.read_bytes()
    key.unlink()
    with pytest.raises(SecretError) as info:
        SecretBox()
    message = str(info.value)
    assert "missing" in message and "restore" in message and str(key) in message
    assert not key.exists()  # no new key in its place
    key.write_bytes(backup)  # restoring the file as the message says
    key.chmod(0o600)
    assert SecretBox().decrypt(token).reveal() == CANARY_PW


def test_a_replaced_key_file_says_so_and_how_to_restore_it(_key_home: Path) -> None:
    token = SecretBox().encrypt(CANARY_PW)
    for f in _key_home.iterdir():  # the whole config folder lost: a new key gets made
        f.unlink()
    with pytest.raises(SecretError) as info:
        SecretBox().decrypt(token)
    message = str(info.value)
    assert "deleted or replaced" in message and "restore" in message
    assert CANARY_PW not in message
