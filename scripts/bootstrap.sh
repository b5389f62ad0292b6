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

# One environment per service: Rasa 3.6 pins old aiohttp/pydantic/redis, the gateway
# (connectors/) needs new ones. Each is synced from its lock file when the lock changes.
sync_env() {  # sync_env <venv dir> <lock file> <what for>
  local venv=$1 lock=$2 what=$3
  local stamp=$venv/.lock-sha256 want
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: syncing the $what environment ($venv, Python 3.10)" >&2
    [ -x "$venv/bin/python" ] || $UV venv --quiet --python 3.10 "$venv"
    # --python pins the target: a relative VIRTUAL_ENV is ignored and would install elsewhere.
    $UV pip sync --quiet --python "$venv/bin/python" "$lock"
    echo "$want" > "$stamp"
  fi
}
sync_env .venv-bot requirements/bot.lock bot
sync_env .venv-gateway requirements/gateway.lock gateway
