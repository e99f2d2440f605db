"""Benchmark harness behind scripts/bench.

Discovers ``benchmarks/bench_*.py``, imports each module and calls ``run(repeats=N)``, which
returns a list of rows::

    {"benchmark": str, "unit": str, "runyard": float | None, "peer_name": str | None,
     "peer": float | None, "note": str (optional), "higher_is_better": bool (optional, False)}

and prints one table: benchmark | runyard | peer | peer value | ratio | unit | note, where
ratio = runyard / peer. A module that fails gets one error row and the harness goes on; the
exit status is 1 if any module failed.

    python benchmarks/harness.py [--repeats N] [--json FILE] [NAME ...]

NAME selects modules whose name contains it (``store`` picks ``bench_store.py``).

Two more modes:

* ``--baseline REF``: measure each selected module against git revision REF ("before") and the
  working tree ("after") in the same run, interleaved; see ``benchmarks/compare.py``.
* ``--module-json FILE PATH``: run the one module file PATH and write its rows as JSON to FILE
  (``-``: stdout); ``--expect-runyard DIR`` first checks that ``import runyard`` resolves into
  DIR and exits 3 when it does not. compare.py runs each side of a comparison this way, in a
  subprocess whose PYTHONPATH selects the tree.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
COLUMNS = ["benchmark", "runyard", "peer", "peer value", "ratio", "unit", "note"]


def discover(names: list[str]) -> list[Path]:
    paths = sorted(BENCH_DIR.glob("bench_*.py"))
    if names:
        paths = [p for p in paths if any(n in p.stem for n in names)]
    return paths


def load_and_run(path: Path, repeats: int) -> list[dict[str, Any]]:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise TypeError(f"{path.name} has no run(repeats=...) function")
    rows = run(repeats=repeats)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        got = type(rows).__name__
        raise TypeError(f"{path.name}: run() must return a list of dicts, got {got}")
    for row in rows:
        missing = {"benchmark", "unit", "runyard"} - row.keys()
        if missing:
            raise TypeError(f"{path.name}: row {row!r} lacks {sorted(missing)}")
    return rows


def error_row(path: Path, exc: BaseException) -> dict[str, Any]:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    loc = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {
        "benchmark": path.stem,
        "unit": "",
        "runyard": None,
        "peer_name": None,
        "peer": None,
        "note": f"ERROR {type(exc).__name__}{loc}: {msg}"[:300],
        "error": True,
    }


def fmt_num(value: Any) -> str:
    if value is None:
        return "-"
    if not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def ratio(row: dict[str, Any]) -> float | None:
    ours, peer = row.get("runyard"), row.get("peer")
    if not isinstance(ours, int | float) or not isinstance(peer, int | float) or peer == 0:
        return None
    return float(ours) / float(peer)


def runyard_is_better(row: dict[str, Any], r: float) -> bool:
    return r > 1 if row.get("higher_is_better") else r < 1


def table_cells(row: dict[str, Any]) -> list[str]:
    r = ratio(row)
    note = str(row.get("note") or "")
    if row.get("higher_is_better"):
        note = f"higher is better; {note}" if note else "higher is better"
    return [
        str(row.get("benchmark", "?")),
        fmt_num(row.get("runyard")),
        str(row.get("peer_name") or "-"),
        fmt_num(row.get("peer")),
        f"{r:.2f}x" if r is not None else "-",
        str(row.get("unit") or ""),
        note,
    ]


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print_plain(rows, title)
        return
    table = Table(title=title, show_lines=False)
    for col in COLUMNS:
        numeric = col in {"runyard", "peer value", "ratio"}
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        cells = table_cells(row)
        r = ratio(row)
        style = None
        if row.get("error"):
            style = "red"
        elif r is not None:
            cells[4] = f"[{'green' if runyard_is_better(row, r) else 'yellow'}]{cells[4]}[/]"
        table.add_row(*cells, style=style)
    Console(width=max(120, Console().width)).print(table)


def print_plain(rows: list[dict[str, Any]], title: str) -> None:
    grid = [COLUMNS] + [table_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]
    print(title)
    for n, line in enumerate(grid):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("-+-".join("-" * w for w in widths))


def runyard_location(expect: Path | None) -> str:
    """The resolved ``runyard/__init__.py`` this process imports; exit 3 if not under ``expect``.

    Imported before the module under test, so a wrong PYTHONPATH stops the run before anything
    is measured, and reported again in the JSON payload afterwards.
    """
    module = importlib.import_module("runyard")
    where = Path(module.__file__ or "?").resolve()
    if expect is not None and not where.is_relative_to(expect.resolve()):
        print(f"harness: FATAL: `import runyard` resolved to {where}, expected a module under "
              f"{expect.resolve()} (PYTHONPATH={os.environ.get('PYTHONPATH', '')!r})",
              file=sys.stderr, flush=True)
        raise SystemExit(3)
    return str(where)


def module_json(path: Path, repeats: int, out: str, expect: Path | None) -> int:
    """Run the one module file ``path`` and write ``{"rows": [...], ...}`` to ``out``."""
    path = path.resolve()
    runyard_file = runyard_location(expect)
    sys.path.insert(0, str(path.parent))  # the module's own helpers (peers/) come first
    error: str | None = None
    error_type: str | None = None
    t0 = time.perf_counter()
    try:
        rows = load_and_run(path, repeats)
    except (Exception, SystemExit) as exc:
        traceback.print_exc(file=sys.stderr)
        rows = [error_row(path, exc)]
        error, error_type = str(rows[0]["note"]), type(exc).__name__
    payload = {
        "module": path.stem,
        "path": str(path),
        "python": sys.executable,
        "runyard_file": runyard_location(expect),  # again: the module could have re-imported
        "runyard_file_before_run": runyard_file,
        "repeats": repeats,
        "seconds": round(time.perf_counter() - t0, 3),
        "rows": rows,
        "error": error,
        "error_type": error_type,
    }
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(out).write_text(text)
    return 1 if error else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="select modules whose name contains NAME")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (5)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--baseline", metavar="REF",
                        help="compare git revision REF (before) with the working tree (after)")
    parser.add_argument("--module-json", metavar="FILE",
                        help="run the one module file given as NAME, write its rows as JSON")
    parser.add_argument("--expect-runyard", type=Path, metavar="DIR",
                        help="with --module-json: exit 3 unless runyard is imported from DIR")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.baseline is not None:
        sys.path.insert(0, str(BENCH_DIR))
        import compare  # noqa: PLC0415 - only this mode needs it

        return compare.main(sys.argv[1:] if argv is None else argv)
    if args.module_json is not None:
        if len(args.names) != 1 or not Path(args.names[0]).is_file():
            parser.error("--module-json takes exactly one bench module file path")
        return module_json(Path(args.names[0]), args.repeats, args.module_json,
                           args.expect_runyard)

    paths = discover(args.names)
    if not paths:
        print(f"no benchmarks/bench_*.py matched {args.names or '(all)'}", file=sys.stderr)
        return 2

    sys.path.insert(0, str(BENCH_DIR))  # bench modules may share helpers in benchmarks/
    rows: list[dict[str, Any]] = []
    failures = 0
    for path in paths:
        print(f"[bench] {path.stem} (repeats={args.repeats}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            got = load_and_run(path, args.repeats)
        except (Exception, SystemExit) as exc:  # a broken module must not stop the others
            failures += 1
            traceback.print_exc(file=sys.stderr)
            got = [error_row(path, exc)]
        rows.extend(got)
        print(f"[bench] {path.stem} done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    print_table(rows, f"runyard benchmarks (repeats={args.repeats}; ratio = runyard / peer)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
