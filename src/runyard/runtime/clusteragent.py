"""The node agent: what a Ray job runs on cluster nodes for one attempt of a run.

A cluster target submits each attempt as a Ray job whose entrypoint is
``python -m runyard.runtime.clusteragent MODE SPEC`` (``SPEC``: base64 of zlib-compressed JSON).
The job's ``working_dir`` is the run's snapshot and its ``py_modules`` hold this runtime bundle,
so nothing needs to be installed on a node beyond Ray.

``run``    one node (``node_count == 1``): the job's entrypoint resources place it on a worker
           node; it runs :class:`NodeRun` for node 0.
``gang``   ``node_count > 1``: the entrypoint (0 CPUs) reserves ``node_count`` bundles with
           ``STRICT_SPREAD`` (pending bundles drive Ray's autoscaler), starts one agent actor
           per bundle and runs :class:`NodeRun` in each, with RANK/WORLD_SIZE/MASTER_ADDR/... set.
``launch`` ``process_count_per_node > 1``: starts the command that many times on this node with
           LOCAL_RANK and RANK set (what the runner supervises as "the script").

:class:`NodeRun` copies the working dir into a per-run node folder
``<node_root>/runs/<run>/a<attempt>/n<k>/`` and starts the runner there (its own session) with
the spool and artifacts in that folder; the workspace pulls them (see
``compute.cluster.ray.files``).
Node ``k > 0`` reports as a child run ``<run>_node<k>``. A small reaper ends the runner and
the script when the agent dies without saying so (its node was lost): a node that goes away
takes its processes with it, as a preempted VM would.

Standard library only, except the ``gang`` mode, which imports Ray (present on every node).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from runyard.runtime import jobwire
from runyard.runtime.spool import SpoolWriter

#: Placeholder in a command for the node's own interpreter (the one running this agent).
NODE_PYTHON = "{runyard:node-python}"
#: Exit status of a gang driver that lost a node (the workspace starts a new attempt).
EXIT_NODE_LOST = 75
#: How long the other nodes of a multi-node run may go on after node 0 ended.
GANG_GRACE_S = 30.0
_REAPER = ('while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; kill -9 -"$2" 2>/dev/null; '
           '[ -f "$3" ] && kill -9 -"$(cat "$3")" 2>/dev/null; exit 0')


def encode_spec(spec: dict[str, Any]) -> str:
    """The command-line form of a spec."""
    return base64.urlsafe_b64encode(zlib.compress(json.dumps(spec).encode(), 6)).decode()


def decode_spec(text: str) -> dict[str, Any]:
    """Inverse of :func:`encode_spec`."""
    data: dict[str, Any] = json.loads(zlib.decompress(base64.urlsafe_b64decode(text)))
    return data


def node_dir(spec: dict[str, Any], k: int) -> Path:
    """The folder of node ``k`` of this attempt."""
    return Path(str(spec["node_root"]), "runs", str(spec["run_id"]), f"a{spec['attempt']}",
                f"n{k}")


def node_run_id(spec: dict[str, Any], k: int) -> str:
    """Node 0 reports as the run itself; node ``k`` as a child run."""
    if k == 0:
        return str(spec["run_id"])
    attempt = int(spec["attempt"])
    return f"{spec['run_id']}_node{k}" if attempt == 1 else \
        f"{spec['run_id']}_a{attempt}_node{k}"


def free_port() -> int:
    """A TCP port free on this node now."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def rank_env(node_rank: int, hosts: list[str], procs: int, master: tuple[str, int],
             folder: Path) -> dict[str, str]:
    """PyTorch (torchrun) and MPI-style variables for the first process of a node."""
    nodes = len(hosts)
    hostfile = folder / "hostfile"
    hostfile.write_text("".join(f"{h} slots={procs}\n" for h in hosts))
    world = nodes * procs
    return {
        "RANK": str(node_rank * procs), "LOCAL_RANK": "0", "WORLD_SIZE": str(world),
        "NODE_RANK": str(node_rank), "GROUP_RANK": str(node_rank),
        "LOCAL_WORLD_SIZE": str(procs), "NODE_COUNT": str(nodes),
        "MASTER_ADDR": master[0], "MASTER_PORT": str(master[1]),
        "AZ_BATCH_HOST_LIST": ",".join(hosts), "AZ_BATCHAI_MPI_MASTER_NODE": master[0],
        "AZ_BATCH_MASTER_NODE": f"{master[0]}:{master[1]}",
        "OMPI_COMM_WORLD_SIZE": str(world), "OMPI_COMM_WORLD_RANK": str(node_rank * procs),
        "OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_LOCAL_SIZE": str(procs),
        "OMPI_COMM_WORLD_NODE_RANK": str(node_rank), "RUNYARD_HOSTFILE": str(hostfile),
    }


class NodeRun:
    """One node's part of an attempt: the runner, its reaper, and how to stop them."""

    def __init__(self, spec: dict[str, Any], k: int) -> None:
        self.spec = spec
        self.k = k
        self.dir = node_dir(spec, k)
        self.proc: subprocess.Popen[bytes] | None = None
        self.reaper: subprocess.Popen[bytes] | None = None

    def prepare(self, extra_env: dict[str, str]) -> dict[str, Any]:
        """Make the node folder (working copy, spool, artifacts) and the runner's job."""
        spec, d = self.spec, self.dir
        wd, spool, artifacts = d / "wd", d / "spool", d / "artifacts"
        for sub in (spool, artifacts):
            sub.mkdir(parents=True, exist_ok=True)
        if not wd.exists():
            if spec.get("has_snapshot"):
                tmp = d / ".wd.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(os.getcwd(), tmp, symlinks=True)
                os.replace(tmp, wd)
            else:
                wd.mkdir(parents=True, exist_ok=True)
        run_id = node_run_id(spec, self.k)
        if self.k > 0:  # announce the child run before its runner reports anything
            writer = SpoolWriter(spool, f"agent-a{spec['attempt']}", run_id)
            writer.emit("child", parent_id=spec["run_id"], display_name=f"node {self.k}",
                        tags={"runyard.node_rank": str(self.k)})
            writer.close()
        bundle = str(Path(__file__).resolve().parents[2])
        env = jobwire.script_env(spec, run_id=run_id, spool_dir=str(spool),
                                 artifacts_dir=str(artifacts), bundle_dir=bundle,
                                 pythonpath=os.environ.get("PYTHONPATH", ""), extra=extra_env)
        command = [sys.executable if c == NODE_PYTHON else str(c) for c in spec["command"]]
        procs = int(spec.get("process_count_per_node") or 1)
        if procs > 1:
            command = [sys.executable, "-m", "runyard.runtime.clusteragent", "launch",
                       str(procs), "--", *command]
        job = jobwire.runner_job(spec, run_id=run_id, workdir=str(wd),
                                 artifacts_dir=str(artifacts), spool_dir=str(spool), env=env,
                                 command=command,
                                 env_cache_dir=str(Path(spec["node_root"]) / "envs"),
                                 input_blobs=spec.get("input_blobs"),
                                 input_views=spec.get("input_views"))
        # the node's working copy goes when its run ends, as on the other kinds
        job["remove_workdir"] = not spec.get("keep_run_folders")
        (d / "job.json").write_text(json.dumps(job))
        return job

    def start_reaper(self, runner_pid: int) -> None:
        """A detached shell that kills the runner's and the script's process groups once
        this agent process is gone (its node was lost)."""
        self.reaper = subprocess.Popen(
            ["/bin/sh", "-c", _REAPER, "reaper", str(os.getpid()), str(runner_pid),
             str(self.dir / "script.pid")], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        (self.dir / "agent.json").write_text(json.dumps({
            "agent_pid": os.getpid(), "runner_pid": runner_pid, "reaper_pid": self.reaper.pid,
            "node_id": os.environ.get("RAY_NODE_ID", "")}))

    def retire_reaper(self) -> None:
        """The runner ended normally: the reaper has nothing left to do."""
        if self.reaper is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.reaper.pid, signal.SIGKILL)
            self.reaper.wait()

    def run_in_process(self, extra_env: dict[str, str]) -> int:
        """Run the runner in this process (saves an interpreter start on the hot path)."""
        from runyard.runtime.runner import Runner  # noqa: PLC0415

        job = self.prepare(extra_env)
        self.start_reaper(os.getpid())
        try:
            return Runner(job).run()
        finally:
            self.retire_reaper()

    def start(self, extra_env: dict[str, str]) -> None:
        """Start the runner (own session) and the reaper that outlives this agent."""
        self.prepare(extra_env)
        runner_env = dict(os.environ)
        bundle = str(Path(__file__).resolve().parents[2])
        runner_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (bundle, os.environ.get("PYTHONPATH", "")) if p)
        with open(self.dir / "runner.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runyard.runtime.runner", str(self.dir / "job.json")],
                cwd=self.dir, env=runner_env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self.start_reaper(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: the runner cancels the script and reports Canceled."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def wait(self) -> int:
        """Wait for the runner; then retire the reaper. Returns the runner's exit status."""
        assert self.proc is not None
        code = self.proc.wait()
        self.retire_reaper()
        return code


# -- modes ----------------------------------------------------------------------------------------
def run_single(spec: dict[str, Any]) -> int:
    """Node 0 of a one-node run (this process is the Ray job's entrypoint)."""
    node = NodeRun(spec, 0)
    node.dir.mkdir(parents=True, exist_ok=True)
    procs = int(spec.get("process_count_per_node") or 1)
    env = rank_env(0, ["127.0.0.1"], procs, ("127.0.0.1", free_port()), node.dir)
    return node.run_in_process(env)


class NodeAgent:
    """The actor that runs one node's part of a gang (multi-node) run."""

    def __init__(self, spec: dict[str, Any], k: int) -> None:
        self.node = NodeRun(spec, k)
        self.node.dir.mkdir(parents=True, exist_ok=True)
        self._stopped = threading.Event()

    def info(self) -> tuple[str, int]:
        """(this node's IP, a free port on it)."""
        import ray  # noqa: PLC0415

        util: Any = ray.util
        return str(util.get_node_ip_address()), free_port()

    def run(self, master: tuple[str, int], hosts: list[str]) -> int:
        """Start the runner for this node and wait for it."""
        if self._stopped.is_set():
            return 0
        procs = int(self.node.spec.get("process_count_per_node") or 1)
        self.node.start(rank_env(self.node.k, hosts, procs, master, self.node.dir))
        return self.node.wait()

    def stop(self) -> None:
        """Cancel this node's part (the runner reports Canceled)."""
        self._stopped.set()
        self.node.stop()


def run_gang(spec: dict[str, Any]) -> int:
    """The entrypoint of a multi-node run: reserve the nodes, run every node's part."""
    import ray  # noqa: PLC0415
    from ray.exceptions import RayActorError, WorkerCrashedError  # noqa: PLC0415
    from ray.util.placement_group import placement_group  # noqa: PLC0415
    from ray.util.scheduling_strategies import (  # noqa: PLC0415
        PlacementGroupSchedulingStrategy,
    )

    ray.init(address="auto", log_to_driver=True)
    count = int(spec["node_count"])
    res = {k: v for k, v in (spec.get("resources") or {}).items() if v}
    pg = placement_group([dict(res) for _ in range(count)], strategy="STRICT_SPREAD",
                         name=f"runyard-{spec['run_id']}-a{spec['attempt']}")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(f"runyard: waiting for {count} nodes of {res}", flush=True)
    ready = pg.ready()
    while not stopping.is_set():
        done, _ = ray.wait([ready], timeout=0.5)
        if done:
            break
    if stopping.is_set():
        return 0
    from runyard.runtime import clusteragent  # noqa: PLC0415  (by reference, not __main__)

    actor_cls: Any = ray.remote(clusteragent.NodeAgent)
    actors: list[Any] = [actor_cls.options(
        num_cpus=res.get("CPU", 0), num_gpus=res.get("GPU", 0), memory=res.get("memory"),
        max_concurrency=4, scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=i)).remote(spec, i) for i in range(count)]
    infos = ray.get([a.info.remote() for a in actors])
    hosts = [ip for ip, _ in infos]
    master = infos[0]
    print(f"runyard: nodes {hosts}; master {master[0]}:{master[1]}", flush=True)
    refs = {a.run.remote(master, hosts): i for i, a in enumerate(actors)}
    pending = list(refs)
    lost = False
    stop_sent = 0.0
    first_done = 0.0
    while pending:
        late = first_done and time.monotonic() - first_done > GANG_GRACE_S
        if (stopping.is_set() or late) and not stop_sent:
            stop_sent = time.monotonic()  # cancel, or node 0 ended and the rest hang on
            for a in actors:
                a.stop.remote()
        done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
        for ref in done:
            try:
                ray.get(ref)
            except (RayActorError, WorkerCrashedError) as exc:
                print(f"runyard: node {refs[ref]} was lost: {exc}", flush=True)
                lost = True
            if refs[ref] == 0 and not first_done:
                first_done = time.monotonic()
        if lost:
            for a in actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
            return EXIT_NODE_LOST
        if stop_sent and time.monotonic() - stop_sent > 30:
            for a in actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
            break
    return 0


def launch(procs: int, command: list[str]) -> int:
    """Start ``command`` ``procs`` times on this node (LOCAL_RANK, RANK per process)."""
    node_rank = int(os.environ.get("NODE_RANK", "0"))
    children: list[subprocess.Popen[bytes]] = []
    for local in range(procs):
        env = dict(os.environ)
        rank = node_rank * procs + local
        env.update({"LOCAL_RANK": str(local), "RANK": str(rank),
                    "OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_LOCAL_RANK": str(local)})
        children.append(subprocess.Popen(command, env=env))

    def forward(signum: int, _frame: Any) -> None:
        for c in children:
            if c.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(c.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    first_failure: float | None = None
    code = 0
    while any(c.poll() is None for c in children):
        bad = [c.returncode for c in children if c.returncode not in (None, 0)]
        if bad and first_failure is None:
            first_failure = time.monotonic()
            code = bad[0]
        if first_failure is not None and time.monotonic() - first_failure > 30:
            forward(signal.SIGKILL, None)
        time.sleep(0.05)
    codes = [c.returncode for c in children]
    return code or next((c for c in codes if c), 0)


def main(argv: list[str] | None = None) -> int:
    """``python -m runyard.runtime.clusteragent run|gang SPEC`` or ``launch N -- CMD...``."""
    args = sys.argv[1:] if argv is None else argv
    mode = args[0]
    if mode == "launch":
        sep = args.index("--")
        return launch(int(args[1]), args[sep + 1:])
    spec = decode_spec(args[1])
    if mode == "gang":
        return run_gang(spec)
    return run_single(spec)


if __name__ == "__main__":
    sys.exit(main())
