"""The ``cluster`` kind (managed compute, Azure ML ``AmlCompute``): a Ray cluster.

``ComputeTarget.create(ws, name, ClusterCompute.provisioning_configuration(...))`` starts a Ray
head whose autoscaler (Ray's own) adds nodes of ``vm_size`` while runs wait for them and removes
them after ``idle_seconds_before_scaledown``, between ``min_nodes`` and ``max_nodes``. Runs are
Ray jobs (see :mod:`runyard.runtime.clusteragent`); the workspace pulls their spool and
artifacts like for every other kind. With ``provider="local"`` the nodes are raylets on this
machine started by Ray's fake multi-node provider; the cloud providers and KubeRay get generated
Ray configs (:meth:`ClusterCompute.cluster_config`), which need credentials to run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shlex
import shutil
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from runyard.compute.base import (
    ComputeKind,
    JobEvents,
    JobHandle,
    JobSpec,
    TargetStatus,
)
from runyard.compute.capabilities import CLUSTER
from runyard.compute.cluster.config import (
    DEAD_NODE_WINDOW_S,
    READY_TIMEOUT_S,
    RUN_BASED_TAG,
    ClusterProvisioningConfiguration,
    check_run_based,
    request_of,
    requested_resources,
)
from runyard.compute.cluster.ray import files as nodefiles
from runyard.compute.cluster.ray import head as headmod
from runyard.compute.cluster.ray.configs import local_config
from runyard.compute.cluster.ray.rest import TERMINAL_JOB_STATES, RayApiError, RayDashboard
from runyard.compute.config import ComputeConfiguration
from runyard.compute.vmsizes import get_vm_size
from runyard.errors import (
    ComputeTargetError,
    ComputeTargetNotSupported,
    InvalidParameter,
    TargetUnavailable,
)
from runyard.runtime import procmarks
from runyard.runtime.clusteragent import EXIT_NODE_LOST, NODE_PYTHON, encode_spec, node_run_id
from runyard.runtime.runner import DRIVER_LOG

if TYPE_CHECKING:
    from runyard.context import WorkspaceContext
    from runyard.runconfig import RunConfiguration


@dataclass
class ClusterHandle(JobHandle):
    """A Ray job on one cluster incarnation (``cluster_uid``) and what restarts it."""

    kind: ClassVar[str] = "cluster"
    cluster_uid: str = ""
    node_count: int = 1
    spec: dict[str, Any] = field(default_factory=dict)
    runtime_env: dict[str, Any] = field(default_factory=dict)
    lowpriority: bool = False
    job_id: str = ""
    submitted_at: float = 0.0


class ClusterKind(ComputeKind):
    """A managed, autoscaling Ray cluster (Azure ML ``AmlCompute``)."""

    kind: ClassVar[str] = "cluster"
    capabilities = CLUSTER
    managed: ClassVar[bool] = True
    config_class: ClassVar[type[ComputeConfiguration]] = ClusterProvisioningConfiguration
    updatable: ClassVar[tuple[str, ...]] = ("min_nodes", "max_nodes",
                                            "idle_seconds_before_scaledown")
    #: The interpreter of a user-managed run is the node's (see ``submit``).
    interpreter_on_target: ClassVar[bool] = True
    handle_class: ClassVar[type[JobHandle]] = ClusterHandle

    _uploaded: ClassVar[set[tuple[str, str]]] = set()
    _upload_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def run_based(cls, ctx: WorkspaceContext, run_config: RunConfiguration
                  ) -> ComputeConfiguration | None:
        """``target="amlcompute"`` (Azure's name), or ``target="cluster"`` with
        ``amlcompute.vm_size`` set and no target named ``cluster``: a cluster for this run."""
        rc = run_config
        if rc.target == "cluster":
            if not rc.amlcompute.vm_size or ctx.store.get_compute_target("cluster") is not None:
                return None
        elif rc.target != "amlcompute":
            return None
        check_run_based(rc)
        ac = rc.amlcompute
        return ClusterProvisioningConfiguration.build(
            vm_size=ac.vm_size, vm_priority=ac.vm_priority or "dedicated", min_nodes=0,
            max_nodes=max(int(ac._cluster_max_node_count), rc.node_count),
            idle_seconds_before_scaledown=30,
            tags={"runyard.retain": str(bool(ac._retain_cluster))},
            description="made for one run (run-based creation); deleted when the run ends")

    @classmethod
    def run_based_name(cls, run_config: RunConfiguration) -> str | None:
        """The name the run asked for its cluster (``amlcompute._name``), if any."""
        name = run_config.amlcompute._name
        return str(name) if name else None

    @classmethod
    def preflight(cls, config: ComputeConfiguration) -> None:
        assert isinstance(config, ClusterProvisioningConfiguration)
        if config.provider != "local":
            what = "RayCluster manifest" if config.provider == "kubernetes" else \
                "Ray cluster-launcher config"
            raise ComputeTargetNotSupported(
                f"provider {config.provider!r}: runyard generates the {what} "
                f"(ClusterCompute.cluster_config(config, name)) but starting it needs "
                f"{config.provider} credentials, which this installation does not use; "
                "start it with `ray up` / `kubectl apply`, or use provider='local'")
        try:
            import ray  # noqa: F401, PLC0415
        except ImportError as exc:
            raise ComputeTargetNotSupported(
                "the cluster kind runs on Ray: install the 'ray' extra "
                "(pip install 'runyard[ray]')") from exc

    # -- state -------------------------------------------------------------------------------
    @property
    def cluster_dir(self) -> Path:
        """``<workspace>/.runyard/clusters/<name>``."""
        return self.ctx.data_dir / "clusters" / self.name

    def head_state(self) -> headmod.HeadState | None:
        """The cluster's saved head state (None before provisioning / after deletion)."""
        return headmod.HeadState.load(self.cluster_dir)

    def _token(self) -> str:
        sec = self.secret("cluster_token")
        return sec.reveal() if sec is not None else ""

    def dashboard(self, state: headmod.HeadState | None = None) -> RayDashboard:
        """HTTP client of the cluster's head."""
        hs = state or self.head_state()
        if hs is None:
            raise TargetUnavailable(f"cluster {self.name!r} has no running head")
        return RayDashboard(hs.dashboard_url, self._token())

    @property
    def _config(self) -> ClusterProvisioningConfiguration:
        return ClusterProvisioningConfiguration.from_config(self.config)

    def _write_autoscaler_config(self, hs: headmod.HeadState,
                                 config: ClusterProvisioningConfiguration) -> None:
        import yaml  # noqa: PLC0415

        data = local_config(config, self.name, hs.gcs_address,
                            str(hs.path(headmod.NODES_FILE)))
        target = hs.path(headmod.AUTOSCALER_FILE)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(tmp, target)  # the autoscaler re-reads it on every update

    # -- provisioning ------------------------------------------------------------------------
    def provision(self) -> str | None:
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        hs = headmod.new_state(self.cluster_dir, self.cluster_dir / "node")
        Path(hs.node_root).mkdir(parents=True, exist_ok=True)
        hs.save()
        self._write_autoscaler_config(hs, self._config)
        headmod.start_head(hs, self._token())
        return "Creating"

    def _settle(self) -> tuple[str, list[str]]:
        """Finish a Creating state once the head's start is over; returns (state, errors)."""
        rec = self.record
        if rec is None:
            return "Unknown", []
        if rec.state != "Creating":
            return rec.state, list(rec.errors)
        hs = self.head_state()
        if hs is None:
            return "Creating", []
        outcome, message = headmod.start_outcome(hs)
        if outcome == "starting":
            return "Creating", []
        if outcome == "started" and self.dashboard(hs).alive():
            self.ctx.store.update_compute_target(self.name, state="Succeeded", errors=[])
            return "Succeeded", []
        if outcome == "started":
            if time.time() - hs.started_at < 60:
                return "Creating", []
            message = "the Ray head started but its dashboard never answered"
        headmod.stop_processes(hs.uid, hs.sid)  # nothing of a failed cluster stays running
        errors = [f"Ray could not start the cluster: {message}"]
        self.ctx.store.update_compute_target(self.name, state="Failed", errors=errors)
        return "Failed", errors

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> headmod.HeadState:
        """Block until the head is up; raise ``TargetUnavailable`` if it failed or is gone."""
        deadline = time.monotonic() + timeout
        while True:
            state, errors = self._settle()
            if state == "Succeeded":
                hs = self.head_state()
                if hs is not None:
                    return hs
            if state in ("Failed", "Deleting", "Unknown") or time.monotonic() > deadline:
                raise TargetUnavailable(f"cluster {self.name!r} is {state}"
                                        + (f": {'; '.join(errors)}" if errors else ""))
            time.sleep(0.2)

    def apply_update(self, new_config: ComputeConfiguration) -> None:
        assert isinstance(new_config, ClusterProvisioningConfiguration)
        hs = self.head_state()
        if hs is not None:
            self._write_autoscaler_config(hs, new_config)

    def teardown(self) -> None:
        """Stop every process of the cluster, check that none is left, then remove its folders.

        Whatever process calls it (the creator or any other, after runs, updates or a failed
        start): the cluster's processes are found from its saved state, by the session of its
        head and by the marker ``RUNYARD_RAY_CLUSTER=<uid>`` that every one of them inherits
        (head, raylets, agents, workers, job drivers, runners, scripts; see
        :mod:`runyard.compute.cluster.ray.head`). When some cannot be stopped it raises
        ``ComputeTargetError`` and keeps the state, so that ``delete()`` can be tried again.
        """
        hs = self.head_state()
        if hs is not None:
            headmod.stop_processes(hs.uid, hs.sid)
            left = headmod.owned_pids(hs.uid, hs.sid)
            if left:
                raise ComputeTargetError(
                    f"cluster {self.name!r}: {len(left)} of its processes could not be stopped "
                    f"(pids {', '.join(map(str, sorted(left)[:10]))}); try delete() again",
                    details={"pids": sorted(left)})
            nodefiles.remove_tree(hs.temp_dir)
        nodefiles.remove_tree(self.cluster_dir)

    # -- status ------------------------------------------------------------------------------
    def status(self) -> TargetStatus:
        state, errors = self._settle()
        if state != "Succeeded":
            return TargetStatus(state, errors, _empty_counts())
        hs = self.head_state()
        try:
            view = self._view(hs)
        except (RayApiError, TargetUnavailable) as exc:
            return TargetStatus(state, [str(exc)], _empty_counts())
        counts = view["counts"]
        current = sum(counts[k] for k in ("idle", "running", "leaving"))
        target = current - counts["leaving"] + counts["preparing"]
        steady = counts["preparing"] == 0 and counts["leaving"] == 0
        return TargetStatus(state, errors + view["errors"], counts, current_node_count=current,
                            target_node_count=target,
                            allocation_state="steady" if steady else "resizing")

    def _view(self, hs: headmod.HeadState | None) -> dict[str, Any]:
        """Nodes and their states from the GCS (alive/dead, why) and the autoscaler (usage,
        pending launches, failures)."""
        dash = self.dashboard(hs)
        nodes = [n for n in dash.gcs_nodes() if not n.get("is_head_node")]
        cs = dash.cluster_status().get("clusterStatus") or {}
        report = cs.get("autoscalerReport") or {}
        usage = (cs.get("loadMetricsReport") or {}).get("usageByNode") or {}
        managed = report.get("nodeTypeMapping") or {}
        # the autoscaler's usage lags a loop behind: with no Ray job left unfinished, no node
        # runs anything, whatever the last usage report says
        live_jobs = any(j.get("status") not in TERMINAL_JOB_STATES for j in dash.jobs())
        low = self._config.vm_priority == "lowpriority"
        counts = _empty_counts()
        now_ms = time.time() * 1000
        out_nodes: list[dict[str, Any]] = []
        for n in nodes:
            node_id = str(n.get("node_id"))
            if n.get("state") == "ALIVE":
                used = usage.get(node_id) or {}
                busy = live_jobs and any(
                    float(v[0]) > 0 for k, v in used.items()
                    if k in ("CPU", "GPU", "memory") and isinstance(v, list) and v)
                if managed and node_id not in managed:
                    node_state = "leaving"  # the autoscaler let it go; Ray has not yet
                else:
                    node_state = "running" if busy else "idle"
            else:
                ended = float(n.get("end_time_ms") or 0)
                if _expected_death(n) or now_ms - ended > DEAD_NODE_WINDOW_S * 1000:
                    continue
                node_state = "preempted" if low else "unusable"
            counts[node_state] += 1
            out_nodes.append({
                "node_id": node_id, "node_type": managed.get(node_id, self._config.vm_size),
                "private_ip_address": n.get("node_ip"), "node_state": node_state,
                "resources": n.get("resources_total", {}),
                "started_at": float(n.get("start_time_ms") or 0) / 1000,
                "state_message": n.get("state_message")})
        pending = sum(int(v) for v in (report.get("pendingLaunches") or {}).values())
        # a node that joined Ray may still be listed as pending by the autoscaler for a loop:
        # never count more nodes than max_nodes allows
        up = counts["idle"] + counts["running"] + counts["leaving"]
        room = max(0, int(self._config.max_nodes or 0) - up)
        counts["preparing"] += min(room, pending + len(report.get("pendingNodes") or []))
        failed = report.get("failedNodes") or []
        counts["unusable"] += len(failed)
        errors = [f"node {f[0] if isinstance(f, list) else f} failed to start" for f in failed]
        return {"counts": counts, "nodes": out_nodes, "errors": errors}

    def list_nodes(self) -> list[dict[str, Any]]:
        """The cluster's worker nodes: id, IP, state, resources and (local) raylet pid."""
        hs = self.head_state()
        nodes: list[dict[str, Any]] = self._view(hs)["nodes"]
        pids: dict[str, Any] = {}
        if hs is not None:
            with contextlib.suppress(OSError, ValueError):
                pids = json.loads(hs.path(headmod.NODES_FILE).read_text())
        jobs = self.dashboard(hs).jobs()
        for node in nodes:
            node["raylet_pid"] = (pids.get(node["node_id"]) or {}).get("raylet_pid")
            node["run_ids"] = sorted(
                {str((j.get("metadata") or {}).get("runyard_run_id")) for j in jobs
                 if j.get("driver_node_id") == node["node_id"]
                 and j.get("status") == "RUNNING"
                 and (j.get("metadata") or {}).get("runyard_run_id")})
        return nodes

    # -- runs --------------------------------------------------------------------------------
    def check_run(self, run_config: Any) -> None:
        state, errors = self._settle()
        if state not in ("Creating", "Succeeded"):
            raise TargetUnavailable(f"cluster {self.name!r} is {state}"
                                    + (f": {'; '.join(errors)}" if errors else ""))
        size = get_vm_size(self._config.vm_size)
        requested_resources(size, request_of(run_config))
        assert self._config.max_nodes is not None
        if run_config.node_count > self._config.max_nodes:
            raise InvalidParameter("node_count", f"the run needs {run_config.node_count} "
                                   f"nodes but cluster {self.name!r} has max_nodes="
                                   f"{self._config.max_nodes}; raise max_nodes with update()")


    def _package(self, dash: RayDashboard, key: str, build: Any) -> str:
        """Upload a zip to the head once (``gcs://_ray_pkg_<key>.zip``); returns its URI."""
        uri = f"gcs://_ray_pkg_{key}.zip"
        memo = (dash.url, uri)
        with self._upload_lock:
            if memo in self._uploaded:
                return uri
        if not dash.package_exists(uri):
            dash.upload_package(uri, build())
        with self._upload_lock:
            self._uploaded.add(memo)
        return uri

    def _snapshot_zip(self, snapshot_id: str) -> bytes:
        store = self.ctx.snapshots
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for entry in store.manifest(snapshot_id):
                info = zipfile.ZipInfo(entry.path, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o100000 | entry.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, store.blob_path(entry.blob).read_bytes())
        return buf.getvalue()

    def _bundle_zip(self) -> tuple[str, bytes]:
        from runyard.runtime.bundle import bundle_files  # noqa: PLC0415

        files = bundle_files()
        h = hashlib.sha256()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, src in files:
                data = src.read_bytes()
                h.update(rel.encode() + b"\0" + data + b"\0")
                zf.writestr(zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0)), data)
        return h.hexdigest()[:32], buf.getvalue()

    def _runtime_env(self, dash: RayDashboard, snapshot_id: str | None) -> dict[str, Any]:
        key, data = self._bundle_zip()
        env: dict[str, Any] = {"py_modules": [self._package(dash, key, lambda: data)]}
        if snapshot_id:
            env["working_dir"] = self._package(dash, snapshot_id[:32],
                                               lambda: self._snapshot_zip(snapshot_id))
        return env

    def capacity(self) -> int | None:
        """``max_nodes``: each run takes a node (its whole VM size unless it asks for less)."""
        return int(self._config.max_nodes or 0) or None

    def ready(self) -> bool:
        """Whether the cluster's head is up (runs wait in Queued until it is)."""
        return self._settle()[0] == "Succeeded" and self.head_state() is not None

    def _ready_head(self) -> headmod.HeadState:
        state, errors = self._settle()
        hs = self.head_state()
        if state != "Succeeded" or hs is None:
            raise TargetUnavailable(f"cluster {self.name!r} is {state}"
                                    + (f": {'; '.join(errors)}" if errors else ""))
        return hs

    def submit(self, job: JobSpec) -> ClusterHandle:
        hs = self._ready_head()
        config = self._config
        size = get_vm_size(config.vm_size)
        resources = requested_resources(size, job.resources)
        command = [NODE_PYTHON if (i == 0 and c in ("python", "python3", sys.executable))
                   else c for i, c in enumerate(job.command)]
        spec: dict[str, Any] = {
            **job.to_dict(), "command": command, "node_root": hs.node_root,
            "resources": resources, "has_snapshot": bool(job.snapshot_id),
            "keep_run_folders": self.ctx.keep_run_folders}
        if job.inputs:  # the nodes read inputs from a cache under the (shared) node root
            spec["input_blobs"] = self._place_inputs(hs, job)
            spec["input_views"] = str(Path(hs.node_root) / "data-views")
        dash = self.dashboard(hs)
        runtime_env = self._runtime_env(dash, job.snapshot_id)
        handle = ClusterHandle(run_id=job.run_id, attempt=job.attempt, cluster_uid=hs.uid,
                               node_count=job.node_count, spec=spec, runtime_env=runtime_env,
                               lowpriority=config.vm_priority == "lowpriority")
        return self._start(dash, hs, handle, job.attempt)

    def _place_inputs(self, hs: headmod.HeadState, job: JobSpec) -> str:
        """Put the blobs of the job's inputs in the cluster's data cache
        (``<node root>/data/<sha[:2]>/<sha>``, shared by every run on the cluster: only missing
        blobs are copied from the workspace's cache); returns the runner's template.

        The node root is where nodes write their folders; like the artifacts, this needs it on
        a filesystem the nodes share with the workspace (the local provider's case)."""
        root = Path(hs.node_root) / "data"
        cache = self.ctx.dataset_cache_dir
        for sha, size in job.input_blobs().items():
            dest = root / sha[:2] / sha
            with contextlib.suppress(OSError):
                if dest.stat().st_size == size:
                    continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{sha}.{os.getpid()}")
            # a copy, not a link: a node's cache never shares bytes with the workspace's
            # (a script that writes through its read-only input changes only the node's copy,
            # which its runner then drops)
            shutil.copyfile(cache / sha[:2] / sha, tmp)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        return f"{root}/{{sha2}}/{{sha}}"

    def _start(self, dash: RayDashboard, hs: headmod.HeadState, handle: ClusterHandle,
               attempt: int) -> ClusterHandle:
        spec = {**handle.spec, "attempt": attempt}
        resources = spec["resources"]
        gang = int(spec["node_count"]) > 1
        mode = "gang" if gang else "run"
        entry = (f"{shlex.quote(hs.python)} -m runyard.runtime.clusteragent {mode} "
                 f"{encode_spec(spec)}")
        # one job per (run, attempt) on this cluster: a start repeated after its submitter
        # died finds the first one instead of running the script twice
        submission_id = f"{spec['run_id']}-a{attempt}-{hs.uid[:8]}"
        if dash.job(submission_id) is not None:
            return dataclasses.replace(handle, job_id=submission_id, attempt=attempt,
                                       submitted_at=time.time())
        request: dict[str, Any] = {
            "entrypoint": entry, "runtime_env": handle.runtime_env,
            "submission_id": submission_id,
            "metadata": {"runyard_run_id": spec["run_id"], "runyard_attempt": str(attempt)}}
        if gang:  # the gang driver runs on the head; the nodes are its placement group
            request["entrypoint_resources"] = {"node:__internal_head__": 0.001}
        else:
            request["entrypoint_num_cpus"] = resources.get("CPU", 1)
            if resources.get("GPU"):
                request["entrypoint_num_gpus"] = resources["GPU"]
            if resources.get("memory"):
                request["entrypoint_memory"] = int(resources["memory"])
        job_id = dash.submit_job(**request)
        return dataclasses.replace(handle, job_id=job_id, attempt=attempt,
                                   submitted_at=time.time())

    def restart(self, handle: ClusterHandle, attempt: int) -> ClusterHandle:
        hs = self.wait_ready()
        self._archive_logs(handle)
        return self._start(self.dashboard(hs), hs, handle, attempt)

    def _archive_logs(self, handle: ClusterHandle) -> None:
        """Keep the last attempt's driver log as ``system_logs/attempt_<n>/driver_log.txt``;
        the new attempt's log starts empty."""
        from runyard.entities import FileRecord  # noqa: PLC0415

        old = int(handle.attempt)
        art = self.artifacts_dir(handle.run_id)
        log = art / DRIVER_LOG
        if not log.exists():
            return
        name = f"system_logs/attempt_{old}/driver_log.txt"
        (art / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(log, art / name)
        self.ctx.store.add_files([FileRecord(handle.run_id, name,
                                                   (art / name).stat().st_size)])

    def _spools(self, hs: headmod.HeadState, handle: ClusterHandle) -> list[tuple[str, str]]:
        base = Path(hs.node_root) / "runs" / handle.run_id / f"a{handle.attempt}"
        return [(f"n{k}.", str(base / f"n{k}" / "spool"))
                for k in range(int(handle.node_count))]

    def poll(self, handle: ClusterHandle, offsets: dict[str, int]) -> JobEvents:
        hs = self.head_state()
        if hs is None or hs.uid != handle.cluster_uid:
            return JobEvents({}, alive=False, reason=f"cluster {self.name!r} that ran the job "
                             "is gone")
        dash = self.dashboard(hs)
        try:
            info = dash.job(handle.job_id)
        except RayApiError as exc:
            if headmod.owned_pids(hs.uid, hs.sid):
                return JobEvents({}, alive=True)  # a head that is busy or restarting
            return JobEvents({}, alive=False, reason=f"the cluster's head is gone ({exc})")
        status = (info or {}).get("status", "FAILED")
        alive = status not in TERMINAL_JOB_STATES
        files = nodefiles.SharedFiles()
        chunks = nodefiles.pull_chunks(files, self._spools(hs, handle), offsets)
        base = Path(hs.node_root) / "runs" / handle.run_id / f"a{handle.attempt}"
        spec = {**handle.spec, "attempt": handle.attempt}
        for k in range(int(handle.node_count)):
            dest = self.artifacts_dir(node_run_id(spec, k))
            with nodefiles.pull_lock(dest):  # one puller at a time appends to the logs
                nodefiles.mirror(files, str(base / f"n{k}" / "artifacts"), dest)
        if alive or chunks:
            return JobEvents(chunks, alive=alive)
        lost = self._node_lost(dash, info)
        if lost and handle.lowpriority:
            return JobEvents({}, alive=False, restart=f"preempted: {lost}")
        message = (info or {}).get("message") or f"the Ray job ended {status}"
        if lost:
            message = f"{lost} (a dedicated cluster does not restart runs); Ray: {message}"
        return JobEvents({}, alive=False, reason=f"Ray job {status}: {message}"[:4000])

    @staticmethod
    def _node_lost(dash: RayDashboard, info: dict[str, Any] | None) -> str | None:
        """Why the job's node is gone, if it is (None for an ordinary job end)."""
        if info is None:
            return "the Ray job is unknown to the head"
        if info.get("status") != "FAILED":
            return None
        if info.get("driver_exit_code") == EXIT_NODE_LOST:
            return "a node of the multi-node run was lost"
        node_id = info.get("driver_node_id")
        if node_id:
            with contextlib.suppress(RayApiError):
                for n in dash.nodes():
                    if n.get("nodeId") == node_id and n.get("state") == "DEAD":
                        return f"node {node_id[-6:]} was lost"
        text = str(info.get("message") or "")
        if "died" in text or "node" in text.lower() and "dead" in text.lower():
            return "the job's node was lost"
        return None

    def cancel(self, handle: ClusterHandle, *, wait_seconds: float = 20.0) -> None:
        hs = self.head_state()
        if hs is None or hs.uid != handle.cluster_uid:
            return
        dash = self.dashboard(hs)
        try:
            dash.stop_job(handle.job_id)
        except RayApiError:
            return
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(RayApiError):
                info = dash.job(handle.job_id)
                if info is None or info.get("status") in TERMINAL_JOB_STATES:
                    return
            time.sleep(0.1)

    def kill_leftovers(self, handle: ClusterHandle) -> int:
        """Stop the job's Ray job (when its cluster still runs), then end on this machine every
        process carrying the run marker of one of the attempt's nodes (the ``local`` provider's
        nodes are this machine's; Linux only, see :mod:`runyard.runtime.procmarks`)."""
        self.cancel(handle, wait_seconds=5.0)
        spec = {**handle.spec, "attempt": handle.attempt}
        count = 0
        for k in range(max(1, int(handle.node_count))):
            count += procmarks.stop_marked(
                procmarks.ENV_RUN_MARKER,
                procmarks.run_marker(node_run_id(spec, k), handle.attempt), grace=2.0)
        return count

    def on_run_end(self, run_id: str) -> bool:
        """A run-based cluster asks to be deleted once its run has ended (unless retained)."""
        rec = self.record  # (a deletion in progress still asks: the caller waits for it)
        if rec is None:
            return False
        tags = dict(rec.config.get("tags") or {})
        return tags.get(RUN_BASED_TAG) == run_id and tags.get("runyard.retain") != "True"


def _empty_counts() -> dict[str, int]:
    return {k: 0 for k in ("idle", "running", "preparing", "leaving", "preempted", "unusable")}


def _expected_death(node: dict[str, Any]) -> bool:
    """Whether a dead node was removed on purpose (scale-down, shutdown)."""
    msg = str(node.get("state_message") or "").lower()
    return "expected termination" in msg and "unexpected" not in msg
