#!/usr/bin/env bash
# Installs what the bot needs, from nothing: uv, then the bot environment from its lock file.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet uv
fi
UV="python3 -m uv"

# One environment per side of the house: Rasa 3.6 pins old aiohttp/pydantic/redis and
# Python 3.10 (the bot); the gateway runs on a supported Python with new packages, and the
# devkit (emulators, workbench, tests, benches) adds the harness to the gateway's packages.
# Each is synced from its lock file when the lock changes.

# Python 3.10's support ended in October 2026; only the bot (Rasa 3.6) stays on it. The
# gateway and the devkit use 3.12 or 3.13: on PATH, or pyenv's, else the machine's python3
# when it is 3.12 or newer. Their locks are compiled for 3.12.
supported_python() {
  local c
  for c in python3.12 python3.13 "$(pyenv root 2>/dev/null)"/versions/3.1[23]*/bin/python3 python3; do
    if "$c" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  echo "bootstrap: the gateway needs Python 3.12 or newer; install it (Debian: apt-get install python3.12, or pyenv install 3.12)" >&2
  return 1
}

sync_env() {  # sync_env <venv dir> <lock file> <python> <what for> <package>...
  local venv=$1 lock=$2 python=$3 what=$4
  shift 4
  local stamp=$venv/.lock-sha256 want package
  want=$(cat "$lock" "${@/%//pyproject.toml}" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: syncing the $what environment ($venv, Python $python)" >&2
    # A venv on another Python than asked (e.g. the gateway's old 3.10 one) is made anew.
    local pyver='import sys; print(sys.version_info[:2])'
    if [ -x "$venv/bin/python" ] && [ -x "$python" ] \
       && [ "$("$venv/bin/python" -c "$pyver")" != "$("$python" -c "$pyver")" ]; then
      rm -rf "$venv"
    fi
    [ -x "$venv/bin/python" ] || $UV venv --quiet --python "$python" "$venv"
    # --python pins the target: a relative VIRTUAL_ENV is ignored and would install elsewhere.
    $UV pip sync --quiet --python "$venv/bin/python" "$lock"
    # The repository's own packages, editable (their pyproject.toml; dependencies are the
    # lock's): imports work from any folder, without sys.path edits.
    for package in "$@"; do
      $UV pip install --quiet --no-deps --python "$venv/bin/python" -e "$package"
    done
    echo "$want" > "$stamp"
  fi
}
sync_env .venv-bot requirements/bot.lock 3.10 bot contracts bot
gateway_python=$(supported_python)
sync_env .venv-gateway requirements/gateway.lock "$gateway_python" gateway contracts gateway
sync_env .venv-devkit requirements/devkit.lock "$gateway_python" devkit contracts gateway devkit
