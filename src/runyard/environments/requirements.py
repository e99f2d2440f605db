"""Reading pip requirements files (``Environment.from_pip_requirements``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from runyard.environments.specrules import check_pip_option, check_pip_requirement
from runyard.errors import InvalidParameter

__all__ = ["parse_requirements"]

def parse_requirements(path: str | os.PathLike[str],
                       _seen: frozenset[Path] = frozenset()) -> tuple[list[str], list[str]]:
    """Read a pip requirements file: ``(requirements, options)``.

    Supports comments, line continuations, ``-r`` includes and the options of
    :data:`runyard.environments.specrules.PIP_OPTIONS` (``--index-url``,
    ``--extra-index-url``, ``--find-links``, ``--trusted-host``, ``--no-index``, ``--pre``,
    ``--prefer-binary``, ``--no-binary``, ``--only-binary``). Every line follows the rules of
    :mod:`runyard.environments.specrules`, the same as the API and ``environment.yml``:
    editable installs, constraint files, per-requirement options (``six --hash=...``), bare
    URLs and local paths are refused (they do not travel to a compute target).
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
            else:  # a supported option, checked and canonical; -e, -c and others refused
                opts.append(check_pip_option(line, where))
        else:
            reqs.append(check_pip_requirement(line, where))
    return reqs, opts
