"""The ``remote`` kind against a real OpenSSH server in a network namespace (see sshhost.py).

Attach with key and password auth, run scripts there (user- and system-managed environments,
the bundled scikit-learn example), cut the SSH connection mid-run, reattach from a new process,
cancel, lose the host, and every bad input: wrong password, wrong passphrase, unreachable host,
refused host keys, no python, full disk, injection payloads. A canary password and passphrase
are searched for in every sink.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sshhost import SSHHost, running_host

from runyard import Environment, Experiment, Run, RunFailed, ScriptRunConfig, Workspace
from runyard.cli.main import cli as cli_main
from runyard.compute.procs import process_start_time
from runyard.compute.remote import RemoteAttachConfiguration
from runyard.compute.remote.ssh.connection import POOL
from runyard.computetarget import ComputeTarget, RemoteCompute
from runyard.errors import (
    ComputeTargetError,
    ComputeTargetInvalid,
    TargetUnavailable,
)
from support import write

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
EXAMPLE = ROOT / "examples" / "sklearn"


@pytest.fixture(scope="module")
def host(request: pytest.FixtureRequest) -> Iterator[SSHHost]:
    with running_host("the remote-kind tests") as h:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n[runyard] {h.note}")
        yield h


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    w = Workspace.create("remote-ws", tmp_path / "ws")
    yield w
    w.close()



def key_config(h: SSHHost, **more: Any) -> RemoteAttachConfiguration:
    settings: dict[str, Any] = {
        "address": h.address, "ssh_port": h.port, "username": h.username,
        "private_key_file": str(h.key_file), "known_hosts_file": str(h.known_hosts), **more}
    return RemoteCompute.attach_configuration(**settings)


def attach(ws: Workspace, h: SSHHost, name: str = "box", **more: Any) -> ComputeTarget:
    return ComputeTarget.attach(ws, name, key_config(h, **more))


def submit(ws: Workspace, src: Path, script: str, target: str = "box",
           **kw: Any) -> Run:
    return Experiment(ws, "remote-exp").submit(
        ScriptRunConfig(str(src), script, compute_target=target, **kw))


def wait_until(run: Run, pred: Any, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"{run.id}: timed out waiting for {what} (status "
                         f"{run.get_status()})")


def runner_alive(run: Run) -> bool:
    handle = run.workspace.store.get_run(run.id).handle  # type: ignore[union-attr]
    assert handle is not None
    return process_start_time(int(handle["pid"])) == handle["pid_start"]


def assert_nothing_stored(ws: Workspace) -> None:
    assert ws.store.list_compute_targets() == []
    for name in ("box", "bad"):
        assert ws.store.get_secrets(f"compute/{name}") == {}


PY_SMALL = """
    import os, sys, time
    from runyard import Run
    run = Run.get_context()
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    for i in range(steps):
        run.log("loss", 1.0 / (i + 1))
        print(f"step {i}", flush=True)
        time.sleep(pause)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as fh:
        fh.write("weights")
    os.makedirs("logs", exist_ok=True)
    with open("logs/extra.log", "w") as fh:
        fh.write("side log")
    run.tag("where", "remote")
    if os.path.exists("data/input.txt"):
        print("input", open("data/input.txt").read(), flush=True)
    print("uid", os.getuid(), "python", sys.executable, "cwd", os.getcwd(), flush=True)
"""


# -- attach and run -----------------------------------------------------------------------------
def test_key_attach_records_the_host_and_runs_a_script(ws: Workspace, host: SSHHost,
                                                       tmp_path: Path) -> None:
    target = attach(ws, host)
    cfg = target.config
    assert cfg["host_key"] == host.host_key_line
    assert cfg["python"] == "/usr/bin/python3" and cfg["workdir"] == host.workdir
    assert cfg["host_info"]["os"] == "Linux" and cfg["host_info"]["host_key_fingerprint"]
    assert target.get_status().provisioning_state == "Succeeded"
    stored = ws.store.get_secrets("compute/box")
    assert set(stored) == {"private_key"}  # the key itself, encrypted
    assert b"PRIVATE KEY" not in stored["private_key"]
    src = tmp_path / "project"
    write(src, "train.py", PY_SMALL)
    write(src, "data/input.txt", "x")
    run = submit(ws, src, "train.py", arguments=["4"])
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    assert [e["status"] for e in run.get_events()] == [
        "Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"]
    assert run.get_metrics()["loss"] == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    assert run.get_tags()["where"] == "remote"
    assert {"outputs/model.txt", "logs/extra.log", "system_logs/driver_log.txt"} <= \
        set(run.get_file_names())
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert "step 3" in log and f"uid {host.uid} python /usr/bin/python3" in log
    assert f"cwd {host.workdir}/runs/{run.id}/wd" in log  # ran on the host, in its run folder
    got = Path(run.download_file("outputs/model.txt", str(tmp_path / "model.txt")))
    assert got.read_text() == "weights"
    assert "input x" in log  # the code's data file reached the host's working copy
    # the host's working copy of the code is gone once the run ended; its artifacts stay
    assert not (Path(host.workdir) / "runs" / run.id / "wd").exists()
    # the code travels by content: an unchanged folder sends nothing, a changed file only it
    again = submit(ws, src, "train.py", arguments=["1"])
    assert again.wait_for_completion()["status"] == "Completed"
    assert ws.store.get_run(again.id).handle["uploaded_bytes"] == 0  # type: ignore[union-attr]
    write(src, "data/input.txt", "changed!")
    third = submit(ws, src, "train.py", arguments=["1"])
    third.wait_for_completion()
    assert ws.store.get_run(third.id).handle["uploaded_bytes"] == 8  # type: ignore[union-attr]


def test_password_attach_trusts_an_unknown_key_only_when_asked(ws: Workspace, host: SSHHost,
                                                               tmp_path: Path) -> None:
    base = {"address": host.address, "ssh_port": host.port, "username": host.username,
            "password": host.password, "known_hosts_file": str(tmp_path / "empty_known")}
    with pytest.raises(ComputeTargetInvalid, match=r"unknown .*SHA256:") as err:
        ComputeTarget.attach(ws, "box", RemoteCompute.attach_configuration(**base))
    assert err.value.field == "trust_unknown_host_key"
    assert_nothing_stored(ws)
    target = ComputeTarget.attach(ws, "box", RemoteCompute.attach_configuration(
        **base, trust_unknown_host_key=True))
    assert target.config["trust_unknown_host_key"] is True
    assert target.config["host_key"] == host.host_key_line
    assert set(ws.store.get_secrets("compute/box")) == {"password"}
    src = tmp_path / "p"
    write(src, "train.py", PY_SMALL)
    assert submit(ws, src, "train.py").wait_for_completion()["status"] == "Completed"
    target.update(unreachable_timeout_seconds=60)
    assert target.config["unreachable_timeout_seconds"] == 60
    with pytest.raises(ComputeTargetInvalid, match="updated"):
        target.update(address="elsewhere")
    target.detach()
    assert ws.store.list_compute_targets() == []


# -- the Done-when path: system-managed environment, connection cut mid-run ---------------------
def test_run_survives_cut_connection_with_system_managed_env(ws: Workspace, host: SSHHost,
                                                             tmp_path: Path) -> None:
    attach(ws, host)
    src = tmp_path / "project"
    write(src, "train.py", """
        import sys, time, six
        from runyard import Run
        run = Run.get_context()
        for i in range(24):
            run.log("acc", i / 24)
            print(f"epoch {i} six {six.__version__}", flush=True)
            time.sleep(0.25)
        print("finished", flush=True)
    """)
    write(tmp_path, "req.txt", "six==1.16.0\n")
    env = Environment.from_pip_requirements("six-env", tmp_path / "req.txt")
    run = submit(ws, src, "train.py", environment=env)
    wait_until(run, lambda: len(run.get_metrics().get("acc", [])) >= 3, 120, "3 metrics")
    killed = host.kill_sessions()  # cut every SSH connection of the workspace
    assert killed
    assert runner_alive(run)  # detached: the runner does not die with its SSH session
    details = run.wait_for_completion(timeout=120)
    assert details["status"] == "Completed"
    assert run.get_metrics()["acc"] == [pytest.approx(i / 24) for i in range(24)]
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert all(f"epoch {i} six 1.16.0" in log for i in range(24)) and "finished" in log
    props = run.get_properties()
    assert props["environment_build"] == "built"
    # uv was absent on the host: installed into runyard's folder there
    assert (Path(host.workdir) / "envs/.tools/uv/bin/uv").is_file()
    assert "installing it into" in log or "using cached" in log or "building" in log
    # the second run reuses the host's environment cache
    again = submit(ws, src, "train.py", environment=env)
    assert again.wait_for_completion(timeout=120)["status"] == "Completed"
    assert again.get_properties()["environment_build"] == "cached"
    assert again.get_properties()["environment_key"] == props["environment_key"]


def test_bundled_sklearn_example_with_cut_connections(ws: Workspace, host: SSHHost,
                                                      tmp_path: Path) -> None:
    attach(ws, host)
    src = tmp_path / "sklearn"
    shutil.copytree(EXAMPLE, src)
    write(tmp_path, "req.txt", "scikit-learn\n")
    env = Environment.from_pip_requirements("sklearn-env", tmp_path / "req.txt")
    run = submit(ws, src, "train.py", environment=env, arguments=["--folds", "10"])
    cuts: dict[str, int] = {}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = run.get_status()
        if status in ("Preparing", "Running") and status not in cuts:
            cuts[status] = len(host.kill_sessions())  # mid-build, then mid-script
        if status in ("Completed", "Failed", "Canceled", "NotResponding"):
            break
        time.sleep(0.05)
    assert "Preparing" in cuts, cuts
    details = run.wait_for_completion(timeout=60)
    assert details["status"] == "Completed"
    metrics = run.get_metrics()
    assert len(metrics["fold_accuracy"]) == 10 and metrics["mean_accuracy"] > 0.9
    assert metrics["folds"]["fold"] == list(range(10))
    assert "outputs/model.pkl" in run.get_file_names()
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert "mean accuracy over 10 folds" in log and "[runyard env]" in log
    assert (ws.run_dir(run.id) / "artifacts/outputs/model.pkl").stat().st_size > 0


def test_restarted_workspace_process_reattaches(ws: Workspace, host: SSHHost,
                                                tmp_path: Path) -> None:
    attach(ws, host)
    src = tmp_path / "p"
    write(src, "train.py", PY_SMALL)
    code = textwrap.dedent(f"""
        from runyard import Workspace, Experiment, ScriptRunConfig
        ws = Workspace.from_config({str(ws.path)!r})
        run = Experiment(ws, "remote-exp").submit(ScriptRunConfig({str(src)!r}, "train.py",
              arguments=["8", "0.2"], compute_target="box"))
        print(run.id)
    """)
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    run_id = out.stdout.strip().splitlines()[-1]
    # a new process finds the run by its stored handle and pulls everything
    again = Run.get(Workspace.from_config(ws.path), run_id)
    assert again.wait_for_completion(timeout=60)["status"] == "Completed"
    assert len(again.get_metrics()["loss"]) == 8
    log = (ws.run_dir(run_id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert "step 7" in log


def test_cancel_ends_the_remote_process_groups(ws: Workspace, host: SSHHost,
                                               tmp_path: Path) -> None:
    attach(ws, host)
    src = tmp_path / "p"
    write(src, "sleepy.py", """
        import subprocess, sys, time, os
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        os.makedirs("logs", exist_ok=True)
        open("logs/pids.txt", "w").write(f"{os.getpid()} {child.pid}")
        print("ready", flush=True)
        time.sleep(600)
    """)
    run = submit(ws, src, "sleepy.py")
    pids_file = ws.run_dir(run.id) / "artifacts/logs/pids.txt"
    wait_until(run, lambda: (run.get_status(), pids_file.exists()) == ("Running", True), 60,
               "the script's pids")
    script_pid, child_pid = map(int, pids_file.read_text().split())
    assert process_start_time(script_pid) and process_start_time(child_pid)
    run.cancel()
    assert run.get_status() == "Canceled"
    deadline = time.monotonic() + 10
    while (process_start_time(script_pid) or process_start_time(child_pid)) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_start_time(script_pid) and not process_start_time(child_pid)
    assert not runner_alive(run)
    run.cancel()  # a no-op once finished
    assert run.get_status() == "Canceled"


def test_short_outage_reconnects_long_outage_turns_not_responding(ws: Workspace, host: SSHHost,
                                                                   tmp_path: Path) -> None:
    attach(ws, host, unreachable_timeout_seconds=3)
    src = tmp_path / "p"
    write(src, "train.py", PY_SMALL)
    # a short outage (under the timeout): the run goes on and completes
    run = submit(ws, src, "train.py", arguments=["10", "0.3"])
    wait_until(run, lambda: run.get_status() == "Running", 60, "Running")
    host.kill_sessions()
    host.pause()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            assert run.get_status() == "Running"  # unreachable, still inside the timeout
            time.sleep(0.1)
    finally:
        host.resume()
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    assert len(run.get_metrics()["loss"]) == 10
    # a long outage: NotResponding after the timeout, and the run is never started again
    run2 = submit(ws, src, "train.py", arguments=["300", "0.2"])
    wait_until(run2, lambda: run2.get_status() == "Running", 60, "Running")
    handle = ws.store.get_run(run2.id).handle  # type: ignore[union-attr]
    assert handle is not None
    host.kill_sessions()
    host.pause()
    try:
        with pytest.raises(RunFailed, match=r"could not be reached .*unreachable_timeout"):
            run2.wait_for_completion(timeout=60)
        assert run2.get_status() == "NotResponding"
        assert runner_alive(run2)  # still running on the host: nothing was restarted
        kind = ws.client.compute_kind("box")
        with pytest.raises(TargetUnavailable):
            kind.cancel(kind.load_handle(handle))
    finally:
        host.resume()
    # reachable again: the run resumes (NotResponding is not terminal) and its metrics arrive
    # again; no status event came meanwhile, so it reads NotResponding until the script ends,
    # and no second copy starts
    seen = len(run2.get_metrics().get("loss", []))
    wait_until(run2, lambda: len(run2.get_metrics().get("loss", [])) > seen + 2, 60,
               "metrics after the host came back")
    assert run2.get_status() == "NotResponding"
    run_dir = Path(host.workdir) / "runs" / run2.id
    assert sorted(p.name for p in run_dir.glob("handle-a*.json")) == ["handle-a1.json"]
    runners = [p for p in host.user_pids()
               if run2.id.encode() in Path(f"/proc/{p}/cmdline").read_bytes()
               or str(run_dir).encode() in _cwd(p)]
    assert len([p for p in runners if b"runyard.runtime.runner" in
                Path(f"/proc/{p}/cmdline").read_bytes()]) == 1
    os.killpg(int(handle["pid"]), 9)


def _cwd(pid: int) -> bytes:
    try:
        return os.readlink(f"/proc/{pid}/cwd").encode()
    except OSError:
        return b""


# -- bad input ----------------------------------------------------------------------------------
def test_wrong_password(ws: Workspace, host: SSHHost) -> None:
    cfg = RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        password="not-the-password", known_hosts_file=str(host.known_hosts))
    with pytest.raises(ComputeTargetInvalid, match="wrong password for user 'ryhost'") as err:
        ComputeTarget.attach(ws, "bad", cfg)
    assert err.value.field == "password" and "not-the-password" not in str(err.value)
    assert_nothing_stored(ws)


def test_wrong_or_missing_key_passphrase(ws: Workspace, host: SSHHost) -> None:
    with pytest.raises(ComputeTargetInvalid, match="wrong passphrase") as err:
        ComputeTarget.attach(ws, "bad", RemoteCompute.attach_configuration(
            address=host.address, ssh_port=host.port, username=host.username,
            private_key_file=str(host.enc_key_file), private_key_passphrase="nope-nope",
            known_hosts_file=str(host.known_hosts)))
    assert err.value.field == "private_key_passphrase" and "nope-nope" not in str(err.value)
    with pytest.raises(ComputeTargetInvalid, match="encrypted; give its private_key_passphrase"):
        ComputeTarget.attach(ws, "bad", RemoteCompute.attach_configuration(
            address=host.address, ssh_port=host.port, username=host.username,
            private_key_file=str(host.enc_key_file), known_hosts_file=str(host.known_hosts)))
    assert_nothing_stored(ws)
    target = ComputeTarget.attach(ws, "box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(host.enc_key_file), private_key_passphrase=host.passphrase,
        known_hosts_file=str(host.known_hosts)))
    assert set(ws.store.get_secrets("compute/box")) == {"private_key",
                                                         "private_key_passphrase"}
    target.detach()


def test_unreachable_host(ws: Workspace, host: SSHHost) -> None:
    cfg = RemoteCompute.attach_configuration(
        address=host.address, ssh_port=1, username=host.username, password="x",
        known_hosts_file=str(host.known_hosts))
    with pytest.raises(TargetUnavailable, match=rf"cannot reach {host.address} port 1: "
                       "Connection refused"):
        ComputeTarget.attach(ws, "bad", cfg)
    with pytest.raises(ComputeTargetInvalid, match="private_key_file.*No such file"):
        ComputeTarget.attach(ws, "bad", key_config(host, private_key_file="/nonexistent/key"))
    assert_nothing_stored(ws)


def test_refused_host_keys(ws: Workspace, host: SSHHost, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    wrong = tmp_path / "known_wrong"
    fake = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    name = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
    wrong.write_text(f"{name} {fake}\n")
    for trust in (False, True):  # a changed key is refused even when unknown keys are trusted
        with pytest.raises(ComputeTargetError, match=r"does not match known_hosts.*SHA256:"):
            attach(ws, host, known_hosts_file=str(wrong), trust_unknown_host_key=trust)
    assert_nothing_stored(ws)
    # a key that changes after attach is refused on every later connection
    attach(ws, host)
    rec = ws.store.get_compute_target("box")
    assert rec is not None
    ws.store.update_compute_target("box", config={**rec.config, "host_key": fake})
    src = tmp_path / "p"
    write(src, "train.py", PY_SMALL)
    POOL.drop(f"{ws.data_dir}::box")
    with pytest.raises(ComputeTargetError, match="CHANGED"):
        submit(ws, src, "train.py")


def test_no_python_on_the_host(ws: Workspace, host: SSHHost) -> None:
    cfg = key_config(host, ssh_port=host.nopython_port)
    with pytest.raises(ComputeTargetInvalid, match="no usable python on .*python3 and python "
                       "on the host.s PATH .*nopython-bin.*: not found") as err:
        ComputeTarget.attach(ws, "bad", cfg)
    assert err.value.field == "python"
    with pytest.raises(ComputeTargetInvalid, match="python.*/opt/none/python3.*does not run"):
        ComputeTarget.attach(ws, "bad", key_config(host, python="/opt/none/python3"))
    assert_nothing_stored(ws)


def test_full_disk_on_the_host(ws: Workspace, host: SSHHost) -> None:
    with pytest.raises(ComputeTargetInvalid, match=r"not enough free disk .* has 1\.0 MB free"
                       r".*min_free_disk_mb") as err:
        attach(ws, host, workdir=str(host.tiny_dir / "runyard"))
    assert err.value.field == "workdir"
    assert_nothing_stored(ws)


INJECTIONS = ["-oProxyCommand=touch /tmp/ry-pwned", "host;touch /tmp/ry-pwned",
              "$(touch /tmp/ry-pwned)", "`touch /tmp/ry-pwned`", "a b", "a\nb", "x|y", "x&y",
              "'quoted'", '"dq"', "x>y", "../../etc"]


@pytest.mark.parametrize("field", ["address", "username", "python", "workdir",
                                   "private_key_file", "known_hosts_file"])
def test_injection_payloads_are_refused_in_every_field(field: str, host: SSHHost) -> None:
    for payload in INJECTIONS:
        if field in ("private_key_file", "known_hosts_file") and payload in (
                "a b", "'quoted'", '"dq"', "../../etc"):
            continue  # plain (odd) local file names: never on a command line
        with pytest.raises(ComputeTargetInvalid) as err:
            key_config(host, **{field: payload})
        assert err.value.field == field, payload


def test_payloads_in_secrets_arguments_and_env_stay_data(ws: Workspace, host: SSHHost,
                                                        tmp_path: Path) -> None:
    sentinel = Path("/tmp/ry-pwned")
    sentinel.unlink(missing_ok=True)
    for payload in ("$(touch /tmp/ry-pwned)", "`touch /tmp/ry-pwned`", "x'; touch /tmp/ry-pwned"):
        with pytest.raises(ComputeTargetInvalid):
            ComputeTarget.attach(ws, "bad", RemoteCompute.attach_configuration(
                address=host.address, ssh_port=host.port, username=host.username,
                password=payload, known_hosts_file=str(host.known_hosts)))
    attach(ws, host)
    src = tmp_path / "p"
    write(src, "echo.py", """
        import os, sys
        print("ARGS", sys.argv[1:], "ENV", os.environ["RY_PAYLOAD"], flush=True)
    """)
    payload = "$(touch /tmp/ry-pwned); `touch /tmp/ry-pwned` | touch /tmp/ry-pwned"
    from runyard import RunConfiguration

    rc = RunConfiguration()
    rc.environment.environment_variables = {"RY_PAYLOAD": payload}
    run = submit(ws, src, "echo.py", arguments=[payload], run_config=rc)
    assert run.wait_for_completion()["status"] == "Completed"
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert f"ARGS [{payload!r}] ENV {payload}" in log
    assert not sentinel.exists()


# -- secrets never leak -------------------------------------------------------------------------
def test_secret_canary_reaches_no_sink(ws: Workspace, host: SSHHost, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)  # paramiko's debug log included
    canary_pw = "CANARY-pw-7f3a9c"
    canary_pp = "CANARY-pp-51e0b2"
    enc_key = tmp_path / "canary_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", canary_pp, "-f", str(enc_key)],
                   check=True)
    sinks: list[str] = []
    # wrong credentials: the errors name the problem, never the value
    for cfg in (RemoteCompute.attach_configuration(
            address=host.address, ssh_port=host.port, username=host.username,
            password=canary_pw, known_hosts_file=str(host.known_hosts)),
            RemoteCompute.attach_configuration(
            address=host.address, ssh_port=host.port, username=host.username,
            private_key_file=str(enc_key), private_key_passphrase=canary_pw + "x",
            known_hosts_file=str(host.known_hosts))):
        sinks += [repr(cfg), str(cfg)]
        with pytest.raises(ComputeTargetInvalid) as err:
            ComputeTarget.attach(ws, "bad", cfg)
        sinks += [str(err.value), repr(err.value), json.dumps(err.value.to_dict())]
    # a target attached through the CLI with the password on stdin (and a passphrase'd key
    # through the SDK), then shown, listed and used
    monkeypatch.chdir(ws.path)
    runner = CliRunner()
    res = runner.invoke(cli_main, ["compute", "attach", "pw-box", "--kind", "remote",
                                   "--address", host.address, "--ssh-port", str(host.port),
                                   "--username", host.username, "--password-stdin",
                                   "-p", f"known_hosts_file={host.known_hosts}"],
                        input=host.password + "\n")
    assert res.exit_code == 0, res.output
    sinks.append(res.output)
    for args in (["compute", "show", "pw-box", "--json"], ["compute", "list"],
                 ["compute", "show", "pw-box"]):
        res = runner.invoke(cli_main, args)
        assert res.exit_code == 0, res.output
        sinks.append(res.output)
    res = runner.invoke(cli_main, ["compute", "attach", "bad", "--kind", "remote", "--address",
                                   host.address, "--ssh-port", str(host.port), "--username",
                                   host.username, "--password-stdin", "-p",
                                   f"known_hosts_file={host.known_hosts}"],
                        input=canary_pw + "\n")
    assert res.exit_code != 0 and "wrong password" in res.output
    sinks.append(res.output)
    with open(host.base / "auth" / host.username, "a") as fh:  # the host accepts this key
        fh.write(enc_key.with_suffix(".pub").read_text())
    key_target = ComputeTarget.attach(ws, "key-box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(enc_key), private_key_passphrase=canary_pp,
        known_hosts_file=str(host.known_hosts)))
    sinks += [repr(key_target), json.dumps(key_target.serialize()),
              repr(ws.get_target("key-box").config)]
    src = tmp_path / "p"
    write(src, "train.py", PY_SMALL)
    run = submit(ws, src, "train.py", target="key-box")
    assert run.wait_for_completion(show_output=True)["status"] == "Completed"
    sinks.append(json.dumps(run.get_details(), default=str))
    captured = capsys.readouterr()
    sinks += [captured.out, captured.err, caplog.text]
    sinks += [r.getMessage() for r in caplog.records]
    private = enc_key.read_text().splitlines()[1]  # a line of the key file itself
    for text in sinks:
        for canary in (canary_pw, canary_pp, host.password, private):
            assert canary not in text, (canary, text[:300])
    # files: the workspace (database included), the host's runyard folder and run files
    for folder in (ws.path, Path(host.workdir)):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                for canary in (canary_pw, canary_pp, host.password, private):
                    assert canary.encode() not in data, (canary, path)


# -- lifecycle ----------------------------------------------------------------------------
def test_attach_is_idempotent_in_name_and_detach_refuses_live_runs(ws: Workspace, host: SSHHost,
                                                                   tmp_path: Path) -> None:
    target = attach(ws, host)
    with pytest.raises(ComputeTargetError, match="already exists"):
        attach(ws, host)
    src = tmp_path / "p"
    write(src, "sleepy.py", "import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    run = submit(ws, src, "sleepy.py")
    wait_until(run, lambda: run.get_status() == "Running", 60, "Running")
    with pytest.raises(ComputeTargetError, match="unfinished run"):
        target.detach()
    target.detach(force=True)
    assert run.get_status() == "Canceled"
    assert ws.store.list_compute_targets() == []


def test_a_sweep_runs_its_trials_on_the_host(ws: Workspace, host: SSHHost,
                                             tmp_path: Path) -> None:
    from runyard.run import HyperDriveRun  # noqa: PLC0415
    from runyard.sweeps import (  # noqa: PLC0415
        GridParameterSampling,
        HyperDriveConfig,
        PrimaryMetricGoal,
        choice,
    )

    attach(ws, host, max_concurrent_runs=2)
    src = tmp_path / "project"
    write(src, "score.py", """
        import argparse, os
        from runyard import Run
        p = argparse.ArgumentParser()
        p.add_argument("--x", type=int)
        a = p.parse_args()
        Run.get_context().log("score", -(a.x - 2) ** 2)
        print("uid", os.getuid(), flush=True)
    """)
    cfg = HyperDriveConfig(
        run_config=ScriptRunConfig(str(src), "score.py", compute_target="box"),
        hyperparameter_sampling=GridParameterSampling({"--x": choice(0, 1, 2, 3, 4)}),
        primary_metric_name="score", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=5, max_concurrent_runs=2)
    hd = Experiment(ws, "remote-sweep").submit(cfg)
    assert isinstance(hd, HyperDriveRun)
    assert hd.wait_for_completion(timeout=180)["status"] == "Completed"
    best = hd.get_best_run_by_primary_metric()
    assert best is not None and hd.get_hyperparameters()[best.id] == {"--x": 2}
    for child in hd.get_children():
        assert child.get_status() == "Completed" and child._record.target == "box"
        log = (ws.run_dir(child.id) / "artifacts/system_logs/driver_log.txt").read_text()
        assert f"uid {host.uid}" in log
