# shellcheck shell=bash
# Shared set-up for scripts/test, scripts/bench, scripts/demo. Source it, then call
#
#   runyard_env [EXTRAS]     # default EXTRAS: dev,postgres
#
# It cds to the repository root, creates .venv (Python >= 3.11; `uv` when available, else
# venv + pip), installs -e ".[EXTRAS]" when pyproject.toml or the extras changed since the last
# install, and puts .venv/bin first on PATH. Progress goes to stderr.
#
#   runyard_apt PKG...       # apt-get install what is missing (apt-get update first, once)

RUNYARD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

_ry_log() { echo "[runyard] $*" >&2; }

_ry_now() { date +%s.%N; }
_ry_since() { awk -v a="$1" -v b="$(_ry_now)" 'BEGIN { printf "%.1fs", b - a }'; }

runyard_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if [[ "$(id -u)" != 0 ]]; then
        _ry_log "missing system packages: ${missing[*]} (run as root or install them)"
        return 1
    fi
    _ry_log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "${_RY_APT_UPDATED:-}" ]]; then
        apt-get update -q >&2 || return 1
        _RY_APT_UPDATED=1
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# Prints a Python >= 3.11 interpreter.
_ry_python() {
    local c
    for c in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [[ -n "$c" ]] || continue
        command -v "$c" >/dev/null 2>&1 || continue
        if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

_ry_has_uv() { command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; }

runyard_env() {
    local extras="${1:-dev,postgres}"
    cd "$RUNYARD_ROOT" || return 1
    local venv="$RUNYARD_ROOT/.venv" py t0 use_uv=""
    _ry_has_uv && use_uv=1

    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
        if ! py=$(_ry_python); then
            runyard_apt python3 python3-venv || return 1
            py=$(_ry_python) || { _ry_log "no Python >= 3.11 found"; return 1; }
        fi
        if [[ -z "$use_uv" ]] && ! "$py" -c 'import ensurepip' 2>/dev/null; then
            runyard_apt python3-venv || return 1
        fi
        t0=$(_ry_now)
        rm -rf "$venv"
        if [[ -n "$use_uv" ]]; then
            uv venv -q --python "$(command -v "$py")" "$venv" >&2 || return 1
        else
            "$py" -m venv "$venv" >&2 || return 1
        fi
        _ry_log "created .venv with $("$venv/bin/python" -V 2>&1) in $(_ry_since "$t0")"
    fi

    # Reinstall only when pyproject.toml or the extras changed.
    local stamp="$venv/.runyard-installed" want
    want="$extras $(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        t0=$(_ry_now)
        _ry_log "installing -e .[$extras] ($([[ -n $use_uv ]] && echo uv || echo pip))"
        if [[ -n "$use_uv" ]]; then
            uv pip install -q --python "$venv/bin/python" -e ".[$extras]" >&2 || return 1
        else
            [[ -x "$venv/bin/pip" ]] || "$venv/bin/python" -m ensurepip >&2 || return 1
            "$venv/bin/python" -m pip install -q --disable-pip-version-check \
                -e ".[$extras]" >&2 || return 1
        fi
        echo "$want" >"$stamp"
        _ry_log "installed in $(_ry_since "$t0")"
    fi

    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
    unset PYTHONHOME
}

# Installs torch 2.13.0 into .venv when it is missing (the DDP test of the cluster kind needs
# it). Always with pip: pip reads this machine's pip config (find-links to the CPU wheel on
# disk); uv does not and would download a CUDA build of several GB. A uv-made venv has no pip:
# ensurepip adds it. Call after runyard_env.
runyard_torch() {
    local venv="$RUNYARD_ROOT/.venv" t0
    "$venv/bin/python" -c 'import torch' 2>/dev/null && return 0
    t0=$(_ry_now)
    "$venv/bin/python" -m pip --version >/dev/null 2>&1 \
        || "$venv/bin/python" -m ensurepip >/dev/null 2>&1 || return 1
    _ry_log "pip install torch==2.13.0 (CPU wheel from pip's find-links when present)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0 >&2 \
        || return 1
    _ry_log "torch installed in $(_ry_since "$t0")"
}

# Installs /usr/bin/python3.9 (Debian bullseye's) when it is missing: the oldest Python that
# installs here, on which tests/integration/test_old_python.py runs the runtime. Idempotent and
# best effort (returns non-zero with a message). Bullseye's source is added only for this
# install, with pin priority 100 so no bookworm package is ever replaced (checked with
# `apt-get -s` first: the install must only add packages), then removed again.
runyard_old_python() {
    local py=/usr/bin/python3.9 list=/etc/apt/sources.list.d/runyard-bullseye.sources
    local pin=/etc/apt/preferences.d/runyard-bullseye rc=0 plan
    [[ -x $py ]] && "$py" -c 'import json, sqlite3, subprocess' 2>/dev/null && return 0
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1 \
            || [[ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
        _ry_log "python3.9 is missing and cannot be installed here (needs root on Debian)"
        return 1
    fi
    # the same Debian mirror this machine's apt already uses, with bullseye's suite
    local mirror
    mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
        | grep -v -- '-security' | head -n 1)
    [[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' \
        /etc/apt/sources.list 2>/dev/null)
    if [[ -z $mirror ]]; then
        _ry_log "python3.9 is missing and no Debian mirror is configured for apt here"
        return 1
    fi
    _ry_log "installing python3.9 from Debian bullseye (for the old-python runtime tests)"
    printf '%s\n' "Types: deb" "URIs: $mirror" "Suites: bullseye" \
        "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$list"
    printf '%s\n' "Package: *" "Pin: release n=bullseye" "Pin-Priority: 100" >"$pin"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -q >&2; then
        rc=1
    elif ! plan=$(apt-get -s install -y -t bullseye --no-install-recommends python3.9 2>&1); then
        _ry_log "apt-get cannot plan the python3.9 install: $(tail -n 1 <<<"$plan")"
        rc=1
    elif grep -qE '^(Remv|Inst [^ ]+ \[)' <<<"$plan"; then
        _ry_log "installing python3.9 would replace or remove installed packages; not done"
        rc=1
    else
        apt-get install -y -q -t bullseye --no-install-recommends python3.9 >&2 || rc=1
    fi
    rm -f "$list" "$pin"
    apt-get update -q >/dev/null 2>&1 || true
    _RY_APT_UPDATED=1
    ((rc == 0)) && "$py" -V >&2
    return "$rc"
}

# Installs the Azurite storage emulator (npm) into .test-azurite/ for the Azure Blob datastore
# tests and benchmark (idempotent; Node.js and npm must be installed).
runyard_azurite() {
    local dir="$RUNYARD_ROOT/.test-azurite" t0
    [[ -x "$dir/node_modules/.bin/azurite-blob" ]] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        _ry_log "npm is missing: install Node.js (>= 18) and npm for the Azurite blob tests"
        return 1
    fi
    t0=$(_ry_now)
    _ry_log "npm install azurite@3 into $dir"
    npm install --prefix "$dir" --no-audit --no-fund azurite@3 >&2 || return 1
    _ry_log "azurite installed in $(_ry_since "$t0")"
}
