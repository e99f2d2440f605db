"""An SSH host that comes back after ``unreachable_timeout_seconds`` (issue 10, point 2).

The run turns NotResponding while the host cannot be reached (the host keeps running it);
when the host comes back, everything the run logged meanwhile arrives and the run ends with
its real status (Completed), without a second copy being started. Two cases: the script
finished while the host was away, and the script is still running when it comes back.
A real sshd in a network namespace (tests/integration/sshhost.py); the outage is an
``unreachable`` route to the host's address.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from sshhost import SSHHost  # noqa: E402

from runyard import Experiment, Run, ScriptRunConfig, Workspace  # noqa: E402
from runyard.computetarget import ComputeTarget, RemoteCompute  # noqa: E402
from runyard.runtime import procmarks  # noqa: E402
from support import wait_for  # noqa: E402

STEPS = 20
PAUSE = 0.25
UNREACHABLE_TIMEOUT = 1
SCRIPT = f"""
    import time
    from runyard import Run
    run = Run.get_context()
    for i in range({STEPS}):
        run.log("loss", 1.0 / (i + 1))
        print(f"step {{i}}", flush=True)
        time.sleep({PAUSE})
    run.tag("ended", "yes")
    print("finished", flush=True)
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: SSHHost) -> Iterator[Workspace]:
    monkeypatch.setenv("RUNYARD_CONFIG_HOME", str(tmp_path / "config"))
    w = Workspace.create("remote-resume", tmp_path / "ws")
    ComputeTarget.attach(w, "box", RemoteCompute.attach_configuration(
        address=host.address, ssh_port=host.port, username=host.username,
        private_key_file=str(host.key_file), known_hosts_file=str(host.known_hosts),
        unreachable_timeout_seconds=UNREACHABLE_TIMEOUT))
    yield w
    for run_id in w.__dict__.get("started", []):  # whatever a failed test left running
        procmarks.stop_marked(procmarks.ENV_RUN_MARKER, procmarks.run_marker(run_id, 1),
                              grace=0)
    w.close()



def runners_on_host(host: SSHHost, run_id: str) -> int:
    """Runner processes of ``run_id`` on the host (by their command line)."""
    count = 0
    for pid in host.user_pids():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"runyard.runtime.runner" in cmd and run_id.encode() in cmd:
            count += 1
    return count


@pytest.mark.parametrize("away", ["script finishes while away", "script still running"])
def test_a_host_back_after_the_timeout_delivers_everything_and_the_run_completes(
        ws: Workspace, host: SSHHost, tmp_path: Path, away: str) -> None:
    src = tmp_path / "p"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(SCRIPT))
    run = Experiment(ws, "resume").submit(ScriptRunConfig(str(src), "train.py",
                                                          compute_target="box"))
    ws.__dict__.setdefault("started", []).append(run.id)
    wait_for(lambda: len(run.get_metrics().get("loss", [])) >= 2, 120, "2 metrics")
    before = len(run.get_metrics()["loss"])
    assert before < STEPS
    host.kill_sessions()
    host.pause()
    paused_at = time.monotonic()
    try:
        wait_for(lambda: run.get_status() == "NotResponding", 60, "NotResponding")
        assert runners_on_host(host, run.id) == 1  # still running there, untouched
        if away == "script finishes while away":
            wait_for(lambda: runners_on_host(host, run.id) == 0, 60,
                     "the runner to finish on the unreachable host")
            assert run.get_status() == "NotResponding"
        else:
            assert time.monotonic() - paused_at < STEPS * PAUSE  # it is still running there
    finally:
        host.resume()
    # settled, not terminal: poll until it ends, bounded
    wait_for(lambda: run.get_status() in ("Completed", "Failed", "Canceled"), 90,
             "the run to end after the host came back")
    assert run.get_status() == "Completed"
    assert run.get_metrics()["loss"] == [pytest.approx(1 / (i + 1)) for i in range(STEPS)]
    assert run.get_tags()["ended"] == "yes"
    statuses = [e["status"] for e in run.get_events()]
    assert "NotResponding" in statuses
    assert statuses.index("NotResponding") < statuses.index("Completed")
    assert statuses[-1] == "Completed"
    assert run.get_details().get("error") in (None, {})  # the outage's error was dropped
    log = (ws.run_dir(run.id) / "artifacts/system_logs/driver_log.txt").read_text()
    assert all(f"step {i}" in log for i in range(STEPS)) and "finished" in log
    # one attempt, one runner: nothing was started again
    run_dir = Path(host.workdir) / "runs" / run.id
    assert sorted(p.name for p in run_dir.glob("handle-a*.json")) == ["handle-a1.json"]
    rec = ws.store.get_run(run.id)
    assert rec is not None and rec.attempt == 1
    assert Run.get(ws, run.id).get_status() == "Completed"
