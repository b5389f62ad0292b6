#!/usr/bin/env bash
# `make run` (chat in the terminal as a customer) and `make serve` (services in the foreground).
# Starts the action server, then Rasa; stops both on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-chat}

./scripts/bootstrap.sh
model=$(./scripts/train.sh)
mkdir -p var/log
[ -f .env ] && set -a && . ./.env && set +a

ACTION_PORT=${ACTION_PORT:-5055}
RASA_PORT=${RASA_PORT:-5005}
export ACTION_SERVER_URL=${ACTION_SERVER_URL:-http://127.0.0.1:$ACTION_PORT/webhook}
# The demo customer "デモ 太郎" (see bot/store/seed.py); set DEMO_SENDER to chat as someone else.
DEMO_SENDER=${DEMO_SENDER:-U00000000000000000000000000000001}

.venv-bot/bin/rasa run actions --actions bot.actions --port "$ACTION_PORT" >>var/log/actions.log 2>&1 &
actions_pid=$!
trap 'kill $actions_pid 2>/dev/null || true' EXIT
echo "action server on :$ACTION_PORT (log: var/log/actions.log)" >&2

if [ "$mode" = serve ]; then
  if [ -z "${RASA_TOKEN:-}" ]; then
    # Rasa's API must never run without a token (CVE-2024-49375); make one for this machine.
    [ -f var/rasa-token ] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > var/rasa-token)
    RASA_TOKEN=$(cat var/rasa-token)
    echo "RASA_TOKEN not set: using the token in var/rasa-token" >&2
  fi
  exec_args=(--enable-api --auth-token "$RASA_TOKEN" --interface "${RASA_INTERFACE:-127.0.0.1}" --port "$RASA_PORT")
  .venv-bot/bin/rasa run --model "$model" --endpoints endpoints.yml --credentials credentials.yml "${exec_args[@]}"
else
  echo "Chatting as $DEMO_SENDER (デモ 太郎). Try: 親子丼に別卵が付いていませんでした / my fries are missing. /stop to quit." >&2
  .venv-bot/bin/rasa shell --model "$model" --endpoints endpoints.yml --conversation-id "$DEMO_SENDER"
fi
