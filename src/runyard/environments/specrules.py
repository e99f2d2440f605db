"""The rules every package spec follows, whichever way it comes in.

A pip requirement, a pip option, a conda package or channel reaches a builder through the API
(``CondaDependencies.add_pip_package``, ``set_pip_option``, ``create(pip_packages=...)``, an
``Environment``'s ``python.conda_dependencies``), an ``environment.yml`` (its ``pip:``
section) or a ``requirements.txt``. Each way checks its entries here when they come in, and
:func:`runyard.environments.spec.normalize` checks them all again before a run is queued, so
nothing reaches a builder that these rules refuse:

* **One requirement per entry.** A pip requirement is one PEP 508 requirement that starts with
  a project name: ``six``, ``numpy>=1.26``, ``torch[cuda]==2.3; python_version>='3.10'``, or a
  direct reference ``mypkg @ https://example.org/mypkg-1.0-py3-none-any.whl`` (schemes
  ``http``, ``https``, ``git+https``, ``git+http``, ``git+ssh``). No newlines, NUL or other
  control characters, no trailing ``\\`` (a line continuation), no word that starts with ``-``
  (a pip option hidden in a requirement), no bare URLs or local paths (they do not travel to a
  compute target; write ``name @ URL`` or publish the package to an index).
* **Options only as options**, and only these (:data:`PIP_OPTIONS`), each with a checked
  value: ``--index-url URL``, ``--extra-index-url URL``, ``--find-links URL`` (``http``/
  ``https`` URLs), ``--trusted-host HOST[:PORT]``, ``--no-binary``/``--only-binary``
  (``:all:``, ``:none:`` or project names), ``--no-index``, ``--pre``, ``--prefer-binary``.
  Editable installs (``-e``), includes (``-r``), constraint files (``-c``) and any other pip
  option are refused. Options are kept in the canonical form ``--index-url URL``.
* **Conda** packages and channels: no control characters, no leading ``-``, no whitespace in a
  channel; ``variables:`` names are ``[A-Za-z_][A-Za-z0-9_]*``; a container base image is one
  image reference.
"""

from __future__ import annotations

import re
from typing import Any

from runyard.errors import InvalidParameter

__all__ = ["PIP_OPTIONS", "check_base_image", "check_channel", "check_conda_package",
           "check_pip_entry", "check_pip_option", "check_pip_requirement", "check_python_version",
           "check_variable_name", "is_pip_option"]

#: Accepted pip options: canonical name -> kind of value (None: a flag without value).
PIP_OPTIONS: dict[str, str | None] = {
    "--index-url": "url",
    "--extra-index-url": "url",
    "--find-links": "url",
    "--trusted-host": "host",
    "--no-binary": "formats",
    "--only-binary": "formats",
    "--no-index": None,
    "--pre": None,
    "--prefer-binary": None,
}
_ALIASES = {"-i": "--index-url", "-f": "--find-links"}
_EDITABLE = ("editable installs (-e) are not supported in an environment spec: they do not "
             "travel to a compute target; build a wheel, or list the package as "
             "'name @ git+https://...'")
_INCLUDE = ("includes (-r) are only read from a requirements file "
            "(Environment.from_pip_requirements); list the requirements instead")
_CONSTRAINT = "constraint files (-c) are not supported; pin the versions in the requirements"
_REFUSED = {"-e": _EDITABLE, "--editable": _EDITABLE, "-r": _INCLUDE, "--requirement": _INCLUDE,
            "-c": _CONSTRAINT, "--constraint": _CONSTRAINT}

#: Control characters (a tab is whitespace) and the line breaks ``str.splitlines`` knows
#: (pip reads a requirements file with it).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_NAME_START = re.compile(r"^[A-Za-z0-9]")
_OPTION_WORD = re.compile(r"(?:^|\s)-")
_URL = re.compile(r"^(https?)://[^\s/?#@]+(?:@[^\s/?#@]+)?(?:[/?#]\S*)?$")
_DIRECT_SCHEMES = ("http://", "https://", "git+https://", "git+http://", "git+ssh://")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$|"
                   r"^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")
_FORMATS = re.compile(r"^(?::all:|:none:|[A-Za-z0-9][A-Za-z0-9._-]*)"
                      r"(?:,(?::all:|:none:|[A-Za-z0-9][A-Za-z0-9._-]*))*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")



def _text(value: Any, field: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(field, f"{what} must be a string, got {type(value).__name__} "
                               f"{value!r}")
    if _CONTROL.search(value):  # before stripping: a trailing newline is refused too
        raise InvalidParameter(field, f"{what} {value!r} contains a newline, NUL or another "
                               f"control character; give one {what} per entry")
    text = value.strip()
    if not text:
        raise InvalidParameter(field, f"{what} is empty; give one {what}")
    return text


def is_pip_option(entry: str) -> bool:
    """Whether a ``pip:`` entry is an option (starts with ``-``) rather than a requirement."""
    return entry.lstrip().startswith("-")


def check_pip_requirement(value: Any, field: str = "pip_package") -> str:
    """One pip requirement (see the module docs); returns it stripped.

    Raises ``InvalidParameter`` naming ``field`` and the fix.
    """
    req = _text(value, field, "pip requirement")
    if req.startswith("-"):
        raise InvalidParameter(field, f"{req!r} is a pip option, not a package; pass options "
                               "with CondaDependencies.set_pip_option (supported: "
                               f"{', '.join(PIP_OPTIONS)})")
    if req.endswith("\\"):
        raise InvalidParameter(field, f"{req!r} ends with a line continuation '\\'; give one "
                               "whole requirement per entry")
    if _OPTION_WORD.search(req):
        raise InvalidParameter(field, f"{req!r} holds a pip option (a word starting with "
                               "'-'); give one requirement per entry and options through "
                               "set_pip_option")
    if not _NAME_START.match(req):
        raise InvalidParameter(field, f"{req!r} is not a requirement: a local path does not "
                               "travel to a compute target; publish the package to an index, "
                               "or give 'name @ https://...'")
    head = req.split(";", 1)[0]
    if "://" in head or head.lower().startswith("file:"):
        name, at, url = head.partition("@")
        url = url.strip()
        if not at or not name.strip() or not url.lower().startswith(_DIRECT_SCHEMES) \
                or any(c.isspace() for c in url):
            raise InvalidParameter(field, f"{req!r}: a package from a URL is written "
                                   "'name @ URL' with an http, https or git+https/git+ssh "
                                   "URL; for an index, use set_pip_index_url or "
                                   "set_pip_option('--extra-index-url URL')")
    return req


def _url(value: str, field: str, flag: str) -> str:
    if not _URL.fullmatch(value):
        raise InvalidParameter(field, f"{flag} needs an http:// or https:// URL, got "
                               f"{value!r} (local folders do not travel to a compute target)")
    return value


def check_pip_option(value: Any, field: str = "pip_option") -> str:
    """One pip option (see :data:`PIP_OPTIONS`); returns it in canonical form
    (``--index-url URL``, ``--pre``).

    Raises ``InvalidParameter`` naming ``field``, the option and the supported ones.
    """
    opt = _text(value, field, "pip option")
    if not opt.startswith("-"):
        raise InvalidParameter(field, f"{opt!r} is not an option (it must start with '-'); "
                               "use add_pip_package for packages")
    if opt.startswith("--"):
        flag, _, rest = opt.replace("=", " ", 1).partition(" ")
    else:  # -i URL, -iURL, -i=URL
        flag, rest = opt[:2], opt[2:]
    rest = rest.strip()
    if flag.startswith("-") and not flag.startswith("--") and rest.startswith("="):
        rest = rest[1:].strip()
    name = _ALIASES.get(flag, flag)
    if flag in _REFUSED:
        raise InvalidParameter(field, _REFUSED[flag])
    if name not in PIP_OPTIONS:
        raise InvalidParameter(field, f"unsupported pip option {flag!r}; supported: "
                               f"{', '.join(PIP_OPTIONS)} (-i and -f as short forms)")
    kind = PIP_OPTIONS[name]
    if kind is None:
        if rest:
            raise InvalidParameter(field, f"{name} takes no value, got {rest!r}")
        return name
    if not rest:
        raise InvalidParameter(field, f"{name} needs a value")
    if any(c.isspace() for c in rest):
        raise InvalidParameter(field, f"{name} takes one value, got {rest!r}; give one option "
                               "per entry")
    if kind == "url":
        _url(rest, field, name)
    elif kind == "host" and not _HOST.match(rest):
        raise InvalidParameter(field, f"{name} needs a host name (HOST or HOST:PORT), got "
                               f"{rest!r}")
    elif kind == "formats" and not _FORMATS.match(rest):
        raise InvalidParameter(field, f"{name} needs ':all:', ':none:' or comma-separated "
                               f"project names, got {rest!r}")
    return f"{name} {rest}"


def check_pip_entry(value: Any, field: str) -> str:
    """An entry of a ``pip:`` list: an option (checked, canonical) or a requirement."""
    if isinstance(value, str) and is_pip_option(value):
        return check_pip_option(value, field)
    return check_pip_requirement(value, field)


def check_conda_package(value: Any, field: str = "conda_package") -> str:
    """One conda match spec (``numpy=1.26``, ``conda-forge::numpy``); returns it stripped."""
    spec = _text(value, field, "conda package")
    if spec.startswith("-"):
        raise InvalidParameter(field, f"{spec!r} is not a conda package (it starts with '-')")
    return spec


def check_channel(value: Any, field: str = "channel") -> str:
    """One conda channel name or URL (no whitespace); returns it stripped."""
    ch = _text(value, field, "conda channel")
    if ch.startswith("-") or any(c.isspace() for c in ch):
        raise InvalidParameter(field, f"{ch!r} is not a channel name or URL")
    return ch


def check_variable_name(value: Any, field: str) -> str:
    """An environment variable name of an environment file (``[A-Za-z_][A-Za-z0-9_]*``)."""
    if not isinstance(value, str) or not _VARIABLE.fullmatch(value):
        raise InvalidParameter(field, f"{value!r} is not a variable name: use letters, digits "
                               "and '_', not starting with a digit")
    return value


def check_base_image(value: Any, field: str = "environment.docker.base_image") -> str:
    """One container image reference (``repo/name:tag`` or ``name@sha256:...``)."""
    image = _text(value, field, "image")
    if not _IMAGE.fullmatch(image):
        raise InvalidParameter(field, f"{image!r} is not an image reference such as "
                               "'python:3.11-slim' or 'registry.example/team/image:1.0'")
    return image


def check_python_version(value: Any, field: str = "python_version") -> str:
    """A python pin (``3.11``, ``>=3.10``): one line, not an option; returns it stripped."""
    version = _text(value, field, "python version")
    if version.startswith("-"):
        raise InvalidParameter(field, f"{version!r} is not a python version; give one such as "
                               "'3.11' or '>=3.10'")
    return version
