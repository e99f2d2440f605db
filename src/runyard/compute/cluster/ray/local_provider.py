"""The ``local`` node provider: Ray's fake multi-node provider, with node memory and loopback.

Loaded by Ray's autoscaler (the monitor process on the head) through the cluster config's
``provider: {type: external,
module: runyard.compute.cluster.ray.local_provider.LocalNodeProvider}``.
Each node is a real raylet (with its dashboard and runtime-env agents) started and stopped by
Ray's own autoscaler. Two differences from Ray's fake provider: it cannot give a node a
``memory`` resource (it passes every non-CPU/GPU resource as a custom resource, which Ray
refuses for ``memory``), while this subclass passes it the way ``ray start --memory`` does, so
a node's shape follows its ``vm_size``; and each node gets its own runtime-env folder.

Imported only inside the monitor process (it needs Ray); never at ``import runyard``.
"""
# Ray's provider base classes are untyped.
# mypy: disable-error-code="no-untyped-call,dict-item,attr-defined"

from __future__ import annotations

import copy
import json
import os
from typing import Any

import ray
import ray._private.ray_constants as ray_constants
from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)

#: Written next to the cluster's state: node id -> raylet pid, for tests and diagnostics.
NODES_FILE_KEY = "runyard_nodes_file"


class LocalNodeProvider(FakeMultiNodeProvider):
    """Fake multi-node provider whose nodes get CPUs, GPUs *and memory* from their node type."""

    def _create_node_with_resources_and_labels(self, node_config: dict[str, Any],
                                               tags: dict[str, str], count: int,
                                               resources: dict[str, Any],
                                               labels: dict[str, str]) -> None:
        resources = copy.deepcopy(resources)
        with self.lock:
            node_type = tags[TAG_RAY_USER_NODE_TYPE]
            next_id = self._next_hex_node_id()
            ray_params = ray._private.parameter.RayParams(
                node_ip_address="127.0.0.1",
                min_worker_port=0,
                max_worker_port=0,
                dashboard_port=None,
                dashboard_agent_listen_port=0,
                num_cpus=resources.pop("CPU", 0),
                num_gpus=resources.pop("GPU", 0),
                memory=resources.pop("memory", None),
                object_store_memory=resources.pop("object_store_memory", None),
                resources=resources,
                labels=labels,
                # Each node unpacks runtime envs (working_dir, py_modules) in a folder of its
                # own, as a separate machine would: Ray re-extracts a package when a node first
                # uses it, which must not pull the files from under another node's job.
                runtime_env_dir_name=f"runtime_resources_{next_id[-5:]}",
                redis_address=self._gcs_address,
                gcs_address=self._gcs_address,
                env_vars={
                    "RAY_OVERRIDE_NODE_ID_FOR_TESTING": next_id,
                    "RAY_CLOUD_INSTANCE_ID": next_id,
                    "RAY_NODE_TYPE_NAME": node_type,
                    ray_constants.RESOURCES_ENVIRONMENT_VARIABLE: json.dumps(resources),
                    ray_constants.LABELS_ENVIRONMENT_VARIABLE: json.dumps(labels),
                },
            )
            node = ray._private.node.Node(ray_params, head=False, shutdown_at_exit=False,
                                          spawn_reaper=False)
            all_tags = {
                TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
                TAG_RAY_USER_NODE_TYPE: node_type,
                TAG_RAY_NODE_NAME: next_id,
                TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            }
            all_tags.update(tags)
            self._nodes[next_id] = {"tags": all_tags, "node": node}
            self._record()

    def terminate_node(self, node_id: str) -> None:
        super().terminate_node(node_id)
        with self.lock:
            self._record()

    def _record(self) -> None:
        """Write node id -> raylet pid (atomically) where the cluster config says."""
        path = self.provider_config.get(NODES_FILE_KEY)
        if not path:
            return
        out: dict[str, Any] = {}
        for node_id, entry in self._nodes.items():
            node = entry.get("node")
            if node is None:
                continue
            procs = node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET) or []
            out[node_id] = {"raylet_pid": procs[0].process.pid if procs else None,
                            "node_type": entry["tags"].get(TAG_RAY_USER_NODE_TYPE)}
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh)
        os.replace(tmp, path)
