"""Before/after benchmarks: ``scripts/bench --baseline REF [--repeats N] [--json FILE] [NAME ...]``.

Measures every selected ``benchmarks/bench_*.py`` module twice in the same run: "before" against
the code of git revision REF and "after" against the working tree, and prints one table::

    benchmark | unit | before (REF sha) | after | after/before | peer | peer value | note

How each side runs. Each measurement is a subprocess of the same interpreter running
``benchmarks/harness.py --module-json`` for one module with ``run(repeats=1)``. Its PYTHONPATH
puts the side's ``src`` first: ``<git worktree of REF>/src`` before, ``<repo>/src`` after (the
venv's editable install of runyard is a ``.pth`` entry, which PYTHONPATH precedes). The side is
checked twice: once per run with ``python -c "import runyard"`` (abort, exit 2, when it
resolves elsewhere) and once in every harness subprocess (``--expect-runyard``, exit 3). What
the benchmarks start resolves runyard from the same tree: the local target derives the runner's
and the script's runyard from the submitting process's package (up to 753ac39 a link to it in
the workspace's ``pylib`` folder, then a runtime bundle copied from it) and prepends that to the
inherited PYTHONPATH; each benchmark makes its own workspace in a temp folder, so the two sides
never share that folder.

The benchmark modules come from the current ``benchmarks/`` for both sides, so the measuring
code is identical. When the current copy of a module fails against REF (say, an import that
moved) and REF has a different copy of it, the before side falls back to REF's own copy, and the
note column says so.

Interleaving: for each module, ``N`` rounds of one before run and one after run, the order
alternating per round (before-after, after-before, ...) so that neither side always goes first;
then the next module. A row's value on each side is the median over the rounds of what
``run(repeats=1)`` reported (each already a median of that module's own samples); the peer value
is the median of the after runs' peers.

The REF worktree lives in ``/tmp/runyard-baseline-<sha12>`` (made with ``git worktree add
--detach``, reused while it is clean and at that commit). Exit status: 0, or 1 when any
measurement failed, 2 when the set-up failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
HARNESS = BENCH_DIR / "harness.py"
COLUMNS = ["benchmark", "unit", "before", "after", "after/before", "peer", "peer value", "note"]
Row = dict[str, Any]


@dataclass(frozen=True)
class Side:
    """One tree to measure: ``src`` (holding ``runyard/``) goes first on PYTHONPATH."""

    name: str  # "before" / "after"
    label: str  # what the table header says
    root: Path  # the tree's root (its own benchmarks/ is the before side's fallback)
    src: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.src), os.environ.get("PYTHONPATH", "")) if p)
        return env


@dataclass
class Outcome:
    """One module run on one side."""

    rows: list[Row]
    error: str | None
    used: Path  # the module file that ran
    seconds: float


@dataclass
class ModuleResult:
    """All rounds of one module: outcomes per side, plus notes for every row of the module."""

    module: str
    before: list[Outcome] = field(default_factory=list)
    after: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class SetupError(RuntimeError):
    """The comparison cannot start (git, worktree, wrong runyard on the path)."""


# -- git ---------------------------------------------------------------------------------------
def git(*args: str, cwd: Path = REPO) -> str:
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SetupError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def resolve_ref(ref: str) -> str:
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def registered_worktrees() -> dict[Path, bool]:
    """Worktrees of the repository: path -> whether git marks it prunable (folder gone)."""
    out: dict[Path, bool] = {}
    current: Path | None = None
    for line in git("worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            current = Path(line.split(" ", 1)[1])
            out[current] = False
        elif line.startswith("prunable") and current is not None:
            out[current] = True
    return out


def ensure_worktree(sha: str) -> Path:
    """A clean detached worktree of ``sha`` in /tmp: reused when it exists, else added."""
    path = Path(tempfile.gettempdir()) / f"runyard-baseline-{sha[:12]}"
    known = registered_worktrees()
    if path.exists():
        if path not in known:
            raise SetupError(f"{path} exists but is not a worktree of {REPO}; remove it")
        head = git("rev-parse", "HEAD", cwd=path)
        if head != sha:
            raise SetupError(f"worktree {path} is at {head[:12]}, not {sha[:12]}; remove it with "
                             f"`git -C {REPO} worktree remove --force {path}`")
        dirty = git("status", "--porcelain", "--untracked-files=no", cwd=path)
        if dirty:
            raise SetupError(f"worktree {path} has local changes, so it is not {sha[:12]}:\n"
                             f"{dirty}")
        write_metadata(path)
        return path
    force = ["--force"] if path in known else []  # registered, but its folder was removed
    git("worktree", "add", *force, "--detach", str(path), sha)
    print(f"[bench] added worktree {path} at {sha[:12]}", file=sys.stderr)
    write_metadata(path)
    return path


def write_metadata(path: Path) -> None:
    """Give the REF tree its own package metadata (``src/<name>.egg-info``, git-ignored), so
    that on its side entry points (compute kinds, stores) come from REF's ``pyproject.toml``
    and not from the editable install of the working tree."""
    if any((path / "src").glob("*.egg-info/entry_points.txt")):
        return
    proc = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                           "egg_info"], cwd=path, capture_output=True, text=True)
    if proc.returncode != 0 or not any((path / "src").glob("*.egg-info/entry_points.txt")):
        raise SetupError(f"could not write the package metadata of {path}: "
                         f"{proc.stderr.strip()[-2000:]}")


def tree_fingerprint(root: Path) -> str:
    """Paths, sizes and mtimes of the tree's ``src`` and ``benchmarks`` Python files."""
    h = hashlib.sha256()
    for sub in ("src", "benchmarks"):
        for p in sorted((root / sub).rglob("*.py")):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# -- running one side --------------------------------------------------------------------------
def check_side(side: Side) -> str:
    """Where ``import runyard`` resolves in the side's environment; SetupError when elsewhere."""
    code = "import pathlib, runyard; print(pathlib.Path(runyard.__file__).resolve())"
    proc = subprocess.run([sys.executable, "-c", code], env=side.env(), cwd=REPO,
                          capture_output=True, text=True)
    where = Path(proc.stdout.strip() or "?")
    if proc.returncode != 0 or not where.is_relative_to(side.src.resolve() / "runyard"):
        raise SetupError(f"{side.name}: `import runyard` with PYTHONPATH={side.env()['PYTHONPATH']}"
                         f" resolved to {where}, not into {side.src / 'runyard'}\n"
                         f"{proc.stderr.strip()}")
    # Byte-compile the side once, so no measurement pays for writing .pyc files.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(side.src)], env=side.env(),
                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(where)


def run_module(side: Side, module: Path, repeats: int) -> Outcome:
    """``harness.py --module-json`` for ``module`` in a subprocess on ``side``."""
    print(f"[bench] {module.stem} {side.name} ({module}) ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="runyard-bench-cmp-") as tmp:
        out = Path(tmp) / "rows.json"
        argv = [sys.executable, str(HARNESS), "--module-json", str(out), "--repeats",
                str(repeats), "--expect-runyard", str(side.src / "runyard"), str(module)]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=side.env(), cwd=REPO, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        payload: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    print(f"[bench] {module.stem} {side.name} done in {seconds:.1f}s", file=sys.stderr)
    if proc.returncode == 3 or not payload:
        return Outcome([], f"harness exited {proc.returncode} without rows", module, seconds)
    where = Path(payload.get("runyard_file", "?"))
    if not where.is_relative_to(side.src.resolve() / "runyard"):
        return Outcome([], f"runyard came from {where}", module, seconds)
    return Outcome(list(payload["rows"]), payload.get("error"), module, seconds)


def run_before(side: Side, current: Path, own: Path | None, repeats: int,
               result: ModuleResult, state: dict[str, Path]) -> Outcome:
    """The before run of one round: the current module, else REF's own copy (``own``).

    Once the current copy has failed against REF and REF's copy has worked, later rounds run
    REF's copy directly (``state`` remembers it).
    """
    module = state.get(current.stem, current)
    outcome = run_module(side, module, repeats)
    if outcome.error is None or module != current or own is None:
        return outcome
    if own.read_bytes() == current.read_bytes():
        return outcome  # the same file: nothing else to try
    fallback = run_module(side, own, repeats)
    if fallback.error is None:
        state[current.stem] = own
        result.notes.append(f"before ran REF's own {own.name} (the current copy failed against "
                            f"REF: {outcome.error})")
    return fallback


def measure(before: Side, after: Side, paths: list[Path], repeats: int) -> list[ModuleResult]:
    """Module by module, ``repeats`` rounds of before/after runs, alternating the order."""
    results: list[ModuleResult] = []
    fallback: dict[str, Path] = {}
    for path in paths:
        result = ModuleResult(path.stem)
        own = before.root / "benchmarks" / path.name
        for round_no in range(repeats):
            order = ("before", "after") if round_no % 2 == 0 else ("after", "before")
            for name in order:
                if name == "before":
                    result.before.append(run_before(before, path, own if own.is_file() else None,
                                                    1, result, fallback))
                else:
                    result.after.append(run_module(after, path, 1))
        results.append(result)
    return results


# -- combining the rounds ----------------------------------------------------------------------
def median(values: list[Any]) -> float | None:
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return statistics.median(nums) if nums else None


def by_name(outcomes: list[Outcome]) -> dict[str, list[Row]]:
    """Successful rows of all rounds, grouped by benchmark name, in first-seen order."""
    rows: dict[str, list[Row]] = {}
    for outcome in outcomes:
        if outcome.error is None:
            for row in outcome.rows:
                rows.setdefault(str(row.get("benchmark")), []).append(row)
    return rows


def failures(side: str, outcomes: list[Outcome]) -> str | None:
    failed = [o.error for o in outcomes if o.error is not None]
    if not failed:
        return None
    return f"{side}: {len(failed)}/{len(outcomes)} runs FAILED ({failed[-1]})"


def spread(values: list[Any]) -> str:
    nums = [float(v) for v in values if isinstance(v, int | float)]
    return f"{harness.fmt_num(min(nums))}..{harness.fmt_num(max(nums))}" if nums else "-"


def combine(result: ModuleResult) -> list[Row]:
    """One row per benchmark name of the module, with both columns and every round's value."""
    before, after = by_name(result.before), by_name(result.after)
    names = list(after) + [n for n in before if n not in after]
    errors = [e for e in (failures("before", result.before), failures("after", result.after))
              if e]
    if not names:
        return [{"benchmark": result.module, "unit": "", "before": None, "after": None,
                 "ratio": None, "peer_name": None, "peer": None, "error": True,
                 "note": "; ".join(result.notes + errors)}]
    rows: list[Row] = []
    for name in names:
        b_rows, a_rows = before.get(name, []), after.get(name, [])
        ref = (a_rows or b_rows)[-1]
        b_vals = [r.get("runyard") for r in b_rows]
        a_vals = [r.get("runyard") for r in a_rows]
        b, a = median(b_vals), median(a_vals)
        notes = list(result.notes) + errors
        if not b_rows and not any(o.error for o in result.before):
            notes.append("no before value (a new row: REF's run does not report it)")
        if not a_rows and not any(o.error for o in result.after):
            notes.append("no after value (only REF's copy of the module reports it)")
        ranges = [f"{side} {spread(vals)}" for side, vals in (("before", b_vals),
                                                               ("after", a_vals)) if vals]
        if len(b_vals) > 1 or len(a_vals) > 1:
            notes.append(f"range over rounds: {', '.join(ranges)}")
        if ref.get("higher_is_better"):
            notes.append("higher is better")
        if ref.get("note"):
            notes.append(str(ref["note"]))
        rows.append({
            "module": result.module,
            "benchmark": name,
            "unit": ref.get("unit", ""),
            "before": b,
            "after": a,
            "ratio": a / b if a is not None and b else None,
            "peer_name": a_rows[-1].get("peer_name") if a_rows else None,
            "peer": median([r.get("peer") for r in a_rows]),
            "higher_is_better": bool(ref.get("higher_is_better")),
            "before_samples": b_vals,
            "after_samples": a_vals,
            "before_module": str(result.before[-1].used) if result.before else None,
            "note": "; ".join(notes),
            "error": bool(errors) and (b is None or a is None),
        })
    return rows


# -- output ------------------------------------------------------------------------------------
def cells(row: Row) -> list[str]:
    r = row.get("ratio")
    return [
        str(row["benchmark"]),
        str(row.get("unit") or ""),
        harness.fmt_num(row.get("before")),
        harness.fmt_num(row.get("after")),
        f"{r:.2f}x" if isinstance(r, float) else "-",
        str(row.get("peer_name") or "-"),
        harness.fmt_num(row.get("peer")),
        str(row.get("note") or ""),
    ]


def print_table(rows: list[Row], headers: list[str], title: str) -> None:
    try:
        from rich.console import Console  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
    except ImportError:
        grid = [headers] + [cells(r) for r in rows]
        widths = [max(len(line[i]) for line in grid) for i in range(len(headers))]
        print(title)
        for n, line in enumerate(grid):
            print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
            if n == 0:
                print("-+-".join("-" * w for w in widths))
        return
    table = Table(title=title)
    for col in headers:
        numeric = col.startswith(("before", "after", "peer value"))
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        line = cells(row)
        r = row.get("ratio")
        if isinstance(r, float) and r != 1.0:
            better = r > 1 if row.get("higher_is_better") else r < 1
            line[4] = f"[{'green' if better else 'yellow'}]{line[4]}[/]"
        table.add_row(*line, style="red" if row.get("error") else None)
    Console(width=max(180, Console().width)).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench --baseline",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="select modules whose name contains NAME")
    parser.add_argument("--baseline", required=True, metavar="REF",
                        help="git revision measured as 'before' (e.g. HEAD, main~3)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="rounds of alternating before/after runs per module (5)")
    parser.add_argument("--json", type=Path, help="also write both columns to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    paths = harness.discover(args.names)
    if not paths:
        print(f"no benchmarks/bench_*.py matched {args.names or '(all)'}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    try:
        sha = resolve_ref(args.baseline)
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", "src"))
        worktree = ensure_worktree(sha)
        before = Side("before", f"before ({sha[:7]})", worktree, worktree / "src")
        after = Side("after", "after (working tree)", REPO, REPO / "src")
        where = {side.name: check_side(side) for side in (before, after)}
    except SetupError as exc:
        print(f"scripts/bench --baseline: FATAL: {exc}", file=sys.stderr)
        return 2
    for side in (before, after):
        print(f"[bench] {side.name}: runyard from {where[side.name]}", file=sys.stderr)

    fingerprint = tree_fingerprint(REPO)
    results = measure(before, after, paths, args.repeats)
    changed = tree_fingerprint(REPO) != fingerprint
    rows = [row for result in results for row in combine(result)]
    wall = time.perf_counter() - t0

    headers = list(COLUMNS)
    headers[2], headers[3] = before.label, after.label
    ref = args.baseline if sha.startswith(args.baseline) else f"{args.baseline} ({sha[:7]})"
    title = (f"runyard before/after: {ref} vs working tree (HEAD "
             f"{head[:7]}{', src modified' if dirty else ''}); median of {args.repeats} "
             "alternating rounds of run(repeats=1) per side; ratio = after / before")
    print_table(rows, headers, title)
    if changed:
        print("WARNING: src/ or benchmarks/ of the working tree changed during the run; the "
              "after column may mix versions", file=sys.stderr)
    print(f"[bench] compared {len(paths)} module(s) in {wall:.1f}s", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "baseline": {"ref": args.baseline, "sha": sha, "worktree": str(worktree),
                         "runyard": where["before"]},
            "after": {"tree": str(REPO), "head": head, "src_modified": dirty,
                      "runyard": where["after"], "changed_during_run": changed},
            "repeats": args.repeats,
            "method": "per module: rounds of run(repeats=1) in subprocesses, order alternating "
                      "before/after; values are medians over the rounds",
            "wall_s": round(wall, 1),
            "rows": rows,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = any(o.error for r in results for o in (*r.before, *r.after))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
