"""`python -m gateway`: the LINE gateway on PORT (default 8080).

Environment: see config.py (LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL,
LINE_DATA_API_BASE_URL, RASA_URL, RASA_TOKEN, ACTION_SERVER_URL, REDIS_URL, SENTRY_DSN, PORT).
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings
from gateway.observability import init_sentry


def use_fast_event_loop() -> str:
    """uvloop (libuv) when available: the webhook ack shares the loop with every customer's
    Rasa and LINE calls, and uvloop's cheaper I/O keeps the ack fast under load.
    GATEWAY_EVENT_LOOP=asyncio keeps the standard loop (the bench compares both)."""
    if os.environ.get("GATEWAY_EVENT_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiohttp's client/server internals can log URLs (Rasa's token is a query parameter)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    settings = Settings.from_env()
    init_sentry(settings.sentry_dsn, environment=os.environ.get("SENTRY_ENVIRONMENT"))
    loop_kind = use_fast_event_loop()
    logging.getLogger("gateway").info(
        "LINE gateway on %s:%d (state: %s, event loop: %s)",
        settings.host,
        settings.port,
        "redis" if settings.redis_url else "memory",
        loop_kind,
    )
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
