"""Preparing a run's system-managed environment next to the user's script.

Standard library only: this runs wherever the runner runs (this machine, an SSH host, a Ray
node). Everything comes from the job spec: the ``environment`` request made by
``runyard.environments.spec.environment_request`` plus ``cache_dir`` set by the target (and
optionally ``uv``, ``uv_cache_dir``, ``python_downloads``). Nothing here knows about home
folders, users or the workspace.

Three modules, imports pointing down only:

- this one: :func:`prepare` (the cached environment, or build it now under the key's build
  lock), :func:`prepare_run` (the runner's entry point) and ``python -m
  runyard.runtime.envbuild list|prune``;
- :mod:`runyard.runtime.envcache`: the cache key, the layout of ``cache_dir``, its locks,
  publishing a finished build, listing and pruning;
- :mod:`runyard.runtime.envbuilders`: the builders (uv, conda/mamba/micromamba, container) and
  the error type, log and installer runner they share.

The names callers use from the other two are re-exported here (``envbuild.EnvBuildError``,
``envbuild.MARKER``, ``envbuild.list_cache`` ...).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runyard.runtime.envbuilders import (
    CONTAINER_PREFIX,
    REQUIREMENTS_FILE,
    EnvBuildError,
    _Builder,
    _CondaBuilder,
    _ContainerBuilder,
    _Log,
    _open_lock,
    _UvBuilder,
    container_command,
    find_uv,
    installer_message,
    make_builder,
    platform_tag,
    python_satisfies,
)
from runyard.runtime.envcache import (
    KEY_FORMAT,
    MARKER,
    _build_and_publish,
    _read_marker,
    _sweep,
    _try_lock,
    _use,
    cache_key,
    list_cache,
    prune_cache,
)

#: Stands for the environment's interpreter in a job's command until the environment exists.
ENV_PYTHON = "{runyard:environment-python}"


class Prepared:
    """A ready environment for one run (its use-lock is held until the process exits)."""

    def __init__(self, key: str, builder: str, outcome: str, prefix: str, python: str,
                 seconds: float, marker: dict[str, Any],
                 substituted: dict[str, str] | None = None) -> None:
        self.key = key
        self.builder = builder
        self.outcome = outcome  # built | waited | cached
        self.prefix = prefix
        self.python = python
        self.seconds = seconds
        self.marker = marker
        #: what stood in for what the spec asked (``runyard.container_fallback``, ...)
        self.substituted = dict(substituted or {})

    def properties(self) -> dict[str, str]:
        """Run properties recording what was used (and what was substituted)."""
        return {"environment_key": self.key, "environment_builder": self.builder,
                "environment_build": self.outcome,
                "environment_python": str(self.marker.get("python", "")),
                "environment_prepare_seconds": f"{self.seconds:.3f}", **self.substituted}


#: The run property saying a container was asked for and uv built the spec instead.
CONTAINER_FALLBACK = "uv: no container engine on target"


def _container_fallback(builder: _Builder, request: dict[str, Any], cache: Path,
                        log: _Log) -> _Builder:
    """``builder``, or a uv builder for the same plan when it is the container builder, this
    target has no running container engine and the request is not ``strict`` (a strict one
    keeps the container builder, whose check refuses with what to do)."""
    if not isinstance(builder, _ContainerBuilder) or request.get("strict"):
        return builder
    engine, why = builder.engine()
    if engine is not None:
        return builder
    log.say("warning: environment.docker.enabled asks for a container, and this target has no "
            f"container engine ({'; '.join(why)}); building the same spec with uv instead "
            "(base image ignored; set strict_environments to refuse instead)")
    uv = _UvBuilder(request, cache, log, builder.env, name="uv")
    uv.substituted["runyard.container_fallback"] = CONTAINER_FALLBACK
    return uv


def prepare(request: dict[str, Any], log_path: str | os.PathLike[str],
            env: dict[str, str] | None = None) -> Prepared:
    """Return the environment for ``request``: cached, or built now (once per key)."""
    t0 = time.monotonic()
    cache = Path(request["cache_dir"])
    log = _Log(log_path)
    try:
        builder = make_builder(request, log, dict(os.environ if env is None else env))
        dropped = (request.get("plan") or {}).get("dropped")
        if dropped:
            log.say(f"dropped {', '.join(map(str, dropped))}: runyard provides the azureml "
                    "import path")
        builder = _container_fallback(builder, request, cache, log)
        builder.ident = builder.identity()
        key = cache_key(request, builder.ident)
        got = _use(cache, key)
        outcome = "cached"
        if got is None:
            if request.get("auto_prepare", True) is False:
                log.say(f"environment {key} is not built on this target and "
                        "auto_prepare_environment is False")
                raise EnvBuildError(
                    f"The environment (key {key}) is not in this target's cache, and "
                    "auto_prepare_environment is False, so it is not built. Submit once with "
                    "auto_prepare_environment=True to build it.", environment_key=key)
            builder.check()
            outcome = _build_locked(builder, cache, key)
            got = _use(cache, key)
            if got is None:
                raise EnvBuildError(f"environment {key} disappeared right after it was "
                                    "built (pruned?); submit the run again", environment_key=key)
        prefix, marker = got
        if outcome != "built":
            log.say(f"using {'the just-built' if outcome == 'waited' else 'cached'} "
                    f"environment {key} ({builder.name}, {marker.get('python', '?')})")
        return Prepared(key=key, builder=builder.name, outcome=outcome, prefix=str(prefix),
                        python=builder.interpreter(prefix), seconds=time.monotonic() - t0,
                        marker=marker, substituted=builder.substituted)
    except EnvBuildError as exc:
        log.say(f"environment preparation failed: {exc.message}")
        exc.details.setdefault("builder", request.get("builder"))
        raise
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"cannot prepare the environment in {cache}: {exc}"
        log.say(msg)
        raise EnvBuildError(msg) from exc
    finally:
        log.close()


def _build_locked(builder: _Builder, cache: Path, key: str) -> str:
    lock = cache / ".locks" / f"{key}.build"
    fd = _try_lock(lock, fcntl.LOCK_EX)
    waited = fd is None
    if fd is None:
        builder.log.say(f"another run is building environment {key}; waiting for it")
        fd = _open_lock(lock)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
    try:
        if _read_marker(cache / key) is not None:
            return "waited" if waited else "cached"
        _sweep(cache, key)
        try:
            _build_and_publish(builder, cache, key)
        except EnvBuildError as exc:
            exc.details.setdefault("environment_key", key)
            raise
        return "built"
    finally:
        os.close(fd)


def prepare_run(job: dict[str, Any], env: dict[str, str], log_path: str | os.PathLike[str]
                ) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """For the runner: prepare the job's environment; returns (command, env, properties)."""
    request = job["environment"]
    prepared = prepare(request, log_path, env)
    command = [prepared.python if c == ENV_PYTHON else c for c in job["command"]]
    env = dict(env)
    env.pop("PYTHONHOME", None)
    env.update({str(k): str(v) for k, v in
                ((request.get("plan") or {}).get("variables") or {}).items()})
    if prepared.builder == "container":
        command = container_command(job, prepared.marker, command, env)
    else:
        env["PATH"] = os.pathsep.join(p for p in (str(Path(prepared.prefix) / "bin"),
                                                  env.get("PATH", "")) if p)
        env["CONDA_PREFIX" if prepared.builder != "uv" else "VIRTUAL_ENV"] = prepared.prefix
    return command, env, prepared.properties()


def main(argv: list[str] | None = None) -> int:
    """``python -m runyard.runtime.envbuild list|prune CACHE_DIR [DAYS]`` (JSON out)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "list":
        print(json.dumps(list_cache(args[1]), indent=2))
        return 0
    if len(args) >= 3 and args[0] == "prune":
        print(json.dumps(prune_cache(args[1], float(args[2]) * 86400), indent=2))
        return 0
    print("usage: python -m runyard.runtime.envbuild list CACHE_DIR | prune CACHE_DIR DAYS",
          file=sys.stderr)
    return 2


__all__ = [
    "CONTAINER_FALLBACK", "CONTAINER_PREFIX", "ENV_PYTHON", "KEY_FORMAT", "MARKER",
    "REQUIREMENTS_FILE",
    "EnvBuildError", "Prepared", "_Builder", "_CondaBuilder", "_ContainerBuilder", "_Log",
    "_UvBuilder", "cache_key", "container_command", "find_uv", "installer_message",
    "list_cache", "main", "make_builder", "platform_tag", "prepare", "prepare_run",
    "prune_cache", "python_satisfies",
]

if __name__ == "__main__":
    sys.exit(main())
