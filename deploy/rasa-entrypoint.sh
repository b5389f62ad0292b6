#!/bin/sh
# The rasa image's entrypoint: Rasa with its HTTP API on, protected by RASA_TOKEN, listening
# on 0.0.0.0:5005 inside the container (compose and Kubernetes never publish that port;
# only the gateway reaches it). The model is the one baked into /app/models.
# Rasa's API never runs without a token (CVE-2024-49375), so no token means no start.
# Rasa sends ACTION_SERVER_TOKEN to the action server with every call (endpoints file,
# `action_endpoint.headers`); without it every action would be refused, so no start either.
set -eu
if [ -z "${RASA_TOKEN:-}" ]; then
  echo "rasa-entrypoint: RASA_TOKEN is empty; refusing to start Rasa's API without a token" >&2
  exit 64
fi
if [ -z "${ACTION_SERVER_TOKEN:-}" ]; then
  echo "rasa-entrypoint: ACTION_SERVER_TOKEN is empty; the action server would refuse every action" >&2
  exit 64
fi
# deploy/endpoints.redis.yml: tracker and lock stores on Redis (shared by every Rasa replica).
# `python -m bot.server` is `rasa` with the project's measured speed-up (bot/server/speedups.py).
exec python -m bot.server run \
  --model /app/models \
  --endpoints "${RASA_ENDPOINTS:-/app/deploy/endpoints.redis.yml}" \
  --credentials /app/credentials.yml \
  --enable-api --auth-token="$RASA_TOKEN" \
  --interface 0.0.0.0 --port 5005 \
  "$@"
