#!/usr/bin/env bash
# The services, on one machine:
#   run.sh chat    (make run)   action server, Rasa, the gateway; without LINE credentials
#                               also the local LINE emulator, and you chat as a LINE
#                               customer in this terminal (quick replies by number);
#                               without Slack credentials also the local Slack emulator,
#                               and you answer handoffs as the agent (/claim, /agent ...).
#   run.sh serve   (make serve) the same services in the foreground, for a real deployment:
#                               refuses to start without the LINE and Slack credentials
#                               unless EMULATE=1 (then it emulates what is missing, as chat).
#   run.sh shell   (make shell) Rasa's own terminal chat, no gateway (for NLU debugging).
# Stops everything it started on exit.
#
# Every service binds 127.0.0.1 unless a variable opens it: BIND_HOST (the demo's gateway
# and the workbench), GATEWAY_INTERFACE (the gateway alone; `serve` with real credentials
# binds it to 0.0.0.0, LINE must reach it), RASA_INTERFACE, ACTION_INTERFACE. The LINE and
# Slack emulators always stay on loopback: only this machine's processes call them.
# Secrets left empty (Rasa's token, the action server's, the approval key, the demo's LINE
# and Slack ones) are generated once per machine into $VAR_DIR (default var/, files
# readable by this user only).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-chat}

# ENV_FILE=/dev/null ignores .env (the tests do, so a developer's .env cannot leak in).
env_file=${ENV_FILE:-.env}
[ -f "$env_file" ] && set -a && . "$env_file" && set +a

if [ "$mode" = serve ] && [ "${EMULATE:-0}" != 1 ]; then
  # A real deployment: no silent fallback to emulators with this machine's demo secrets.
  missing=()
  for name in LINE_CHANNEL_SECRET LINE_CHANNEL_ACCESS_TOKEN SLACK_BOT_TOKEN SLACK_SIGNING_SECRET SLACK_HANDOFF_CHANNEL; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "serve: not started: ${missing[*]} not set (see .env.example)." >&2
    echo "       To run with the local LINE/Slack emulators instead: EMULATE=1 make serve" >&2
    exit 2
  fi
fi

./scripts/bootstrap.sh
model=$(./scripts/train.sh)
# VAR_DIR: logs, generated secrets, endpoints file and the demo's SQLite files (the tests
# point it at a temporary folder).
VAR_DIR=${VAR_DIR:-var}
mkdir -p "$VAR_DIR/log"
VAR_DIR=$(cd "$VAR_DIR" && pwd)
log=$VAR_DIR/log

# A random secret kept in $VAR_DIR/<name>, made on first use with umask 077: the demo's
# secrets belong to this machine and are never a value written in this script.
secret_file() {  # secret_file <name> [prefix]
  local file=$VAR_DIR/$1
  [ -s "$file" ] || (umask 077 && printf '%s%s' "${2:-}" "$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')" > "$file")
  cat "$file"
}

# Rasa serves the promoted model (make evaluate promotes a model that does not regress),
# or, before the first promotion, the model of the current data.
served=$model
promoted=${PROMOTED_MODEL_DIR:-models/promoted}/model.tar.gz
if [ -f "$promoted" ] && [ "$mode" != shell ]; then
  served=$promoted
  grep -q "\"$(basename "$model")\"" "$(dirname "$promoted")/promoted.json" 2>/dev/null \
    || echo "run: serving the promoted model; the model of the current data ($model) is not promoted yet: make evaluate" >&2
fi
# Conversations are kept (Redis with REDIS_URL, else $VAR_DIR/trackers.db) for make review.
export TRACKER_STORE_URL=${TRACKER_STORE_URL:-sqlite:///$VAR_DIR/trackers.db}
export ORDERS_DATABASE_URL=${ORDERS_DATABASE_URL:-sqlite:///$VAR_DIR/orders.db}
export ATTACHMENTS_DIR=${ATTACHMENTS_DIR:-$VAR_DIR/attachments}
endpoints=$(.venv-bot/bin/python scripts/endpoints.py --out "$VAR_DIR/endpoints.yml")

ACTION_PORT=${ACTION_PORT:-5055}
RASA_PORT=${RASA_PORT:-5005}
PORT=${PORT:-8080}
EMULATOR_PORT=${EMULATOR_PORT:-8091}
SLACK_EMULATOR_PORT=${SLACK_EMULATOR_PORT:-8092}
export ACTION_SERVER_URL=${ACTION_SERVER_URL:-http://127.0.0.1:$ACTION_PORT/webhook}
export RASA_URL=${RASA_URL:-http://127.0.0.1:$RASA_PORT}
# The demo customer "デモ 太郎" (see bot/store/seed.py); set DEMO_SENDER to chat as someone else.
export DEMO_SENDER=${DEMO_SENDER:-U00000000000000000000000000000001}
BIND_HOST=${BIND_HOST:-127.0.0.1}
export ACTION_INTERFACE=${ACTION_INTERFACE:-127.0.0.1}
RASA_INTERFACE=${RASA_INTERFACE:-127.0.0.1}
# Only Rasa may call the action server: Rasa sends this secret (endpoints.yml headers).
if [ -z "${ACTION_SERVER_TOKEN:-}" ]; then
  ACTION_SERVER_TOKEN=$(secret_file action-server-token)
fi
export ACTION_SERVER_TOKEN
# The gateway signs agents' approvals and the action server verifies them with this key;
# both are started here, so one key per machine serves both (docs/security.md).
if [ -z "${AGENT_APPROVAL_KEY:-}" ]; then
  AGENT_APPROVAL_KEY=$(secret_file agent-approval-key)
fi
export AGENT_APPROVAL_KEY

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for() {  # wait_for <url> <what>
  .venv-bot/bin/python -c "import sys; from scripts.stack import wait_http; wait_http(sys.argv[1], 300)" "$1" \
    || { echo "run: $2 did not come up; see $log/" >&2; exit 1; }
}

.venv-bot/bin/python -m bot.server.actions --actions bot.actions --port "$ACTION_PORT" >>"$log/actions.log" 2>&1 &
pids+=($!)
echo "run: action server on $ACTION_INTERFACE:$ACTION_PORT, for Rasa only (log: $log/actions.log)" >&2

if [ "$mode" = shell ]; then
  .venv-bot/bin/rasa shell --model "$model" --endpoints "$endpoints" --conversation-id "$DEMO_SENDER"
  exit
fi

if [ -z "${RASA_TOKEN:-}" ]; then
  # Rasa's API never runs without a token (CVE-2024-49375); make one for this machine.
  RASA_TOKEN=$(secret_file rasa-token)
fi
export RASA_TOKEN
.venv-bot/bin/python -m bot.server run --model "$served" --endpoints "$endpoints" --credentials credentials.yml \
  --enable-api --auth-token="$RASA_TOKEN" --interface "$RASA_INTERFACE" --port "$RASA_PORT" \
  >>"$log/rasa.log" 2>&1 &
pids+=($!)
echo "run: Rasa on $RASA_INTERFACE:$RASA_PORT (log: $log/rasa.log); loading the model..." >&2

local_line=0
if [ -z "${LINE_CHANNEL_SECRET:-}" ] || [ -z "${LINE_CHANNEL_ACCESS_TOKEN:-}" ]; then
  # No LINE credentials: the LINE platform is emulated on this machine, with this
  # machine's own random channel secret and access token.
  local_line=1
  LINE_CHANNEL_SECRET=$(secret_file demo-line-channel-secret)
  LINE_CHANNEL_ACCESS_TOKEN=$(secret_file demo-line-access-token)
  export LINE_CHANNEL_SECRET LINE_CHANNEL_ACCESS_TOKEN
  export LINE_API_BASE_URL=http://127.0.0.1:$EMULATOR_PORT LINE_DATA_API_BASE_URL=http://127.0.0.1:$EMULATOR_PORT
fi
local_slack=0
if [ -z "${SLACK_BOT_TOKEN:-}" ]; then
  # No Slack credentials: the Slack workspace is emulated on this machine (agents: 佐藤 花子, Alex Kim).
  local_slack=1
  SLACK_BOT_TOKEN=$(secret_file demo-slack-bot-token xoxb-local-)
  SLACK_SIGNING_SECRET=$(secret_file demo-slack-signing-secret)
  export SLACK_BOT_TOKEN SLACK_SIGNING_SECRET
  export SLACK_API_BASE_URL=http://127.0.0.1:$SLACK_EMULATOR_PORT/api/ SLACK_HANDOFF_CHANNEL=C0HANDOFF1
  .venv-devkit/bin/python -m devkit.emulators.slack_api --host 127.0.0.1 --port "$SLACK_EMULATOR_PORT" \
    --token "$SLACK_BOT_TOKEN" --channel "$SLACK_HANDOFF_CHANNEL" >>"$log/slack-emulator.log" 2>&1 &
  pids+=($!)
  echo "run: no Slack credentials: Slack API calls go to the local emulator on 127.0.0.1:$SLACK_EMULATOR_PORT" >&2
fi
# The gateway: on all interfaces only for `serve` with a real LINE channel (LINE must
# reach it); the demo keeps it on BIND_HOST (loopback).
if [ "$mode" = serve ] && [ $local_line = 0 ]; then
  gateway_host=${GATEWAY_INTERFACE:-0.0.0.0}
else
  gateway_host=${GATEWAY_INTERFACE:-$BIND_HOST}
fi
case $gateway_host in 0.0.0.0|::|"") gateway_local=127.0.0.1 ;; *) gateway_local=$gateway_host ;; esac
export PORT
HOST=$gateway_host .venv-gateway/bin/python -m gateway >>"$log/gateway.log" 2>&1 &
pids+=($!)
echo "run: gateway on $gateway_host:$PORT, POST /line/webhook (log: $log/gateway.log)" >&2
wait_for "$RASA_URL/" "Rasa"
wait_for "http://$gateway_local:$PORT/healthz" "the gateway"

if [ $local_line = 1 ]; then
  # The web workbench (docs/workbench.md): the customer's LINE beside the agents' Slack,
  # the review queue and the case charts, all through the emulators and the real gateway.
  WORKBENCH_PORT=${WORKBENCH_PORT:-8093}
  .venv-devkit/bin/python -m devkit.workbench --host "$BIND_HOST" --port "$WORKBENCH_PORT" \
    --gateway "http://$gateway_local:$PORT" --line-emulator "http://127.0.0.1:$EMULATOR_PORT" \
    --slack-emulator "http://127.0.0.1:$SLACK_EMULATOR_PORT" >>"$log/workbench.log" 2>&1 &
  pids+=($!)
  echo "run: workbench on http://$BIND_HOST:$WORKBENCH_PORT/ (customer and agent side by side, review, cases)" >&2
fi

if [ "$mode" = chat ] && [ $local_line = 1 ]; then
  echo "run: chatting as LINE user $DEMO_SENDER (デモ 太郎) through the local LINE emulator." >&2
  echo "     Try: 親子丼に別卵が付いていませんでした / my fries are missing. Numbers tap quick replies; /quit to stop." >&2
  slack_args=()
  [ $local_slack = 1 ] && slack_args=(--slack-emulator "http://127.0.0.1:$SLACK_EMULATOR_PORT")
  .venv-devkit/bin/python -m devkit.emulators.terminal_chat \
    --gateway "http://$gateway_local:$PORT" --serve-emulator "$EMULATOR_PORT" --user "$DEMO_SENDER" "${slack_args[@]}"
else
  if [ $local_line = 1 ]; then
    .venv-devkit/bin/python -m devkit.emulators.line_api --host 127.0.0.1 --port "$EMULATOR_PORT" \
      >>"$log/line-emulator.log" 2>&1 &
    pids+=($!)
    echo "run: no LINE credentials: LINE API calls go to the local emulator on 127.0.0.1:$EMULATOR_PORT" >&2
  fi
  echo "run: all services up; Ctrl-C stops them." >&2
  wait -n "${pids[@]}"
fi
