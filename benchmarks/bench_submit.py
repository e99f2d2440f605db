"""Submit benchmark: submit-to-Completed latency of a trivial script on the local target.

In one embedded (SQLite) workspace in a temp directory, measured in the same run:

* ``exp.submit(ScriptRunConfig(...))`` of ``print("hi")`` until ``run.wait_for_completion()``
  returns (snapshot, run record, detached runner, script, ingest of the run's events), after
  one untimed warm-up run, against ``subprocess.run([sys.executable, "script.py"])``
  (the same interpreter starting the same script directly), interleaved;
* the overhead, runyard minus the peer (median of the paired differences; target
  <= 150 ms);
* the peak RSS (``VmHWM`` from ``/proc/<pid>/status``) of the runner process
  (``python -m runyard.runtime.runner``) supervising a script that sleeps 1 s, against the peak
  RSS of a bare ``python -c "import time; time.sleep(1)"``;
* a Ray Jobs row for the same script when ``ray`` is importable: a private local cluster
  started by ``ray.init()`` in a helper process and stopped by its ``ray.shutdown()`` (never
  ``ray stop``, which would end every Ray cluster of the user); otherwise the row is skipped
  with a note.

``run(repeats)`` returns the rows; direct execution prints them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runyard import Experiment, ScriptRunConfig, Workspace

TARGET_OVERHEAD_MS = 150.0
TRIVIAL = 'print("hi")\n'
SLEEPER = "import time\ntime.sleep(1)\n"


def _peak_rss_kib(pid: int) -> int | None:
    """``VmHWM`` of ``pid`` in KiB, None once it is gone (or a zombie without memory)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _watch_peak(pid: int, done: Any) -> int | None:
    """Poll ``VmHWM`` of ``pid`` every 10 ms until ``done()``; return the last value read."""
    peak = None
    while True:
        value = _peak_rss_kib(pid)
        if value is not None:
            peak = value if peak is None else max(peak, value)
        if done():
            return peak
        time.sleep(0.01)


def _submit_and_wait(exp: Experiment, src: Path, script: str) -> tuple[float, Any]:
    t0 = time.perf_counter()
    run = exp.submit(ScriptRunConfig(source_directory=str(src), script=script))
    run.wait_for_completion()
    elapsed = time.perf_counter() - t0
    status = run.get_status()
    if status != "Completed":
        raise RuntimeError(f"benchmark run {run.id} ended {status}")
    return elapsed, run


def _subprocess_run(src: Path, script: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, script], cwd=src, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _runner_peak(exp: Experiment, src: Path) -> int | None:
    run = exp.submit(ScriptRunConfig(source_directory=str(src), script="sleeper.py"))
    pid = int(run._record.handle["pid"])  # the detached runner (python -m runyard.runtime.runner)
    # The runner is our child in its own session; once it exits (a zombie until the store's
    # poll reaps it) /proc/<pid>/status has no VmHWM line any more.
    peak = _watch_peak(pid, lambda: _peak_rss_kib(pid) is None)
    run.wait_for_completion()
    return peak


def _bare_python_peak(src: Path) -> int | None:
    proc = subprocess.Popen([sys.executable, "sleeper.py"], cwd=src)
    return _watch_peak(proc.pid, lambda: proc.poll() is not None)


# Runs in a helper process of its own session: ray.init() starts a private local cluster
# (dynamic GCS port, the dashboard on the port given, its own temp dir), prints the dashboard
# address, and ray.shutdown() stops exactly that cluster when the benchmark closes stdin. The
# benchmark never runs `ray start` / `ray stop` (which act on every Ray process of the user).
_RAY_HELPER = """\
import sys

import ray
from ray._private import parameter

# ray.init() has no argument for the dashboard agent's HTTP port (default 52365, which another
# cluster on this machine may hold; the job agent then never comes up): give it a free one.
_init = parameter.RayParams.__init__


def _params(self, *args, **kwargs):
    kwargs.setdefault("dashboard_agent_listen_port", int(sys.argv[3]))
    _init(self, *args, **kwargs)


parameter.RayParams.__init__ = _params
ctx = ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1",
               dashboard_port=int(sys.argv[2]), _temp_dir=sys.argv[1], num_cpus=1,
               object_store_memory=100 * 1024 * 1024, log_to_driver=False)
print("RAY_DASHBOARD=" + (ctx.dashboard_url or ""), flush=True)
sys.stdin.read()
ray.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _helper_url(helper: subprocess.Popen[bytes], timeout: float) -> str:
    """The dashboard address the helper prints (``RAY_DASHBOARD=host:port``)."""
    assert helper.stdout is not None
    fd = helper.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            if helper.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        for line in buf.decode(errors="replace").splitlines():
            if line.startswith("RAY_DASHBOARD=") and line.split("=", 1)[1].strip():
                return line.split("=", 1)[1].strip()
    raise RuntimeError(f"ray.init() in the helper gave no dashboard (exit {helper.poll()})")


def _stop_helper(helper: subprocess.Popen[bytes]) -> None:
    """Close the helper's stdin (ray.shutdown), then end its own process group if it hangs."""
    with contextlib.suppress(OSError):
        if helper.stdin:
            helper.stdin.close()
    try:
        helper.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(helper.pid, signal.SIGKILL)  # the group this benchmark started
        helper.wait()


def _ray_jobs(src: Path, repeats: int) -> tuple[list[float], str]:
    from ray.job_submission import JobStatus, JobSubmissionClient  # noqa: PLC0415

    temp = tempfile.mkdtemp(prefix="rybr-")  # short: Ray's socket paths must stay < 108 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # A throwaway cluster on 127.0.0.1 only: no token (one would go to ~/.ray/auth_token).
    env["RAY_AUTH_MODE"] = "disabled"
    ports = [str(_free_port()), str(_free_port())]  # dashboard, dashboard agent
    helper = subprocess.Popen([sys.executable, "-c", _RAY_HELPER, temp, *ports],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, bufsize=0, env=env,
                              start_new_session=True)
    try:
        url = _helper_url(helper, timeout=180)
        client = JobSubmissionClient(f"http://{url}")
        for name in ("ray", "ray.dashboard.modules.dashboard_sdk",
                     "ray._private.runtime_env.packaging"):  # no "Uploading package" per job
            logging.getLogger(name).setLevel(logging.WARNING)
        done = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}

        def job() -> float:
            t0 = time.perf_counter()
            job_id = client.submit_job(entrypoint=f"{sys.executable} script.py",
                                       runtime_env={"working_dir": str(src)})
            while (status := client.get_job_status(job_id)) not in done:
                time.sleep(0.01)
            if status != JobStatus.SUCCEEDED:
                raise RuntimeError(f"ray job {job_id} ended {status}")
            return (time.perf_counter() - t0) * 1000

        deadline = time.monotonic() + 120
        while True:  # warm-up; the job agent comes up a while after the dashboard
            try:
                job()
                break
            except RuntimeError as exc:
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        import ray  # noqa: PLC0415

        return [job() for _ in range(repeats)], ray.__version__
    finally:
        _stop_helper(helper)
        shutil.rmtree(temp, ignore_errors=True)


def _ray_row(src: Path, repeats: int) -> dict[str, Any]:
    row: dict[str, Any] = {"benchmark": "submit-to-Completed vs Ray Jobs (print('hi'))",
                           "unit": "ms", "runyard": None, "peer_name": "Ray Jobs", "peer": None}
    if importlib.util.find_spec("ray") is None:
        row["note"] = "skipped: Ray is not installed in this environment (not installed by the " \
                      "benchmark)"
        return row
    try:
        times, version = _ray_jobs(src, repeats)
    except Exception as exc:  # optional row: report why it is empty, keep the others
        row["note"] = f"skipped: Ray Jobs failed: {type(exc).__name__}: {exc}"[:200]
        return row
    row["peer_name"] = f"Ray {version} Jobs"
    row["peer"] = round(statistics.median(times), 1)
    row["note"] = (f"median of {len(times)} after 1 warm-up; private local cluster (ray.init, "
                   "1 CPU); JobSubmissionClient.submit_job (working_dir upload) until "
                   "SUCCEEDED, polled every 10 ms")
    return row


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """One warm-up, then ``max(5, 2 * repeats)`` interleaved pairs; return rows of medians."""
    pairs = max(5, 2 * repeats)
    with tempfile.TemporaryDirectory(prefix="runyard-bench-submit-") as tmp:
        base = Path(tmp)
        src = base / "src"
        src.mkdir()
        (src / "script.py").write_text(TRIVIAL)
        (src / "sleeper.py").write_text(SLEEPER)
        ws = Workspace.create("bench", path=base / "ws")
        exp = Experiment(ws, "bench")
        try:
            _submit_and_wait(exp, src, "script.py")  # warm-up: page cache, pylib link, pyc
            _subprocess_run(src, "script.py")
            ours: list[float] = []
            peer: list[float] = []
            for _ in range(pairs):
                ours.append(_submit_and_wait(exp, src, "script.py")[0] * 1000)
                peer.append(_subprocess_run(src, "script.py") * 1000)
            overhead = [a - b for a, b in zip(ours, peer, strict=True)]

            runner_peaks = [_runner_peak(exp, src) for _ in range(max(1, repeats // 2))]
            bare_peaks = [_bare_python_peak(src) for _ in range(max(1, repeats // 2))]
            ray = _ray_row(src, repeats)
        finally:
            ws.close()

    over = statistics.median(overhead)
    ok = "meets" if over <= TARGET_OVERHEAD_MS else "MISSES"
    runner_kib = [p for p in runner_peaks if p is not None]
    bare_kib = [p for p in bare_peaks if p is not None]
    ray["runyard"] = round(statistics.median(ours), 1)
    return [
        {
            "benchmark": "submit-to-Completed (print('hi'), local)",
            "unit": "ms",
            "runyard": round(statistics.median(ours), 1),
            "peer_name": "subprocess.run",
            "peer": round(statistics.median(peer), 1),
            "note": f"median of {pairs} after 1 warm-up; exp.submit -> wait_for_completion() "
            "returns (SQLite workspace) vs subprocess.run([sys.executable, 'script.py'])",
        },
        {
            "benchmark": "submit-to-Completed overhead (runyard - subprocess.run)",
            "unit": "ms",
            "runyard": round(over, 1),
            "peer_name": None,
            "peer": None,
            "note": f"{ok} target <= {TARGET_OVERHEAD_MS:.0f} ms; median of paired differences "
            f"(min {min(overhead):.0f}, max {max(overhead):.0f})",
        },
        {
            "benchmark": "runner process peak RSS (script sleeps 1 s)",
            "unit": "MiB",
            "runyard": round(statistics.median(runner_kib) / 1024, 1) if runner_kib else None,
            "peer_name": "bare python sleep(1)",
            "peer": round(statistics.median(bare_kib) / 1024, 1) if bare_kib else None,
            "note": "VmHWM of `python -m runyard.runtime.runner` (pid from the run handle), "
            "polled from /proc every 10 ms; peer: the same interpreter running only the script",
        },
        ray,
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
