"""Compute targets as workspace resources: names, configs, lifecycle, secrets, capabilities."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from runyard import Experiment, ScriptRunConfig, Workspace
from runyard.compute.capabilities import MATRIX, require
from runyard.computetarget import ClusterCompute, ComputeTarget, LocalTarget, RemoteCompute
from runyard.errors import (
    ComputeTargetBusy,
    ComputeTargetError,
    ComputeTargetExists,
    ComputeTargetInvalid,
    ComputeTargetNotFound,
    ComputeTargetNotSupported,
    NotSupported,
    TargetUnavailable,
)
from runyard.secrets import ENV_CONFIG_HOME, Secret, SecretBox, SecretError
from runyard.store.base import RunFilter

CANARY = "canary-Pa55w0rd-7f3e"


@pytest.fixture(autouse=True)
def _key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG_HOME, str(tmp_path / "config"))
    monkeypatch.delenv("RUNYARD_SECRET_KEY", raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create("ws", tmp_path / "ws")


def stored(ws: Workspace) -> list[str]:
    return [r.name for r in ws.store.list_compute_targets()]


@pytest.mark.parametrize("name", ["a", "x" * 17, "bad_name", "-lead", "trail-", "sp ace",
                                  "dot.name", "ünï", "local", "LOCAL", "amlcompute", ""])
def test_bad_names_are_refused_before_storing(ws: Workspace, name: str) -> None:
    cfg = LocalTarget.provisioning_configuration(max_concurrent_runs=1)
    with pytest.raises(ComputeTargetInvalid, match="name"):
        ComputeTarget.create(ws, name, cfg)
    assert stored(ws) == []


def test_duplicate_name_is_refused(ws: Workspace) -> None:
    cfg = LocalTarget.provisioning_configuration()
    ComputeTarget.create(ws, "pool-1", cfg)
    with pytest.raises(ComputeTargetExists, match="pool-1"):
        ComputeTarget.create(ws, "pool-1", cfg)
    assert stored(ws) == ["pool-1"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"vm_size": "STANDARD_D2_V3", "max_nodes": 2}, "closest: .*STANDARD_D2_V2"),
    ({"vm_size": "nonsense", "max_nodes": 2}, "vm_size"),
    ({"vm_size": "STANDARD_D2_V2", "min_nodes": 3, "max_nodes": 2}, "min_nodes"),
    ({"vm_size": "STANDARD_D2_V2", "max_nodes": 2, "idle_seconds_before_scaledown": -5},
     "idle_seconds_before_scaledown"),
    ({"vm_size": "STANDARD_D2_V2"}, "max_nodes"),
    ({"vm_size": "STANDARD_D2_V2", "max_nodes": 2, "vm_priority": "cheap"}, "vm_priority"),
    ({"vm_size": "STANDARD_D2_V2", "max_nodes": 2, "colour": "red"}, "colour"),
])
def test_cluster_configuration_errors_name_the_field(kwargs: dict[str, object],
                                                     field: str) -> None:
    with pytest.raises(ComputeTargetInvalid, match=field):
        ClusterCompute.provisioning_configuration(**kwargs)


@pytest.mark.parametrize("provider", ["azure", "aws", "gcp", "kubernetes"])
def test_cloud_cluster_providers_are_refused_after_validation(ws: Workspace,
                                                              provider: str) -> None:
    cfg = ClusterCompute.provisioning_configuration(vm_size="standard_d2_v2", max_nodes=2,
                                                    idle_seconds_before_scaledown="300",
                                                    provider=provider)
    assert cfg.vm_size == "STANDARD_D2_V2" and cfg.idle_seconds_before_scaledown == 300
    with pytest.raises(ComputeTargetNotSupported, match="credentials"):
        ComputeTarget.create(ws, "cpu-cluster", cfg)
    assert stored(ws) == []
    sizes = {s["name"]: s for s in ClusterCompute.supported_vmsizes(ws)}
    assert sizes["STANDARD_NC6"]["gpus"] == 1 and sizes["local-2cpu"]["vcpus"] == 2


def test_unknown_kind_and_wrong_mode(ws: Workspace) -> None:
    remote = RemoteCompute.attach_configuration(address="10.0.0.1", username="me",
                                                password=CANARY)
    with pytest.raises(ComputeTargetInvalid, match="attach"):
        ComputeTarget.create(ws, "vm-1", remote)
    with pytest.raises(ComputeTargetInvalid, match="configuration"):
        ComputeTarget.create(ws, "vm-1", {"kind": "gpu"})  # type: ignore[arg-type]
    assert stored(ws) == []


@pytest.mark.parametrize(("field", "value"), [
    ("address", "-oProxyCommand=touch /tmp/pwned"), ("address", "host;rm -rf /"),
    ("address", "$(id)"), ("address", "a b"), ("address", "`id`"), ("address", "host\nx"),
    ("username", "-l"), ("username", "root;id"), ("username", "$(whoami)"),
    ("username", "a b"), ("username", "me|cat"),
])
def test_remote_injection_payloads_are_refused(ws: Workspace, field: str, value: str) -> None:
    kwargs = {"address": "host.example", "username": "me", "password": "pw", field: value}
    with pytest.raises(ComputeTargetInvalid, match=field):
        RemoteCompute.attach_configuration(**kwargs)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_remote_attach_to_an_unreachable_host_stores_nothing(ws: Workspace) -> None:
    port = _closed_port()  # nothing listens there (tests/integration/test_remote_ssh.py: sshd)
    cfg = RemoteCompute.attach_configuration(address="127.0.0.1", ssh_port=port,
                                             username="me", password=CANARY)
    assert CANARY not in repr(cfg) and CANARY not in str(cfg.to_config())
    with pytest.raises(TargetUnavailable, match=f"cannot reach 127.0.0.1 port {port}") as err:
        ComputeTarget.attach(ws, "vm-1", cfg)
    assert CANARY not in str(err.value)
    assert stored(ws) == []


def test_local_target_lifecycle(ws: Workspace, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    target = ComputeTarget.create(ws, "pool-1",
                                  LocalTarget.provisioning_configuration(max_concurrent_runs=1))
    assert isinstance(target, LocalTarget)
    status = target.wait_for_completion(show_output=True, timeout=10)
    assert status.provisioning_state == "Succeeded"
    assert "pool-1: Succeeded" in capsys.readouterr().out
    again = ComputeTarget(workspace=ws, name="pool-1")
    assert isinstance(again, LocalTarget) and again.max_concurrent_runs == 1
    assert [t.name for t in ComputeTarget.list(ws)] == ["local", "pool-1"]
    assert list(ws.compute_targets) == ["local", "pool-1"]
    target.update(max_concurrent_runs=3)
    rec = ws.store.get_compute_target("pool-1")
    assert rec is not None and rec.config["max_concurrent_runs"] == 3 and rec.config_version == 2
    with pytest.raises(ComputeTargetInvalid, match="max_concurrent_runs"):
        target.update(max_concurrent_runs=0)
    with pytest.raises(ComputeTargetInvalid, match="colour"):
        target.update(colour="red")
    assert ws.store.get_compute_target("pool-1").config["max_concurrent_runs"] == 3  # type: ignore[union-attr]
    with pytest.raises(ComputeTargetInvalid, match="delete"):
        target.detach()
    target.delete()
    assert stored(ws) == []
    with pytest.raises(ComputeTargetNotFound, match="pool-1"):
        ComputeTarget(ws, "pool-1")


def test_runs_on_a_named_local_target_and_delete_needs_force(ws: Workspace,
                                                             tmp_path: Path) -> None:
    ComputeTarget.create(ws, "pool-2", LocalTarget.provisioning_configuration(
        max_concurrent_runs=1))
    src = tmp_path / "src"
    src.mkdir()
    (src / "sleep.py").write_text("import time\ntime.sleep(600)\n")
    run = Experiment(ws, "on-pool").submit(ScriptRunConfig(src, "sleep.py",
                                                           compute_target="pool-2"))
    deadline = time.monotonic() + 30
    while run.get_status() != "Running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.get_details()["target"] == "pool-2"
    assert (ws.data_dir / "slots" / "pool-2").is_dir()
    target = ComputeTarget(ws, "pool-2")
    with pytest.raises(ComputeTargetBusy, match=run.id):
        target.delete()
    assert stored(ws) == ["pool-2"]
    target.delete(force=True)
    assert stored(ws) == []
    assert run.get_status() == "Canceled"


def test_unknown_target_name_is_a_compute_target_exception(ws: Workspace) -> None:
    from runyard.compat.azureml.core.compute_target import ComputeTargetException

    with pytest.raises(ComputeTargetException, match="unknown compute target 'nope'"):
        ComputeTarget(ws, "nope")
    assert issubclass(ComputeTargetNotSupported, ComputeTargetError)


def test_builtin_local_cannot_be_removed(ws: Workspace) -> None:
    with pytest.raises(ComputeTargetNotSupported, match="built in"):
        ComputeTarget(ws, "local").delete()


def test_capability_matrix_is_enforced_with_its_reason(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotSupported, match="pipelines"):
        require("databricks", MATRIX["databricks"], "script_runs", "dbx")
    require("local", MATRIX["local"], "sweeps", "local")  # extended beyond Azure ML: allowed
    assert "extended" in MATRIX["local"].sweeps.reason
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.py").write_text("pass\n")
    cfg = ScriptRunConfig(src, "t.py")
    cfg.run_config.node_count = 2
    with pytest.raises(NotSupported, match="one machine"):
        Experiment(ws, "caps").submit(cfg)
    assert ws.store.list_runs(RunFilter()) == []


def test_secrets_are_encrypted_at_rest_and_never_shown(ws: Workspace, tmp_path: Path) -> None:
    box = SecretBox()
    key_file = tmp_path / "config" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = box.encrypt(CANARY)
    assert CANARY.encode() not in token
    assert box.decrypt(token).reveal() == CANARY
    assert CANARY not in repr(box.decrypt(token)) and CANARY not in str(Secret(CANARY))
    from runyard.entities import ComputeRecord

    ws.store.create_compute_target(
        ComputeRecord("vault", "local", True, {}, 1, "Succeeded", [], 0.0, 0.0),
        {"password": token})
    target = ComputeTarget(ws, "vault")
    secret = target.secret("password")
    assert secret is not None and secret.reveal() == CANARY
    assert CANARY not in repr(target.serialize())
    ws.close()
    for f in ws.data_dir.glob("runyard.db*"):
        assert CANARY.encode() not in f.read_bytes()
    other = SecretBox()  # a new box reads the same key file
    assert other.decrypt(token).reveal() == CANARY
    from cryptography.fernet import Fernet

    with pytest.raises(SecretError, match="cannot be decrypted"):
        SecretBox(Fernet.generate_key()).decrypt(token)


def test_cli_compute_commands(ws: Workspace, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}

    def cli(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "runyard.cli", "-w", str(ws.path), *args],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == code, proc.stderr + proc.stdout
        return proc

    cli("compute", "create", "cpu-pool", "--kind", "local", "--max-concurrent-runs", "2")
    listed = json.loads(cli("compute", "list", "--json").stdout)
    assert [(t["name"], t["kind"], t["provisioningState"]) for t in listed] == [
        ("local", "local", "Succeeded"), ("cpu-pool", "local", "Succeeded")]
    shown = json.loads(cli("compute", "show", "cpu-pool", "--json").stdout)
    assert shown["configuration"]["max_concurrent_runs"] == 2
    cli("compute", "update", "cpu-pool", "--max-concurrent-runs", "4")
    assert json.loads(cli("compute", "show", "cpu-pool", "--json").stdout)[
        "configuration"]["max_concurrent_runs"] == 4
    status = json.loads(cli("compute", "status", "cpu-pool", "--json").stdout)
    assert status["provisioningState"] == "Succeeded"
    bad = cli("compute", "create", "x", "--kind", "local", code=2)
    assert "name" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("compute", "create", "gpu", "--kind", "cluster", "--vm-size", "STANDARD_NC7",
              "--max-nodes", "2", code=2)
    assert "STANDARD_NC6" in bad.stderr
    bad = cli("compute", "create", "gpu", "--kind", "warp", code=2)
    assert "unknown compute kind" in bad.stderr
    proc = subprocess.run([sys.executable, "-m", "runyard.cli", "-w", str(ws.path), "compute",
                           "attach", "vm-1", "--kind", "remote", "--address", "127.0.0.1",
                           "--ssh-port", str(_closed_port()), "--username", "me",
                           "--password-stdin"], input=CANARY + "\n",
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and CANARY not in proc.stderr + proc.stdout
    assert "cannot reach 127.0.0.1" in proc.stderr
    cli("compute", "detach", "cpu-pool", code=2)
    cli("compute", "delete", "cpu-pool")
    assert [t["name"] for t in json.loads(cli("compute", "list", "--json").stdout)] == ["local"]
    sizes = json.loads(cli("compute", "vm-sizes", "--json").stdout)
    assert any(s["name"] == "STANDARD_D2_V2" for s in sizes)
