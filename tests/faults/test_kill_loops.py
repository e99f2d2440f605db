"""Kill loops: submitters, runners, ingesting readers and reconcilers SIGKILLed at random points
while 200+ real runs go through a real workspace. Afterwards no run is lost, none ran twice,
every metric arrived once and no process of any run is left.

Bounded: a fixed number of runs and kills, a chaos phase of at most ``CHAOS_SECONDS`` and a
settle phase of at most ``SETTLE_SECONDS``. The seed is printed (and can be set with
``RUNYARD_FAULT_SEED``) so a failure can be replayed.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from runyard import Workspace
from runyard.entities import RunStatus
from runyard.services.runs.reconciler import reconcile
from runyard.store.base import RunFilter
from support import set_config

RUNS = 200
SUBMITTERS = 4
CHAOS_SECONDS = 150.0
SETTLE_SECONDS = 90.0
METRICS_PER_RUN = 5
EXPERIMENT = "killloop"

SCRIPT = """
import os, random, sys, time
from runyard import Run
run = Run.get_context()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, (run.id + "\\n").encode())
os.close(fd)
for i in range(5):
    run.log("m", i)
time.sleep(random.random() * 0.3)
"""

SUBMITTER = """
import sys
from runyard import Experiment, ScriptRunConfig, Workspace
ws = Workspace.get("kl", sys.argv[1])
exp = Experiment(ws, "killloop")
for _ in range(int(sys.argv[3])):
    run = exp.submit(ScriptRunConfig(sys.argv[2], "s.py", arguments=[sys.argv[4]]))
    print(run.id, flush=True)
"""

READER = """
import random, sys, time
from runyard import Workspace
from runyard.services.runs.sync import sync_run
from runyard.store.base import RunFilter
ws = Workspace.get("kl", sys.argv[1])
while True:
    runs = ws.context.store.list_runs(RunFilter(limit=20))
    for r in random.sample(runs, min(3, len(runs))):
        sync_run(ws.context, r.id)
    time.sleep(0.05)
"""



def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line or environment mentions ``text`` (this one excluded)."""
    found = []
    needle = text.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            blob = Path(f"/proc/{name}/cmdline").read_bytes()
            blob += Path(f"/proc/{name}/environ").read_bytes()
        except (OSError, IndexError):
            continue
        if needle in blob:
            found.append(int(name))
    return found


class Chaos:
    """The processes of the chaos phase and the kills done to them."""

    def __init__(self, root: Path, src: Path, ledger: Path, seed: int) -> None:
        self.root, self.src, self.ledger = root, src, ledger
        self.rng = random.Random(seed)
        self.env = {**os.environ, "RUNYARD_NO_RECONCILER": "1"}
        self.kills: collections.Counter[str] = collections.Counter()
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = collections.defaultdict(list)
        self.quota = RUNS
        self.stop = threading.Event()

    def start(self, role: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, *args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[role].append(proc)
        return proc

    def submitter(self, count: int) -> None:
        self.start("submitter", ["-c", SUBMITTER, str(self.root), str(self.src), str(count),
                                 str(self.ledger)])

    def alive(self, role: str) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs[role] if p.poll() is None]

    def kill_one(self, role: str) -> None:
        live = self.alive(role)
        if live:
            victim = self.rng.choice(live)
            victim.kill()
            victim.wait()
            self.kills[role] += 1

    def kill_runner(self, ws: Workspace) -> None:
        live = ws.context.store.list_runs(RunFilter(statuses=[
            RunStatus.PREPARING, RunStatus.STARTING, RunStatus.RUNNING]))
        if not live:
            return
        run = self.rng.choice(live)
        pid = (run.handle or {}).get("pid")
        if pid:
            try:
                os.kill(int(pid), signal.SIGKILL)
                self.kills["runner"] += 1
            except ProcessLookupError:
                pass

    def reap_all(self) -> None:
        for procs in self.procs.values():
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()


def test_kill_loops_lose_nothing_and_run_nothing_twice(tmp_path: Path) -> None:
    seed = int(os.environ.get("RUNYARD_FAULT_SEED") or random.randrange(1 << 30))
    print(f"RUNYARD_FAULT_SEED={seed}")
    root = tmp_path / "ws"
    Workspace.create("kl", root, max_concurrent_runs=4)
    set_config(root, start_intent_grace_seconds=1.0, not_responding_grace_seconds=1.0)
    ws = Workspace.get("kl", root)  # opened after the config change
    src = tmp_path / "src"
    src.mkdir()
    (src / "s.py").write_text(textwrap.dedent(SCRIPT))
    ledger = tmp_path / "ledger.txt"
    chaos = Chaos(root, src, ledger, seed)
    per = RUNS // SUBMITTERS
    for _ in range(SUBMITTERS):
        chaos.submitter(per)
    chaos.start("reconciler", ["-m", "runyard.cli.main", "-w", str(root), "reconcile"])
    chaos.start("reader", ["-c", READER, str(root)])
    deadline = time.monotonic() + CHAOS_SECONDS
    try:
        while time.monotonic() < deadline:
            time.sleep(chaos.rng.uniform(0.2, 0.8))
            action = chaos.rng.random()
            if action < 0.3:
                chaos.kill_one("submitter")
            elif action < 0.55:
                chaos.kill_runner(ws)
            elif action < 0.75:
                chaos.kill_one("reconciler")
            else:
                chaos.kill_one("reader")
            if not chaos.alive("reconciler"):
                chaos.start("reconciler", ["-m", "runyard.cli.main", "-w", str(root),
                                           "reconcile"])
            if not chaos.alive("reader"):
                chaos.start("reader", ["-c", READER, str(root)])
            recorded = len(ws.context.store.list_runs(RunFilter()))
            if not chaos.alive("submitter"):
                if recorded >= RUNS:
                    break
                chaos.submitter(min(per, RUNS - recorded))
    finally:
        chaos.reap_all()
    # settle: one clean reconciler pass after another until every run has ended
    settle = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < settle:
        runs = reconcile(ws.context)
        if not runs:
            break
        time.sleep(0.3)
    runs = ws.context.store.list_runs(RunFilter())
    ran = collections.Counter(ledger.read_text().split()) if ledger.exists() else {}
    by_id = {r.id: r for r in runs}
    lost = [r.id for r in runs if not r.status.terminal]
    lost += [rid for rid in ran if rid not in by_id]  # executed without a record
    duplicates = [rid for rid, n in ran.items() if n > 1]
    wrong_metrics = [r.id for r in runs if r.status is RunStatus.COMPLETED
                     and len(ws.context.store.get_metric_rows(r.id)) != METRICS_PER_RUN]
    completed_unrun = [r.id for r in runs if r.status is RunStatus.COMPLETED
                       and r.id not in ran]
    time.sleep(0.5)
    orphans = _pids_mentioning(str(root))
    statuses = collections.Counter(r.status.value for r in runs)
    report = {"seed": seed, "runs submitted": len(runs), "runs executed": len(ran),
              "kills injected": sum(chaos.kills.values()), **{
                  f"kills: {k}": v for k, v in sorted(chaos.kills.items())},
              "runs lost": len(lost), "duplicate executions": len(duplicates),
              "metric count mismatches": len(wrong_metrics), "orphaned processes": len(orphans),
              **{f"ended {k}": v for k, v in sorted(statuses.items())}}
    print("\nfault suite (kill loops):")
    for k, v in report.items():
        print(f"  {k:28} {v}")
    assert len(runs) >= RUNS * 0.9, report
    assert sum(chaos.kills.values()) >= 20, report
    assert lost == [] and duplicates == [] and wrong_metrics == [] and completed_unrun == [], \
        (report, lost[:5], duplicates[:5], wrong_metrics[:5], completed_unrun[:5])
    assert orphans == [], (report, orphans)
