"""Process markers: find and stop every process a run (or a cluster) started, by environment.

Every process a run starts carries ``RUNYARD_RUN_MARKER=<run id>.a<attempt>`` in its
environment: the runner puts it in the script's environment, and processes inherit their
parent's environment whatever else they do (``setsid``, double forks, a new process group).
:func:`stop_marked` finds them again through ``/proc/<pid>/environ`` and ends them: SIGTERM,
then SIGKILL after a grace period, scanning again until none is left (what a dying process
starts meanwhile is caught by the next scan). The processes of a local Ray cluster carry
``RUNYARD_RAY_CLUSTER=<cluster uid>`` the same way.

Limits (documented, not bugs):

* Linux only: the markers are read from ``/proc``. Elsewhere (macOS) :func:`supported` is
  False, nothing is found by marker, and only the process groups passed as ``groups`` are
  signalled (a ``setsid`` descendant there escapes).
* ``/proc/<pid>/environ`` is the environment a process was *started* with. A process that
  execs with an emptied or rewritten environment (``env -i``), or one that overwrites the memory
  holding it (``setproctitle`` does, for example), no longer shows the marker; a member of a
  process group passed in ``groups`` is still found by its group.
* Only processes whose ``environ`` this user may read are found (its own, or all as root).

Standard library only, Python >= 3.8.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

#: The run marker every process of a run's attempt inherits (value: :func:`run_marker`).
ENV_RUN_MARKER = "RUNYARD_RUN_MARKER"
#: The marker every process of a local Ray cluster inherits (value: the cluster's uid).
ENV_CLUSTER_MARKER = "RUNYARD_RAY_CLUSTER"
#: Markers a runner passes on to the script even when the script's environment is scrubbed.
INHERITED_MARKERS = (ENV_CLUSTER_MARKER,)

_PROC = "/proc"


def run_marker(run_id: str, attempt: int | str) -> str:
    """The value of :data:`ENV_RUN_MARKER` for one attempt of one run."""
    return f"{run_id}.a{int(attempt)}"


def supported() -> bool:
    """Whether processes can be found by marker here (a Linux ``/proc``)."""
    return sys.platform.startswith("linux") and os.path.exists(f"{_PROC}/self/environ")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid``; None when it is gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if len(fields) < 3:
        return None
    return fields[0].decode("ascii", "replace"), int(fields[2])


def has_marker(pid: int, name: str, value: str) -> bool:
    """Whether process ``pid`` was started with ``name=value`` in its environment."""
    entry = f"{name}={value}".encode()
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as fh:
            return entry in fh.read().split(b"\0")
    except OSError:  # gone, a zombie, or another user's
        return False


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's member)
        return True
    return True


def marked_pids(name: str, value: str, *, groups: Iterable[int] = (),
                exclude: Iterable[int] = ()) -> set[int]:
    """Live processes carrying ``name=value``, plus the live members of the process
    ``groups``; never this process or those in ``exclude``. Zombies are not counted."""
    skip = {os.getpid(), *exclude}
    wanted_groups = {g for g in groups if g > 0 and _group_exists(g)}
    found: set[int] = set()
    if not supported():  # no /proc: a group that still answers counts as its leader
        return wanted_groups - skip
    try:
        names = os.listdir(_PROC)
    except OSError:
        return found
    for entry in names:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in skip:
            continue
        if wanted_groups:
            st = _stat(pid)
            if st is None or st[0] in ("Z", "X"):
                continue
            if st[1] in wanted_groups or has_marker(pid, name, value):
                found.add(pid)
        elif has_marker(pid, name, value):  # (a zombie's environment reads empty)
            found.add(pid)
    return found


def _signal(pids: Iterable[int], groups: Iterable[int], sig: int) -> None:
    for g in groups:
        if g > 0:
            with contextlib.suppress(OSError):
                os.killpg(g, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def stop_marked(name: str, value: str, *, grace: float = 5.0, groups: Iterable[int] = (),
                exclude: Iterable[int] = (), give_up: float = 10.0) -> int:
    """End every process carrying ``name=value`` and every member of ``groups``.

    SIGTERM first; whatever is left after ``grace`` seconds gets SIGKILL, scanning again until
    nothing is left or ``give_up`` more seconds passed (a process stuck in the kernel cannot be
    killed). Returns how many processes were signalled. Safe to call when nothing is left.
    """
    group_list = [g for g in groups if g > 0]
    seen: set[int] = set()
    _signal((), group_list, signal.SIGTERM)
    deadline = time.monotonic() + max(0.0, grace)
    killing = False
    delay = 0.01
    while True:
        pids = marked_pids(name, value, groups=group_list, exclude=exclude)
        if not pids:
            return len(seen)
        now = time.monotonic()
        if not killing and now >= deadline:
            killing = True
            _signal((), group_list, signal.SIGKILL)
        if killing:
            _signal(pids, (), signal.SIGKILL)
            if now > deadline + give_up:
                return len(seen | pids)
        else:
            _signal(pids - seen, (), signal.SIGTERM)
        seen |= pids
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that makes the child get SIGKILL when the
    thread that started it dies (Linux ``prctl(PR_SET_PDEATHSIG)``); None where unsupported.

    The signal is tied to the *thread* that forks, survives ``exec`` and is not inherited by
    the child's own children (those are reached by marker). Call it in the thread that will
    start the child, and only from a process with no other threads (a ``preexec_fn`` is unsafe
    in the presence of threads); the runner is single-threaded when it starts the script.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # noqa: PLC0415

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
