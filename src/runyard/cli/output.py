"""Rendering: JSON for machines, rich tables and plain text for people.

Everything printed through here goes to stdout; user-controlled text is never read as rich
markup. ``rich`` is imported when first used.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

#: Width of tables when stdout is not a terminal (rich would otherwise wrap at 80 columns).
PIPE_WIDTH = 200


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (and nothing else)."""
    click.echo(json.dumps(data, indent=2, default=str))


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr), wide when piped, without auto-highlighting."""
    from rich.console import Console  # noqa: PLC0415

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False)


@contextmanager
def progress(message: str, *, stderr: bool = False) -> Iterator[None]:
    """A rich spinner saying ``message`` while a long step runs, when the stream is a
    terminal; nothing otherwise (logs and pipes get no control codes: the commands print
    their progress as plain lines, e.g. each status change of a run)."""
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty():
        yield
        return
    with console(stderr=stderr).status(message, spinner="dots"):
        yield


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None,
          empty: str = "nothing to show") -> None:
    """Print a table; ``empty`` (on stderr) when there are no rows."""
    if not rows:
        click.echo(empty, err=True)
        return
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    t = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for i, col in enumerate(columns):
        t.add_column(col, no_wrap=i == 0)
    for row in rows:
        t.add_row(*(Text(text(v)) for v in row))
    console().print(t)


def text(value: Any) -> str:
    """A cell value as text: '-' for None, numbers compact."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def parse_iso(value: str | None) -> datetime | None:
    """An SDK ``...Z`` timestamp as an aware datetime (None stays None)."""
    return datetime.fromisoformat(value) if value else None


def local_time(value: str | float | None) -> str | None:
    """An ISO timestamp or unix time as local ``YYYY-MM-DD HH:MM:SS``."""
    if value is None or value == "":
        return None
    dt = (datetime.fromtimestamp(value).astimezone() if isinstance(value, (int, float))
          else parse_iso(value))
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S") if dt else None


def duration_seconds(start: str | None, end: str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (to now while ``end`` is None)."""
    s = parse_iso(start)
    if s is None:
        return None
    e = parse_iso(end)
    return (e.timestamp() if e else time.time()) - s.timestamp()


def human_duration(seconds: float | None) -> str | None:
    """``1.2s``, ``3m 04s``, ``2h 05m``."""
    if seconds is None:
        return None
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
