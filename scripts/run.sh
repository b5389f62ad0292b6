#!/usr/bin/env bash
# The services, on one machine: devkit/run.py starts them (through devkit/stack.py, as the
# tests and the benchmarks do); see its docstring for the modes and the variables.
#   run.sh chat    (make run)   action server, Rasa, the gateway, the LINE and Slack emulators
#                               and the workbench without credentials; you chat as a LINE
#                               customer in this terminal.
#   run.sh serve   (make serve) the same services in the foreground, for a real deployment:
#                               refuses to start without the LINE and Slack credentials
#                               unless EMULATE=1.
#   run.sh shell   (make shell) Rasa's own terminal chat, no gateway (for NLU debugging).
# Every service binds 127.0.0.1 unless BIND_HOST, GATEWAY_INTERFACE, RASA_INTERFACE or
# ACTION_INTERFACE opens it; the demo's secrets are generated into $VAR_DIR (default var/).
set -euo pipefail
cd "$(dirname "$0")/.."
# devkit/run.py syncs the environments itself (after refusing a `serve` without
# credentials); only a machine without the devkit environment yet needs it first.
[ -x .venv-devkit/bin/python ] || ./scripts/bootstrap.sh
exec .venv-devkit/bin/python -m devkit.run "$@"
