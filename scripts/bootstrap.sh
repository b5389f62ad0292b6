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

stamp=.venv-bot/.lock-sha256
want=$(sha256sum requirements/bot.lock | cut -d' ' -f1)
if [ ! -x .venv-bot/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating the bot environment (.venv-bot, Python 3.10)" >&2
  [ -x .venv-bot/bin/python ] || $UV venv --quiet --python 3.10 .venv-bot
  # --python pins the target: a relative VIRTUAL_ENV is ignored and would install elsewhere.
  $UV pip sync --quiet --python .venv-bot/bin/python requirements/bot.lock
  echo "$want" > "$stamp"
fi
