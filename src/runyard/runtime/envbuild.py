"""Building and caching system-managed environments next to the user's script.

Standard library only: this runs wherever the runner runs (this machine, an SSH host, a Ray
node). Everything comes from the job spec: the ``environment`` request made by
``runyard.environments.spec.environment_request`` plus ``cache_dir`` set by the target (and
optionally ``uv``, ``uv_cache_dir``, ``python_downloads``). Nothing here knows about home
folders, users or the workspace.

The cache key is the hash of the normalized spec (``spec_hash``), the builder, the resolved
interpreter (implementation and full version) and the platform. Layout of ``cache_dir``::

    <key>                  symlink to .builds/<key>-<rand>, created by an atomic rename
    .builds/<key>-<rand>/  the environment; .runyard-env.json inside marks it complete
    .locks/<key>.build     held exclusively while the environment is being built
    .locks/<key>.use       held shared by every run using it (prune needs it free)
    .tools/uv/             uv, installed here once when none is found

At most one build per key runs at a time (the others wait on ``<key>.build`` and reuse the
result); a build happens in its own folder and is published only when complete, so a
half-built environment is never used and a failed one leaves nothing behind.

Builders: ``uv`` (a venv per key, pip requirements), ``conda``/``mamba``/``micromamba`` (when
one is installed), ``container`` (docker or podman, when one is running). A builder whose tool
is absent refuses with a message that says what to install or choose instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import IO, Any

#: Stands for the environment's interpreter in a job's command until the environment exists.
ENV_PYTHON = "{runyard:environment-python}"
MARKER = ".runyard-env.json"
KEY_FORMAT = 1
REQUIREMENTS_FILE = "runyard-requirements.txt"
CONTAINER_PREFIX = "/opt/runyard-env"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERROR_START = re.compile(r"^\s*(?:(?:error|critical|CondaError|LibMambaUnsatisfiableError|"
                          r"PackagesNotFoundError|ResolvePackageNotFound)\b|×)", re.I)
_HELD_LOCKS: list[int] = []  # shared "use" locks, held until the runner exits


class EnvBuildError(Exception):
    """Preparing the environment failed; ``message`` is what the run's error shows."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def error(self) -> dict[str, Any]:
        """The run's error dict."""
        return {"message": self.message, **{k: v for k, v in self.details.items()
                                            if v is not None}}


# -- logging into the driver log --------------------------------------------------------------
class _Log:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh: IO[bytes] = open(self.path, "ab")  # noqa: SIM115

    def say(self, text: str) -> None:
        self.fh.write(f"[runyard env] {text}\n".encode())
        self.fh.flush()

    def offset(self) -> int:
        self.fh.flush()
        return os.fstat(self.fh.fileno()).st_size

    def since(self, offset: int) -> str:
        self.fh.flush()
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return _ANSI.sub("", fh.read().decode(errors="replace"))

    def close(self) -> None:
        self.fh.close()


def installer_message(output: str, limit: int = 2000) -> str:
    """The installer's own error text from its output (from the first error line on)."""
    lines = [ln.rstrip() for ln in _ANSI.sub("", output).splitlines()
             if ln.strip() and not ln.startswith("[runyard env]")]
    start = next((i for i, ln in enumerate(lines) if _ERROR_START.match(ln)), None)
    picked = lines[start:start + 40] if start is not None else lines[-15:]
    text = "\n".join(picked).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
        proc.wait()


def _run(cmd: list[str], log: _Log, env: dict[str, str], cwd: Path, what: str) -> None:
    """Run an installer step with its output in the log; failure raises with its message."""
    log.say("$ " + " ".join(shlex.quote(c) for c in cmd))
    start = log.offset()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log.fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise EnvBuildError(f"{what}: cannot start {cmd[0]!r}: {exc.strerror}") from exc
    try:
        code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    if code != 0:
        out = log.since(start)
        raise EnvBuildError(f"{what} failed (exit code {code}): {installer_message(out)}",
                            exit_code=code, installer_output=out[-8000:])


def _capture(cmd: list[str], env: dict[str, str], cwd: Path,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)


# -- locks ------------------------------------------------------------------------------------
def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(path: Path, mode: int) -> int | None:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


# -- python versions --------------------------------------------------------------------------
def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def python_satisfies(version: str, request: str | None) -> bool | None:
    """Whether interpreter ``version`` (``3.11.7``) meets ``request`` (``3.11``, ``>=3.10``).

    None when the request is a form this function does not know (ask the installer).
    """
    if not request:
        return True
    have = _version_tuple(version)
    for clause in request.split(","):
        m = re.fullmatch(r"\s*(==|>=|<=|!=|>|<|=)?\s*(\d+(?:\.\d+)*)(\.\*)?\s*", clause)
        if not m:
            return None
        op, want = m.group(1) or "==", _version_tuple(m.group(2))
        padded = want + (0,) * (len(have) - len(want))
        ok = {"==": have[:len(want)] == want, "=": have[:len(want)] == want,
              "!=": have[:len(want)] != want, ">=": have >= padded, "<=": have <= padded,
              ">": have > padded, "<": have < padded}[op]
        if not ok:
            return False
    return True


def platform_tag() -> str:
    """``linux-x86_64``-style tag of this machine."""
    return sysconfig.get_platform()


def _token() -> str:
    return os.urandom(4).hex()


def _python_version() -> str:
    """``3.11.7`` (``3.13.0rc1`` for pre-releases) of this interpreter."""
    return sys.version.split()[0]


# -- builders ---------------------------------------------------------------------------------
class _Builder:
    """One builder kind (plain class: dataclasses cost an import on the cache-hit path)."""

    def __init__(self, request: dict[str, Any], cache: Path, log: _Log, env: dict[str, str],
                 name: str) -> None:
        self.request = request
        self.cache = cache
        self.log = log
        self.env = env
        self.name = name
        #: (interpreter path, "cpython-3.11.7") once resolved
        self.python: tuple[str, str] | None = None
        #: what :meth:`identity` returned
        self.ident = ""

    @property
    def plan(self) -> dict[str, Any]:
        plan: dict[str, Any] = self.request.get("plan") or {}
        return plan

    def identity(self) -> str:
        """What besides the spec decides the result (interpreter, platform)."""
        raise NotImplementedError

    def check(self) -> None:
        """Refuse (EnvBuildError) when the builder's tool is missing."""

    def build(self, dest: Path, key: str) -> dict[str, Any]:
        """Create the environment in ``dest``; returns extra marker data."""
        raise NotImplementedError

    def interpreter(self, prefix: Path) -> str:
        return str(prefix / "bin" / "python")

    def tool_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.env.items()
               if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME", "UV_PYTHON")}
        env.update({"NO_COLOR": "1", "UV_NO_PROGRESS": "1", "PIP_NO_INPUT": "1"})
        if self.request.get("uv_cache_dir"):
            env["UV_CACHE_DIR"] = str(self.request["uv_cache_dir"])
        if self.request.get("python_downloads") is False:
            env["UV_PYTHON_DOWNLOADS"] = "never"
        return env


def _current_python() -> tuple[str, str]:
    return sys.executable, f"{sys.implementation.name}-{_python_version()}"


class _UvBuilder(_Builder):
    """A venv made by ``uv venv`` with the plan's requirements installed by ``uv pip``."""

    _uv: list[str] | None = None

    def uv(self) -> list[str]:
        if self._uv is None:
            self._uv = find_uv(self.request, self.cache, self.log, self.tool_env())
        return self._uv

    def identity(self) -> str:
        want = self.plan.get("python")
        here = _current_python()
        if python_satisfies(_python_version(), want):
            self.python = here
        else:
            self.python = self._find_python(str(want))
        return f"{self.python[1]}|{platform_tag()}"

    def _find_python(self, want: str) -> tuple[str, str]:
        env = self.tool_env()
        self.cache.mkdir(parents=True, exist_ok=True)
        found = _capture([*self.uv(), "python", "find", want], env, self.cache)
        if found.returncode != 0 and self.request.get("python_downloads", True) is not False:
            self.log.say(f"python {want} is not installed here; asking uv to install it")
            with contextlib.suppress(EnvBuildError):
                _run([*self.uv(), "python", "install", want], self.log, env, self.cache,
                     f"uv python install {want}")
            found = _capture([*self.uv(), "python", "find", want], env, self.cache)
        if found.returncode != 0:
            msg = installer_message(found.stderr or found.stdout)
            self.log.say(msg)
            raise EnvBuildError(f"python {want} is not available on this target: {msg}",
                                python=want)
        path = found.stdout.strip().splitlines()[-1]
        probe = _capture([path, "-c", "import platform, sys; print(sys.implementation.name"
                          " + '-' + platform.python_version())"], env, self.cache)
        if probe.returncode != 0:
            raise EnvBuildError(f"python {want} at {path} does not run: {probe.stderr.strip()}")
        return path, probe.stdout.strip()

    def check(self) -> None:
        self.uv()

    def build(self, dest: Path, key: str) -> dict[str, Any]:
        assert self.python is not None
        env = self.tool_env()
        _run([*self.uv(), "venv", "--python", self.python[0], str(dest)], self.log, env,
             dest.parent, "uv venv")
        reqs = [*self.plan.get("pip_options", []), *self.plan.get("requirements", [])]
        (dest / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in reqs))
        if self.plan.get("requirements"):
            _run([*self.uv(), "pip", "install", "--python", self.interpreter(dest), "-r",
                  str(dest / REQUIREMENTS_FILE)], self.log, env, dest, "uv pip install")
        return {"python": self.python[1], "base_interpreter": self.python[0]}


def find_uv(request: dict[str, Any], cache: Path, log: _Log, env: dict[str, str]) -> list[str]:
    """The uv command: the request's, on PATH, ``python -m uv``, or installed into the cache.

    The last resort makes a venv in ``<cache_dir>/.tools/uv`` and pip-installs uv there (once
    per target, under a lock); it needs the interpreter's ``venv``/``ensurepip`` and the pip
    index.
    """
    explicit = request.get("uv")
    if explicit:
        return [str(explicit)]
    on_path = shutil.which("uv", path=env.get("PATH", os.defpath))
    if on_path:
        return [on_path]
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    tools = cache / ".tools"
    uv_bin = tools / "uv" / "bin" / "uv"
    if uv_bin.is_file():
        return [str(uv_bin)]
    fd = _open_lock(cache / ".locks" / "tools-uv.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if uv_bin.is_file():
            return [str(uv_bin)]
        log.say(f"uv was not found on PATH; installing it into {tools / 'uv'} (once per target)")
        tools.mkdir(parents=True, exist_ok=True)
        tmp = tools / f".uv-{_token()}"
        try:
            _run([sys.executable, "-m", "venv", str(tmp)], log, env, tools,
                 "installing uv: python -m venv")
            _run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", "uv"], log, env, tools,
                 "installing uv: pip install uv")
            os.replace(tmp, tools / "uv")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return [str(uv_bin)]
    finally:
        os.close(fd)


class _CondaBuilder(_Builder):
    """``micromamba create`` / ``mamba env create`` / ``conda env create`` into a prefix."""

    TOOLS = {"conda": ("micromamba", "mamba", "conda"), "mamba": ("mamba",),
             "micromamba": ("micromamba",)}

    def tool(self) -> str | None:
        for name in self.TOOLS[self.name]:
            found = shutil.which(name, path=self.env.get("PATH", os.defpath))
            if found:
                return found
        return None

    def python_request(self) -> str:
        want = self.plan.get("python")
        return str(want) if want else f"{sys.version_info[0]}.{sys.version_info[1]}"

    def identity(self) -> str:
        return f"conda-python{self.python_request()}|{platform_tag()}"

    def check(self) -> None:
        if self.tool() is None:
            names = ", ".join(self.TOOLS[self.name])
            raise EnvBuildError(
                f"the {self.name} builder needs {names} on this target's PATH, and none was "
                f"found (PATH={self.env.get('PATH', '')}). Install one (micromamba is a single "
                "binary), or build with uv: environment.python.builder = 'uv' (conda packages "
                "with a PyPI equivalent are translated)", builder=self.name)

    def environment_yml(self) -> str:
        """The plan as conda ``environment.yml`` (JSON scalars are valid YAML)."""
        deps = list(self.plan.get("dependencies", []))
        if not any(isinstance(d, str) and re.match(r"python\b", d) for d in deps):
            deps.insert(0, f"python={self.python_request()}")
        lines = ["name: runyard-env"]
        if self.plan.get("channels"):
            lines.append("channels:")
            lines.extend(f"- {json.dumps(c)}" for c in self.plan["channels"])
        lines.append("dependencies:")
        for d in deps:
            if isinstance(d, dict):
                lines.append("- pip:")
                lines.extend(f"  - {json.dumps(p)}" for p in d.get("pip", []))
            else:
                lines.append(f"- {json.dumps(d)}")
        if self.plan.get("variables"):
            lines.append("variables:")
            lines.extend(f"  {json.dumps(k)}: {json.dumps(v)}"
                         for k, v in self.plan["variables"].items())
        return "\n".join(lines) + "\n"

    def command(self, tool: str, dest: Path, yml: Path) -> list[str]:
        if Path(tool).name == "micromamba":
            return [tool, "create", "--yes", "--prefix", str(dest), "--file", str(yml)]
        return [tool, "env", "create", "--prefix", str(dest), "--file", str(yml)]

    def build(self, dest: Path, key: str) -> dict[str, Any]:
        tool = self.tool()
        assert tool is not None
        yml = dest.parent / f"{dest.name}.yml"
        yml.write_text(self.environment_yml())
        try:
            _run(self.command(tool, dest, yml), self.log, self.tool_env(), dest.parent,
                 f"{Path(tool).name} create")
            shutil.copyfile(yml, dest / "runyard-environment.yml")
        finally:
            yml.unlink(missing_ok=True)
        return {"python": f"conda-python{self.python_request()}", "tool": tool}


class _ContainerBuilder(_Builder):
    """An image ``runyard-env:<key>`` on the plan's base image; the script runs inside it."""

    def engine(self) -> tuple[str | None, list[str]]:
        why: list[str] = []
        for name in ("docker", "podman"):
            found = shutil.which(name, path=self.env.get("PATH", os.defpath))
            if not found:
                why.append(f"{name}: not on PATH")
                continue
            try:
                probe = _capture([found, "info"], self.tool_env(), Path("/"), timeout=20)
            except (OSError, subprocess.TimeoutExpired) as exc:
                why.append(f"{name}: `{name} info` failed ({exc})")
                continue
            if probe.returncode == 0:
                return found, why
            err = (probe.stderr or probe.stdout).strip().splitlines()
            why.append(f"{name}: `{name} info` failed ({err[-1] if err else probe.returncode})")
        return None, why

    def identity(self) -> str:
        return f"container|{platform_tag()}"

    def check(self) -> None:
        engine, why = self.engine()
        if engine is None:
            raise EnvBuildError(
                "the container builder (environment.docker.enabled) needs a running docker or "
                f"podman engine on this target, and none is available ({'; '.join(why)}). "
                "Start one, or set environment.docker.enabled = False to build a venv with uv",
                builder="container")

    def dockerfile(self) -> str:
        lines = [f"FROM {self.plan['base_image']}",
                 f"COPY {REQUIREMENTS_FILE} {CONTAINER_PREFIX}-{REQUIREMENTS_FILE}",
                 f"RUN python3 -m venv {CONTAINER_PREFIX}"]
        if self.plan.get("requirements"):
            lines[-1] += (f" && {CONTAINER_PREFIX}/bin/python -m pip install --no-cache-dir "
                          f"--disable-pip-version-check -r "
                          f"{CONTAINER_PREFIX}-{REQUIREMENTS_FILE}")
        for k, v in (self.plan.get("variables") or {}).items():
            lines.append(f"ENV {k}={json.dumps(v)}")
        return "\n".join(lines) + "\n"

    def build(self, dest: Path, key: str) -> dict[str, Any]:
        engine, _ = self.engine()
        assert engine is not None
        dest.mkdir(parents=True)
        reqs = [*self.plan.get("pip_options", []), *self.plan.get("requirements", [])]
        (dest / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in reqs))
        (dest / "Dockerfile").write_text(self.dockerfile())
        image = f"runyard-env:{key}"
        _run([engine, "build", "--tag", image, str(dest)], self.log, self.tool_env(), dest,
             f"{Path(engine).name} build")
        return {"python": "container", "image": image, "engine": engine}

    def interpreter(self, prefix: Path) -> str:
        return f"{CONTAINER_PREFIX}/bin/python"


def container_command(job: dict[str, Any], marker: dict[str, Any], command: list[str],
                      env: dict[str, str]) -> list[str]:
    """``docker run`` around ``command``: the run's folders and PYTHONPATH mounted in place."""
    opts = (job.get("environment") or {}).get("container") or {}
    mounts: list[str] = []
    for p in (job.get("workdir"), job.get("artifacts_dir"), job.get("spool_dir")):
        if p:
            mounts.append(str(p))
    for entry in (env.get("PYTHONPATH") or "").split(os.pathsep):
        if entry and os.path.isdir(entry):
            mounts.append(entry)
            for child in os.scandir(entry):
                if child.is_symlink():
                    mounts.append(os.path.realpath(child.path))
    engine = str(marker.get("engine") or "docker")
    cmd = [engine, "run", "--rm", "--init", "--name",
           f"runyard-{job.get('run_id', 'run')}-a{job.get('attempt', 1)}".replace("/", "_"),
           "--user", f"{os.getuid()}:{os.getgid()}", "--workdir", str(job.get("workdir"))]
    for m in dict.fromkeys(mounts):
        cmd += ["--volume", f"{m}:{m}"]
    for k, v in (job.get("env") or {}).items():
        cmd += ["--env", f"{k}={v}"]
    if opts.get("gpu_support"):
        cmd += (["--gpus", "all"] if Path(engine).name == "docker"
                else ["--device", "nvidia.com/gpu=all"])
    if opts.get("shm_size"):
        cmd += ["--shm-size", str(opts["shm_size"])]
    cmd += [str(a) for a in opts.get("arguments", [])]
    return [*cmd, str(marker["image"]), *command]


def make_builder(request: dict[str, Any], log: _Log, env: dict[str, str]) -> _Builder:
    """The builder named by the request."""
    cache = Path(request["cache_dir"])
    name = str(request.get("builder") or "uv")
    if name == "uv":
        return _UvBuilder(request, cache, log, env, name="uv")
    if name in _CondaBuilder.TOOLS:
        return _CondaBuilder(request, cache, log, env, name=name)
    if name == "container":
        return _ContainerBuilder(request, cache, log, env, name="container")
    raise EnvBuildError(f"unknown environment builder {name!r}")


# -- the cache --------------------------------------------------------------------------------
def cache_key(request: dict[str, Any], identity: str) -> str:
    """32 hex digits from the spec hash, the builder and the target identity."""
    text = f"{KEY_FORMAT}|{request.get('builder')}|{request['spec_hash']}|{identity}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read_marker(entry: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((entry / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _use(cache: Path, key: str) -> tuple[Path, dict[str, Any]] | None:
    """The complete environment ``key`` with a shared use-lock held, or None."""
    entry = cache / key
    if not (entry / MARKER).is_file():
        return None
    fd = _open_lock(cache / ".locks" / f"{key}.use")
    fcntl.flock(fd, fcntl.LOCK_SH)
    marker = _read_marker(entry)
    if marker is None:  # pruned between the check and the lock
        os.close(fd)
        return None
    _HELD_LOCKS.append(fd)
    with contextlib.suppress(OSError):
        os.utime(entry / MARKER)  # last used (prune --older-than)
    return Path(os.path.realpath(entry)), marker


def _sweep(cache: Path, key: str) -> None:
    """Remove leftovers of earlier failed or killed builds of ``key`` (build lock held)."""
    live = os.path.realpath(cache / key) if (cache / key).is_symlink() else None
    for folder, prefix in ((cache / ".builds", f"{key}-"), (cache, f".link-{key}-")):
        with contextlib.suppress(FileNotFoundError):
            for child in os.scandir(folder):
                if child.name.startswith(prefix) and os.path.realpath(child.path) != live:
                    if child.is_dir(follow_symlinks=False):
                        shutil.rmtree(child.path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(child.path)
    entry = cache / key
    if entry.exists() and not entry.is_symlink() and _read_marker(entry) is None:
        shutil.rmtree(entry, ignore_errors=True)


def _build_and_publish(builder: _Builder, cache: Path, key: str) -> None:
    builds = cache / ".builds"
    builds.mkdir(parents=True, exist_ok=True)
    real = builds / f"{key}-{_token()}"
    link = cache / f".link-{key}-{_token()}"
    log = builder.log
    request = builder.request
    for note in builder.plan.get("notes", []):
        log.say(f"note: {note}")
    t0 = time.monotonic()
    log.say(f"building environment {key} with {builder.name} ({builder.ident})")
    try:
        extra = builder.build(real, key)
        real.mkdir(exist_ok=True)
        marker = {"format": KEY_FORMAT, "key": key, "builder": builder.name,
                  "spec_hash": request.get("spec_hash"), "spec": request.get("spec"),
                  "name": request.get("name"), "version": request.get("version"),
                  "platform": platform_tag(), "created": time.time(),
                  "build_seconds": round(time.monotonic() - t0, 3), **extra}
        tmp = real / f"{MARKER}.tmp"
        tmp.write_text(json.dumps(marker, indent=2))
        os.replace(tmp, real / MARKER)
        os.symlink(os.path.join(".builds", real.name), link)
        os.replace(link, cache / key)  # publish: atomic
    except BaseException:
        shutil.rmtree(real, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        raise
    log.say(f"built environment {key} in {time.monotonic() - t0:.1f} s")


class Prepared:
    """A ready environment for one run (its use-lock is held until the process exits)."""

    def __init__(self, key: str, builder: str, outcome: str, prefix: str, python: str,
                 seconds: float, marker: dict[str, Any]) -> None:
        self.key = key
        self.builder = builder
        self.outcome = outcome  # built | waited | cached
        self.prefix = prefix
        self.python = python
        self.seconds = seconds
        self.marker = marker

    def properties(self) -> dict[str, str]:
        """Run properties recording what was used."""
        return {"environment_key": self.key, "environment_builder": self.builder,
                "environment_build": self.outcome,
                "environment_python": str(self.marker.get("python", "")),
                "environment_prepare_seconds": f"{self.seconds:.3f}"}


def prepare(request: dict[str, Any], log_path: str | os.PathLike[str],
            env: dict[str, str] | None = None) -> Prepared:
    """Return the environment for ``request``: cached, or built now (once per key)."""
    t0 = time.monotonic()
    cache = Path(request["cache_dir"])
    log = _Log(log_path)
    try:
        builder = make_builder(request, log, dict(os.environ if env is None else env))
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
                        marker=marker)
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


# -- listing and pruning ----------------------------------------------------------------------
def _size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def _in_use(cache: Path, key: str) -> bool:
    for name in (f"{key}.build", f"{key}.use"):
        fd = _try_lock(cache / ".locks" / name, fcntl.LOCK_EX)
        if fd is None:
            return True
        os.close(fd)
    return False


def list_cache(cache_dir: str | os.PathLike[str], sizes: bool = True) -> list[dict[str, Any]]:
    """Environments in a cache folder, newest use first."""
    cache = Path(cache_dir)
    out: list[dict[str, Any]] = []
    try:
        entries = sorted((e for e in os.scandir(cache) if not e.name.startswith(".")),
                         key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for e in entries:
        entry = cache / e.name
        marker = _read_marker(entry)
        item: dict[str, Any] = {"key": e.name, "path": os.path.realpath(entry),
                                "complete": marker is not None}
        if marker is not None:
            spec = marker.get("spec") or {}
            item.update({
                "builder": marker.get("builder"), "python": marker.get("python"),
                "platform": marker.get("platform"), "created": marker.get("created"),
                "last_used": (entry / MARKER).stat().st_mtime,
                "name": marker.get("name"), "version": marker.get("version"),
                "packages": [*spec.get("conda_packages", []), *spec.get("pip_packages", [])],
                "image": marker.get("image"), "build_seconds": marker.get("build_seconds")})
        if sizes:
            item["size_bytes"] = _size(item["path"])
        item["in_use"] = _in_use(cache, e.name)
        out.append(item)
    out.sort(key=lambda i: -(i.get("last_used") or 0))
    return out


def prune_cache(cache_dir: str | os.PathLike[str], older_than_seconds: float,
                dry_run: bool = False, now: float | None = None) -> list[dict[str, Any]]:
    """Remove environments unused for ``older_than_seconds`` and leftovers of failed builds.

    An environment a run is using or building is skipped. Returns what was (or, with
    ``dry_run``, would be) removed.
    """
    cache = Path(cache_dir)
    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed: list[dict[str, Any]] = []
    for item in list_cache(cache, sizes=False):
        key = item["key"]
        if item["complete"] and (item.get("last_used") or 0) > cutoff:
            continue
        fds = [_try_lock(cache / ".locks" / f"{key}.{n}", fcntl.LOCK_EX) for n in
               ("build", "use")]
        try:
            if any(fd is None for fd in fds):
                continue
            item["reason"] = "unused" if item["complete"] else "incomplete"
            removed.append(item)
            if dry_run:
                continue
            entry = cache / key
            real = os.path.realpath(entry)
            with contextlib.suppress(FileNotFoundError):
                if entry.is_symlink():
                    os.unlink(entry)
            shutil.rmtree(real, ignore_errors=True)
            if item.get("image"):
                engine = shutil.which("docker") or shutil.which("podman")
                if engine:
                    subprocess.run([engine, "rmi", str(item["image"])], capture_output=True,
                                   check=False)
        finally:
            for fd in fds:
                if fd is not None:
                    os.close(fd)
    linked = {os.path.realpath(cache / i["key"]) for i in list_cache(cache, sizes=False)}
    with contextlib.suppress(FileNotFoundError):
        for child in os.scandir(cache / ".builds"):
            if os.path.realpath(child.path) in linked:
                continue
            key = child.name.split("-")[0].split(".")[0]
            fd = _try_lock(cache / ".locks" / f"{key}.build", fcntl.LOCK_EX)
            if fd is None:
                continue  # a build in progress
            try:
                removed.append({"key": key, "path": child.path, "complete": False,
                                "reason": "failed build leftover"})
                if not dry_run:
                    if child.is_dir(follow_symlinks=False):
                        shutil.rmtree(child.path, ignore_errors=True)
                    else:
                        os.unlink(child.path)
            finally:
                os.close(fd)
    return removed


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


if __name__ == "__main__":
    sys.exit(main())
