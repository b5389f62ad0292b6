#!/usr/bin/env bash
# Checks the deployment files (Dockerfile, .dockerignore, docker-compose.yml, deploy/)
# with what runs without a Docker engine:
#   - hadolint (Dockerfile lint), check-jsonschema (Compose Specification schema) and
#     kubernetes-validate (Kubernetes JSON schemas, strict), all offline, installed from
#     deploy/check-tools.lock into their own throwaway environment var/deploy-tools;
#   - `docker compose config` (or docker-compose), when a compose client is installed;
#   - the structural and behavioural tests in tests/deploy (targets, non-root, lock files,
#     health checks, no published Rasa port, probes, Ingress paths, the Redis endpoints
#     file read by Rasa's own code against a real redis-server), which run the tools above.
# Usage: scripts/check_deploy.sh [--tools]   (--tools: only install the tools)
set -euo pipefail
cd "$(dirname "$0")/.."

tools=var/deploy-tools
lock=deploy/check-tools.lock
if ! python3 -m uv --version >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -x "$tools/bin/python" ] || [ "$(cat "$tools/.lock-sha256" 2>/dev/null)" != "$want" ]; then
  echo "check_deploy: installing the check tools into $tools" >&2
  [ -x "$tools/bin/python" ] || python3 -m uv venv --quiet --python 3.10 "$tools"
  python3 -m uv pip sync --quiet --python "$tools/bin/python" "$lock"
  echo "$want" > "$tools/.lock-sha256"
fi
[ "${1:-}" = --tools ] && exit 0

echo "check_deploy: $("$tools/bin/hadolint" --version); kubernetes-validate $("$tools/bin/kubernetes-validate" --version 2>&1 | tail -1); check-jsonschema $("$tools/bin/python" -c 'import importlib.metadata as m; print(m.version("check-jsonschema"))')" >&2

# A compose client parses and interpolates the file like `docker compose up` would. Only
# the client is needed (no engine). Dummy values stand in for the secrets of .env.
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
  env_file=$(mktemp)
  trap 'rm -f "$env_file"' EXIT
  printf '%s\n' RASA_TOKEN=check ACTION_SERVER_TOKEN=check AGENT_APPROVAL_KEY=check POSTGRES_PASSWORD=check LINE_CHANNEL_SECRET=check \
    LINE_CHANNEL_ACCESS_TOKEN=check > "$env_file"
  "${compose[@]}" --env-file "$env_file" -f docker-compose.yml config --quiet
  echo "check_deploy: ${compose[*]} config: ok" >&2
else
  echo "check_deploy: no compose client here (docker compose plugin or docker-compose);" \
       "the compose file is checked against the Compose Specification schema instead" >&2
fi

./scripts/bootstrap.sh
.venv-devkit/bin/python -m pytest tests/deploy -q "$@"
