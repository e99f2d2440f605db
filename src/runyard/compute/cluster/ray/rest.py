"""A small client of a Ray head's HTTP API (Jobs, packages, nodes, autoscaler status).

Standard library only, so the workspace process never imports Ray to submit, poll or cancel:
the same calls reach a head on this machine or across a network (Ray's documented Jobs REST API,
``/api/jobs/``, and the package upload the Jobs SDK itself uses, ``/api/packages/``). Every
request carries the cluster's bearer token (Ray token authentication).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from runyard.errors import TargetUnavailable

TERMINAL_JOB_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


class RayApiError(TargetUnavailable):
    """The head answered with an error (or did not answer)."""


class RayDashboard:
    """HTTP client of one Ray head (``http://host:dashboard_port``)."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
                ok404: bool = False, timeout: float | None = None) -> Any:
        """JSON in, JSON out (``None`` for a 404 when ``ok404``)."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = data if data is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=payload, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and ok404:
                return None
            text = exc.read().decode(errors="replace").strip()
            raise RayApiError(f"Ray head {self.url} answered {exc.code} to {method} {path}: "
                              f"{text[:2000]}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RayApiError(f"Ray head {self.url} is not reachable ({reason})") from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    # -- liveness ----------------------------------------------------------------------------
    def version(self, timeout: float = 2.0) -> dict[str, Any]:
        """``/api/version`` (a cheap liveness check)."""
        out = self.request("GET", "/api/version", timeout=timeout)
        return out if isinstance(out, dict) else {}

    def alive(self) -> bool:
        """Whether the head answers."""
        try:
            self.version()
        except RayApiError:
            return False
        return True

    # -- packages (runtime_env working_dir / py_modules) -------------------------------------
    def package_exists(self, uri: str) -> bool:
        """Whether ``gcs://_ray_pkg_....zip`` is already stored on the head."""
        protocol, name = uri.split("://", 1)
        return self.request("GET", f"/api/packages/{protocol}/{name}", ok404=True) is not None

    def upload_package(self, uri: str, zipped: bytes) -> None:
        """Store a zip for ``uri`` (what ``JobSubmissionClient`` does for a local folder)."""
        protocol, name = uri.split("://", 1)
        self.request("PUT", f"/api/packages/{protocol}/{name}", data=zipped, timeout=300)

    # -- jobs --------------------------------------------------------------------------------
    def submit_job(self, **request: Any) -> str:
        """POST ``/api/jobs/`` (fields of Ray's ``JobSubmitRequest``); returns the id."""
        out = self.request("POST", "/api/jobs/", {k: v for k, v in request.items()
                                                   if v is not None})
        return str(out["submission_id"])

    def job(self, submission_id: str) -> dict[str, Any] | None:
        """The job's details (status, message, driver_node_id, ...) or None if unknown."""
        out = self.request("GET", f"/api/jobs/{submission_id}", ok404=True)
        return out if isinstance(out, dict) else None

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the head knows."""
        out = self.request("GET", "/api/jobs/")
        return list(out) if isinstance(out, list) else []

    def stop_job(self, submission_id: str) -> bool:
        """Ask Ray to stop the job (SIGTERM to its process tree, SIGKILL after a grace)."""
        out = self.request("POST", f"/api/jobs/{submission_id}/stop", ok404=True)
        return bool(out and out.get("stopped"))

    def job_logs(self, submission_id: str) -> str:
        """The job driver's output as Ray stored it."""
        out = self.request("GET", f"/api/jobs/{submission_id}/logs", ok404=True)
        return str((out or {}).get("logs", ""))

    # -- cluster -----------------------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        """Every node the GCS knows (alive and dead), as the dashboard summarizes them."""
        out = self.request("GET", "/nodes?view=summary")
        data = (out or {}).get("data", {}) if isinstance(out, dict) else {}
        return [n.get("raylet", {}) | {"hostname": n.get("hostname"), "ip": n.get("ip")}
                for n in data.get("summary", [])]

    def gcs_nodes(self) -> list[dict[str, Any]]:
        """Every node the GCS knows (alive and dead) from Ray's state API."""
        out = self.request("GET", "/api/v0/nodes?detail=1&limit=10000")
        result = ((out or {}).get("data") or {}).get("result") or {} \
            if isinstance(out, dict) else {}
        return list(result.get("result") or [])

    def cluster_status(self) -> dict[str, Any]:
        """The autoscaler's report (``/api/cluster_status``)."""
        out = self.request("GET", "/api/cluster_status")
        return (out or {}).get("data", {}) if isinstance(out, dict) else {}
