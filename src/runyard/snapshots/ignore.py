"""Gitignore-style ignore rules for snapshots (``.runyardignore`` over ``.gitignore``).

One :class:`IgnoreRules` holds the compiled patterns of one ignore file. Its patterns are
relative to the directory that holds the file (``base``). The semantics follow gitignore:

* blank lines and lines starting with ``#`` are skipped; trailing unescaped spaces are dropped;
  ``\\#``, ``\\!`` and ``\\ `` escape a leading ``#``/``!`` or a trailing space;
* ``!pattern`` re-includes what an earlier pattern excluded (the last matching pattern wins);
  a file inside an excluded directory cannot be re-included, because the walk never enters it;
* a trailing ``/`` makes the pattern match directories only;
* a ``/`` at the start or in the middle anchors the pattern to ``base``; otherwise it matches
  a name at any depth below ``base``;
* ``*`` matches anything but ``/``, ``?`` one character but ``/``, ``[...]`` a character class
  (``[!...]``/``[^...]`` negated, ranges, POSIX ``[:alpha:]``-style classes), ``\\x`` the
  character ``x``;
* ``**/`` at the start matches in all directories, ``/**`` at the end matches everything
  inside, ``/**/`` matches zero or more directories; any other ``**`` is a plain ``*``.

Matching is case-sensitive. No file is read at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

RUNYARDIGNORE = ".runyardignore"
"""Name of the runyard ignore file; in a directory that has one, ``.gitignore`` is not read."""

GITIGNORE = ".gitignore"
"""Name of the git ignore file, read where no ``.runyardignore`` exists."""

IGNORE_FILE_NAMES: tuple[str, ...] = (RUNYARDIGNORE, GITIGNORE)
"""Ignore file names in order of precedence (the first one present in a directory is used)."""

_POSIX_CLASSES: dict[str, str] = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class IgnorePattern:
    """One parsed ignore pattern.

    ``regex`` is matched (full match) against a ``/``-separated path relative to the ignore
    file's directory.
    """

    text: str
    regex: str
    negate: bool
    dir_only: bool


def _strip_trailing_spaces(line: str) -> str:
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        backslashes = 0
        k = end - 1
        while k > 0 and line[k - 1] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2 == 1:  # "\ " keeps the space
            break
        end -= 1
    return line[:end]


def _class_char(pat: str, j: int) -> tuple[str, int]:
    """Read one (possibly backslash-escaped) character of a bracket expression."""
    if pat[j] == "\\" and j + 1 < len(pat):
        return pat[j + 1], j + 2
    return pat[j], j + 1


def _translate_class(pat: str, i: int) -> tuple[str, int] | None:
    """Translate the bracket expression starting at ``pat[i] == '['``.

    Returns ``(regex, index after ']')``, or None when the bracket is not closed (then the
    ``[`` is a literal character).
    """
    n = len(pat)
    j = i + 1
    negate = False
    if j < n and pat[j] in "!^":
        negate = True
        j += 1
    items: list[str] = []
    first = True
    while j < n and (pat[j] != "]" or first):
        first = False
        if pat.startswith("[:", j):
            end = pat.find(":]", j + 2)
            if end != -1 and pat[j + 2 : end] in _POSIX_CLASSES:
                items.append(_POSIX_CLASSES[pat[j + 2 : end]])
                j = end + 2
                continue
        lo, j = _class_char(pat, j)
        if j + 1 < n and pat[j] == "-" and pat[j + 1] != "]":
            hi, j = _class_char(pat, j + 1)
            if lo <= hi:
                items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            # a reversed range matches nothing, as in git
        else:
            items.append(re.escape(lo))
    if j >= n:
        return None
    body = "".join(items)
    if negate:
        return f"[^/{body}]", j + 1
    if not body:
        return "(?!)", j + 1
    return f"(?:(?!/)[{body}])", j + 1


def _translate(pat: str) -> str:
    """Translate a gitignore glob (no leading/trailing ``/``) into a regex body."""
    out: list[str] = []
    i = 0
    n = len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            j = i
            while j < n and pat[j] == "*":
                j += 1
            starts_component = i == 0 or pat[i - 1] == "/"
            ends_component = j == n or pat[j] == "/"
            if j - i >= 2 and starts_component and ends_component:
                if j == n:
                    out.append(".*")  # "**" or ".../**": everything below
                else:
                    out.append("(?:.*/)?")  # "**/": zero or more directories
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            translated = _translate_class(pat, i)
            if translated is None:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(translated[0])
                i = translated[1]
        elif c == "\\":
            if i + 1 < n:
                out.append(re.escape(pat[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def parse_pattern(line: str) -> IgnorePattern | None:
    """Parse one line of an ignore file; None for blank lines and comments."""
    line = line.rstrip("\r\n")
    if not line or line.startswith("#"):
        return None
    text = line
    line = _strip_trailing_spaces(line)
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line[:-1]
    if not line:
        return None
    anchored = "/" in line
    line = line.removeprefix("/")
    if not line:
        return None
    body = _translate(line)
    if not anchored:
        body = "(?:.*/)?" + body
    return IgnorePattern(text=text, regex=body, negate=negate, dir_only=dir_only)


class IgnoreRules:
    """The compiled patterns of one ignore file.

    ``base`` is the ``/``-separated path of the file's directory relative to the snapshot root
    (``""`` for the root itself); :meth:`match` takes paths relative to the snapshot root.
    """

    def __init__(self, patterns: Iterable[IgnorePattern], base: str = "") -> None:
        self.patterns: tuple[IgnorePattern, ...] = tuple(patterns)
        self.base = base.strip("/")
        self._prefix = f"{self.base}/" if self.base else ""
        # One alternation per kind of path, last pattern first: the first alternative that
        # matches is the last matching pattern of the file, which is the one that decides.
        self._file_re = self._combine(lambda p: not p.dir_only)
        self._dir_re = self._combine(lambda p: True)

    def _combine(self, keep: Callable[[IgnorePattern], bool]) -> re.Pattern[str] | None:
        parts = [
            f"(?P<p{index}>{pattern.regex})"
            for index, pattern in reversed(list(enumerate(self.patterns)))
            if keep(pattern)
        ]
        return re.compile("|".join(parts), re.DOTALL) if parts else None

    @classmethod
    def parse(cls, text: str, base: str = "") -> IgnoreRules:
        """Compile the text of an ignore file whose directory is ``base``."""
        text = text.removeprefix("\ufeff")
        patterns = [p for p in map(parse_pattern, text.splitlines()) if p is not None]
        return cls(patterns, base)

    @classmethod
    def from_file(cls, path: str | Path, base: str = "") -> IgnoreRules:
        """Read and compile an ignore file (UTF-8; undecodable bytes kept as in file names)."""
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return cls.parse(f.read(), base)

    def match(self, path: str, is_dir: bool) -> bool | None:
        """Decide about ``path`` (relative to the snapshot root, ``/``-separated).

        Returns True when the last matching pattern excludes the path, False when it is a
        negation (``!``) that re-includes it, None when no pattern matches or the path is not
        below ``base``.
        """
        regex = self._dir_re if is_dir else self._file_re
        if regex is None:
            return None
        if self._prefix:
            if not path.startswith(self._prefix):
                return None
            path = path[len(self._prefix) :]
        m = regex.fullmatch(path)
        if m is None or m.lastgroup is None:
            return None
        return not self.patterns[int(m.lastgroup[1:])].negate

    def __repr__(self) -> str:
        return f"IgnoreRules(base={self.base!r}, patterns={len(self.patterns)})"
