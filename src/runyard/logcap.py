"""Showing logs with a cap on each line: a 100 MB line prints as its start and a marker.

The driver log is the script's own output, written by the script; readers (``run logs``,
``wait_for_completion(show_output=True)``) read it in bounded chunks and pass it through a
:class:`LineCapper`, so one huge line never fills memory or a terminal.
"""

from __future__ import annotations

#: Longest log line shown whole.
MAX_LOG_LINE_BYTES = 64 * 1024
#: Bytes read from a log at a time.
READ_CHUNK_BYTES = 1 << 20


class LineCapper:
    """Cuts lines longer than ``limit`` bytes, across chunk boundaries; stateful per log."""

    def __init__(self, limit: int = MAX_LOG_LINE_BYTES) -> None:
        self.limit = limit
        self._line = 0      # bytes of the current line seen so far
        self._dropped = 0   # of which not shown

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` to show (with a marker where a long line ended)."""
        out: list[bytes] = []
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            end = len(data) if nl < 0 else nl
            piece = data[start:end]
            room = max(0, self.limit - self._line)
            out.append(piece[:room])
            self._dropped += max(0, len(piece) - room)
            self._line += len(piece)
            if nl < 0:
                break
            if self._dropped:
                out.append(f" …[line truncated: {self._dropped} more bytes]".encode())
            out.append(b"\n")
            self._line = self._dropped = 0
            start = nl + 1
        return b"".join(out)
