"""Reading pip requirements files (``Environment.from_pip_requirements``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from runyard.errors import InvalidParameter

__all__ = ["parse_requirements"]

_PIP_OPTIONS = {
    "-i": "--index-url", "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links", "--find-links": "--find-links",
    "--no-index": "--no-index", "--pre": "--pre", "--prefer-binary": "--prefer-binary",
    "--no-binary": "--no-binary", "--only-binary": "--only-binary",
    "--trusted-host": "--trusted-host",
}
_FLAGS_WITHOUT_VALUE = {"--no-index", "--pre", "--prefer-binary"}


def parse_requirements(path: str | os.PathLike[str],
                       _seen: frozenset[Path] = frozenset()) -> tuple[list[str], list[str]]:
    """Read a pip requirements file: ``(requirements, options)``.

    Supports comments, line continuations, ``-r`` includes and the index options
    (``--index-url``, ``--extra-index-url``, ``--find-links``, ``--no-index``, ``--pre``,
    ``--no-binary``, ``--only-binary``, ``--trusted-host``). Editable installs, constraint
    files and local paths are refused: they do not travel to a compute target.
    """
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError as exc:
        raise InvalidParameter(str(file), "the requirements file does not exist") from exc
    except OSError as exc:
        raise InvalidParameter(str(file), f"cannot read it: {exc.strerror}") from exc
    seen = _seen | {file.resolve()}
    reqs: list[str] = []
    opts: list[str] = []
    lineno = 0
    pending = ""
    for n, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            lineno = n
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = re.sub(r"(^|\s)#.*$", "", pending + raw).strip()
        pending = ""
        if not line:
            continue
        where = f"{file}:{lineno}"
        if line.startswith("-"):
            flag, _, value = line.replace("=", " ", 1).partition(" ") if line.startswith(
                "--") else (line[:2], "", line[2:])
            value = value.strip().lstrip("=").strip()
            if flag in ("-r", "--requirement"):
                inc = (file.parent / value).resolve()
                if inc in seen:
                    raise InvalidParameter(where, f"{value!r} includes itself")
                r2, o2 = parse_requirements(inc, seen)
                reqs.extend(r2)
                opts.extend(o2)
            elif flag in ("-e", "--editable"):
                raise InvalidParameter(where, "editable installs (-e) are not supported in an "
                                       "environment spec; build a wheel or list the package")
            elif flag in ("-c", "--constraint"):
                raise InvalidParameter(where, "constraint files (-c) are not supported; pin "
                                       "the versions in the requirements instead")
            elif flag in _PIP_OPTIONS:
                name = _PIP_OPTIONS[flag]
                if name in _FLAGS_WITHOUT_VALUE:
                    opts.append(name)
                elif not value:
                    raise InvalidParameter(where, f"{flag} needs a value")
                else:
                    opts.append(f"{name} {value}")
            else:
                raise InvalidParameter(where, f"unsupported pip option {flag!r}; supported: "
                                       f"{', '.join(sorted(set(_PIP_OPTIONS.values())))}, -r")
        elif line.startswith((".", "/", "file:", "~")):
            raise InvalidParameter(where, f"{line!r} is a local path, which does not travel "
                                   "to a compute target; publish it to an index or use a URL")
        else:
            reqs.append(line)
    return reqs, opts
