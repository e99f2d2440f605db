"""The environment builders: what creates one system-managed environment in a folder.

Standard library only (see :mod:`runyard.runtime.envbuild`). Builders: ``uv`` (a venv per key,
pip requirements), ``conda``/``mamba``/``micromamba`` (when one is installed), ``container``
(docker or podman, when one is running). A builder whose tool is absent refuses with a message
that says what to install or choose instead.

A builder only builds: where its result goes, who waits for it and when it is reused is
:mod:`runyard.runtime.envcache`'s business. This module also holds what both need: the error
type, the log into the driver log and the installer runner.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import IO, Any

REQUIREMENTS_FILE = "runyard-requirements.txt"
#: The oldest python the runtime runs on (a pin below it is raised to an available version).
PYTHON_FLOOR = (3, 8)
#: The newest python minor version searched when raising a pin.
PYTHON_NEWEST_MINOR = 14
CONTAINER_PREFIX = "/opt/runyard-env"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERROR_START = re.compile(r"^\s*(?:(?:error|critical|CondaError|LibMambaUnsatisfiableError|"
                          r"PackagesNotFoundError|ResolvePackageNotFound)\b|×)", re.I)


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


# -- locks (find_uv's; envcache uses this one too) --------------------------------------------
def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


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
        #: run properties saying what was substituted for what the spec asked (a raised
        #: python pin, uv for a missing container engine)
        self.substituted: dict[str, str] = {}

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
            try:
                self.python = self._find_python(str(want))
            except EnvBuildError:
                if self.request.get("strict"):
                    raise
                self.python = self._raise_python(str(want))
        return f"{self.python[1]}|{platform_tag()}"

    def _raise_python(self, want: str) -> tuple[str, str]:
        """The oldest python on this target at or above both ``want`` and the runtime's floor
        (installed ones only: ``uv python find``, this interpreter); refuses when ``want`` is
        not a plain version or nothing newer is here."""
        m = re.fullmatch(r"\s*(?:==?)?\s*(\d+)\.(\d+)(?:\.\d+)*(?:\.\*)?\s*", want)
        if m is None or int(m.group(1)) != 3:
            raise EnvBuildError(f"python {want} is not available on this target, and it is not "
                                "a plain version runyard can raise; pin an installed version",
                                python=want)
        start = max(int(m.group(2)), PYTHON_FLOOR[1])
        here = _current_python()
        mine = sys.version_info[1]
        found: tuple[str, str] | None = None
        env = self.tool_env()
        env["UV_PYTHON_DOWNLOADS"] = "never"
        for minor in range(start, mine if mine >= start else PYTHON_NEWEST_MINOR + 1):
            got = _capture([*self.uv(), "python", "find", f"3.{minor}"], env, self.cache)
            if got.returncode == 0 and got.stdout.strip():
                path = got.stdout.strip().splitlines()[-1]
                probe = _capture([path, "-c", "import platform, sys; print("
                                  "sys.implementation.name + '-' + platform.python_version())"],
                                 env, self.cache)
                if probe.returncode == 0:
                    found = (path, probe.stdout.strip())
                    break
        if found is None and mine >= start:
            found = here
        if found is None:
            raise EnvBuildError(f"python {want} is not available on this target, and no newer "
                                "python is installed here to raise it to", python=want)
        version = found[1].split("-", 1)[-1]
        self.log.say(f"warning: python {want} is not available on this target (no installer "
                     f"here provides it); using the oldest available python {version} instead "
                     "(set strict_environments to refuse instead)")
        self.substituted["runyard.python_raised"] = f"{want} -> {version}"
        return found

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
