#!/usr/bin/env bash
# The services, on one machine:
#   run.sh chat    (make run)   action server, Rasa, the gateway; without LINE credentials
#                               also the local LINE emulator, and you chat as a LINE
#                               customer in this terminal (quick replies by number);
#                               without Slack credentials also the local Slack emulator,
#                               and you answer handoffs as the agent (/claim, /agent ...).
#   run.sh serve   (make serve) the same services in the foreground, for a real deployment.
#   run.sh shell   (make shell) Rasa's own terminal chat, no gateway (for NLU debugging).
# Stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-chat}

./scripts/bootstrap.sh
model=$(./scripts/train.sh)
mkdir -p var/log
[ -f .env ] && set -a && . ./.env && set +a

# Rasa serves the promoted model (make evaluate promotes a model that does not regress),
# or, before the first promotion, the model of the current data.
served=$model
promoted=${PROMOTED_MODEL_DIR:-models/promoted}/model.tar.gz
if [ -f "$promoted" ] && [ "$mode" != shell ]; then
  served=$promoted
  grep -q "\"$(basename "$model")\"" "$(dirname "$promoted")/promoted.json" 2>/dev/null \
    || echo "run: serving the promoted model; the model of the current data ($model) is not promoted yet: make evaluate" >&2
fi
# Conversations are kept (Redis with REDIS_URL, else var/trackers.db) for make review.
endpoints=$(.venv-bot/bin/python scripts/endpoints.py --out var/endpoints.yml)

ACTION_PORT=${ACTION_PORT:-5055}
RASA_PORT=${RASA_PORT:-5005}
PORT=${PORT:-8080}
EMULATOR_PORT=${EMULATOR_PORT:-8091}
SLACK_EMULATOR_PORT=${SLACK_EMULATOR_PORT:-8092}
export ACTION_SERVER_URL=${ACTION_SERVER_URL:-http://127.0.0.1:$ACTION_PORT/webhook}
export RASA_URL=${RASA_URL:-http://127.0.0.1:$RASA_PORT}
# The demo customer "デモ 太郎" (see bot/store/seed.py); set DEMO_SENDER to chat as someone else.
export DEMO_SENDER=${DEMO_SENDER:-U00000000000000000000000000000001}

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for() {  # wait_for <url> <what>
  .venv-bot/bin/python -c "import sys; from scripts.stack import wait_http; wait_http(sys.argv[1], 300)" "$1" \
    || { echo "run: $2 did not come up; see var/log/" >&2; exit 1; }
}

.venv-bot/bin/rasa run actions --actions bot.actions --port "$ACTION_PORT" >>var/log/actions.log 2>&1 &
pids+=($!)
echo "run: action server on :$ACTION_PORT (log: var/log/actions.log)" >&2

if [ "$mode" = shell ]; then
  .venv-bot/bin/rasa shell --model "$model" --endpoints "$endpoints" --conversation-id "$DEMO_SENDER"
  exit
fi

if [ -z "${RASA_TOKEN:-}" ]; then
  # Rasa's API never runs without a token (CVE-2024-49375); make one for this machine.
  [ -f var/rasa-token ] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > var/rasa-token)
  RASA_TOKEN=$(cat var/rasa-token)
fi
export RASA_TOKEN
.venv-bot/bin/python -m bot.server run --model "$served" --endpoints "$endpoints" --credentials credentials.yml \
  --enable-api --auth-token="$RASA_TOKEN" --interface "${RASA_INTERFACE:-127.0.0.1}" --port "$RASA_PORT" \
  >>var/log/rasa.log 2>&1 &
pids+=($!)
echo "run: Rasa on 127.0.0.1:$RASA_PORT (log: var/log/rasa.log); loading the model..." >&2

local_line=0
if [ -z "${LINE_CHANNEL_SECRET:-}" ] || [ -z "${LINE_CHANNEL_ACCESS_TOKEN:-}" ]; then
  # No LINE credentials: the LINE platform is emulated on this machine.
  local_line=1
  export LINE_CHANNEL_SECRET=local-demo-secret LINE_CHANNEL_ACCESS_TOKEN=local-demo-token
  export LINE_API_BASE_URL=http://127.0.0.1:$EMULATOR_PORT LINE_DATA_API_BASE_URL=http://127.0.0.1:$EMULATOR_PORT
fi
local_slack=0
if [ -z "${SLACK_BOT_TOKEN:-}" ]; then
  # No Slack credentials: the Slack workspace is emulated on this machine (agents: 佐藤 花子, Alex Kim).
  local_slack=1
  export SLACK_BOT_TOKEN=xoxb-local-demo SLACK_SIGNING_SECRET=local-demo-slack-secret
  export SLACK_API_BASE_URL=http://127.0.0.1:$SLACK_EMULATOR_PORT/api/ SLACK_HANDOFF_CHANNEL=C0HANDOFF1
  .venv-gateway/bin/python -m connectors.emulators.slack_api --port "$SLACK_EMULATOR_PORT" \
    --token "$SLACK_BOT_TOKEN" --channel "$SLACK_HANDOFF_CHANNEL" >>var/log/slack-emulator.log 2>&1 &
  pids+=($!)
  echo "run: no Slack credentials: Slack API calls go to the local emulator on :$SLACK_EMULATOR_PORT" >&2
fi
export PORT
.venv-gateway/bin/python -m connectors.gateway >>var/log/gateway.log 2>&1 &
pids+=($!)
echo "run: gateway on :$PORT, POST /line/webhook (log: var/log/gateway.log)" >&2
wait_for "$RASA_URL/" "Rasa"
wait_for "http://127.0.0.1:$PORT/healthz" "the gateway"

if [ $local_line = 1 ]; then
  # The web workbench (docs/workbench.md): the customer's LINE beside the agents' Slack,
  # the review queue and the case charts, all through the emulators and the real gateway.
  WORKBENCH_PORT=${WORKBENCH_PORT:-8093}
  .venv-gateway/bin/python -m connectors.workbench --port "$WORKBENCH_PORT" \
    --gateway "http://127.0.0.1:$PORT" --line-emulator "http://127.0.0.1:$EMULATOR_PORT" \
    --slack-emulator "http://127.0.0.1:$SLACK_EMULATOR_PORT" >>var/log/workbench.log 2>&1 &
  pids+=($!)
  echo "run: workbench on http://127.0.0.1:$WORKBENCH_PORT/ (customer and agent side by side, review, cases)" >&2
fi

if [ "$mode" = chat ] && [ $local_line = 1 ]; then
  echo "run: chatting as LINE user $DEMO_SENDER (デモ 太郎) through the local LINE emulator." >&2
  echo "     Try: 親子丼に別卵が付いていませんでした / my fries are missing. Numbers tap quick replies; /quit to stop." >&2
  slack_args=()
  [ $local_slack = 1 ] && slack_args=(--slack-emulator "http://127.0.0.1:$SLACK_EMULATOR_PORT")
  .venv-gateway/bin/python -m connectors.emulators.terminal_chat \
    --gateway "http://127.0.0.1:$PORT" --serve-emulator "$EMULATOR_PORT" --user "$DEMO_SENDER" "${slack_args[@]}"
else
  if [ $local_line = 1 ]; then
    .venv-gateway/bin/python -m connectors.emulators.line_api --port "$EMULATOR_PORT" >>var/log/line-emulator.log 2>&1 &
    pids+=($!)
    echo "run: no LINE credentials: LINE API calls go to the local emulator on :$EMULATOR_PORT" >&2
  fi
  echo "run: all services up; Ctrl-C stops them." >&2
  wait -n "${pids[@]}"
fi
