"""`python -m bot.server.actions`: the action server (bot/actions) that only Rasa may call.

`rasa run actions` (rasa_sdk's CLI) binds every interface and runs any action for anyone
who can reach the port: a hand-made tracker posted to /webhook could apply a remedy. This
entrypoint builds the same Sanic app (rasa_sdk.endpoint.create_app) and adds two doors:

- it binds ACTION_INTERFACE (default 127.0.0.1; the containers set 0.0.0.0 because their
  network is private), port ACTION_PORT (default 5055);
- every request except GET /health must carry `Authorization: Bearer <ACTION_SERVER_TOKEN>`
  (Rasa sends it from endpoints.yml's `action_endpoint.headers`), compared in constant
  time; otherwise 401 before any action runs, and one log line that names the path and
  the caller's address, never the presented value.

/ops/* (bot/server/ops.py, read-only reports for the workbench) takes OPS_API_TOKEN instead,
and only it: Rasa's secret does not open /ops, the ops token runs no action.

/health stays open: the gateway's /healthz, the Docker health check and the Kubernetes
probes call it, and it answers only {"status": "ok"}.

Without ACTION_SERVER_TOKEN (or with one shorter than 16 characters) it refuses to start.

    ACTION_SERVER_TOKEN=... .venv-bot/bin/python -m bot.server.actions [--port N] [--interface H]
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from typing import TYPE_CHECKING, Iterable, List, Optional, Union

if TYPE_CHECKING:
    from sanic import Sanic

logger = logging.getLogger("bot.server.actions")

TOKEN_ENV = "ACTION_SERVER_TOKEN"
HEADER = "Authorization"
SCHEME = "Bearer"
MIN_TOKEN_LENGTH = 16
DEFAULT_INTERFACE = "127.0.0.1"
DEFAULT_PORT = 5055
# What stays reachable without the secret (health checks only; it reveals nothing).
OPEN_PATHS = frozenset({"/health"})
EX_CONFIG = 64  # the exit status of deploy/rasa-entrypoint.sh without its token, too


def authorized(header_value: Optional[str], token: str) -> bool:
    """True when `header_value` is exactly "Bearer <token>" (constant-time comparison)."""
    if not token or not header_value:
        return False
    scheme, _, presented = header_value.partition(" ")
    if scheme.lower() != SCHEME.lower():
        return False
    # compare_digest on bytes: no early exit that would leak how much of the secret matched
    return hmac.compare_digest(presented.strip().encode("utf-8"), token.encode("utf-8"))


def check_token(token: Optional[str]) -> str:
    """The token to serve with, or SystemExit naming the variable (never its value)."""
    if not token:
        raise SystemExit(
            f"action server: {TOKEN_ENV} is empty; refusing to run actions for "
            "anyone who can reach the port (Rasa sends it, see endpoints.yml)"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise SystemExit(
            f"action server: {TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters; use e.g. `openssl rand -hex 32`"
        )
    return token


def create_app(token: str, actions_package: str = "bot.actions", open_paths: Iterable[str] = OPEN_PATHS) -> "Sanic":
    """rasa_sdk's app (same routes, same executor) behind the shared-secret check."""
    from rasa_sdk.endpoint import create_app as sdk_create_app
    from sanic import response

    token = check_token(token)
    opened = frozenset(open_paths)
    # No CORS origins: only Rasa calls this server, never a browser.
    app = sdk_create_app(actions_package, cors_origins=None)
    from bot.server import ops  # the ops API (bot/server/ops.py): its own routes and secret

    ops.register(app)

    @app.middleware("request")
    async def require_shared_secret(request):  # type: ignore[no-untyped-def]
        if request.path in opened and request.method in ("GET", "HEAD"):
            return None
        if ops.is_ops_path(request.path):
            return ops.refusal(request)  # OPS_API_TOKEN only: Rasa's secret never opens /ops
        presented = request.headers.get(HEADER)
        if authorized(presented, token):
            return None
        logger.warning(
            "refused %s %s from %s: %s",
            request.method,
            request.path,
            request.ip or "?",
            "no secret" if not presented else "wrong secret",
        )
        return response.json({"error": "unauthorized"}, status=401)

    return app


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from rasa_sdk import utils

    parser = argparse.ArgumentParser(
        prog="python -m bot.server.actions", description="the action server, for Rasa only"
    )
    parser.add_argument("--actions", default="bot.actions", help="the actions package")
    parser.add_argument(
        "--interface",
        default=os.environ.get("ACTION_INTERFACE") or DEFAULT_INTERFACE,
        help=f"address to bind (ACTION_INTERFACE, default {DEFAULT_INTERFACE})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("ACTION_PORT") or DEFAULT_PORT),
        help=f"port (ACTION_PORT, default {DEFAULT_PORT})",
    )
    utils.add_logging_level_option_arguments(parser)
    utils.add_logging_file_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Union[int, None]:
    args = parse_args(argv)
    try:
        token = check_token(os.environ.get(TOKEN_ENV))
    except SystemExit as refused:
        print(refused, file=sys.stderr)
        return EX_CONFIG

    # The same logging set-up as `rasa run actions` (rasa_sdk/__main__.py).
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.plugin import plugin_manager

    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel, args.logging_config_file
    )
    utils.update_sanic_log_level()

    app = create_app(token, args.actions)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("action server on http://%s:%d (Rasa only: %s required)", args.interface, args.port, TOKEN_ENV)
    app.run(args.interface, args.port, workers=utils.number_of_sanic_workers())
    return None


if __name__ == "__main__":
    sys.exit(main())
