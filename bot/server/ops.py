"""The bot's ops API on the action server: read-only JSON reports over the orders database
for the workbench (devkit/workbench), which reads them over HTTP instead of importing
bot.store (issue 14). Owner: the bot (it owns the tables and the queries).

    GET /ops/cases?from=&to=          how cases went (bot/store/reports.load_cases)
    GET /ops/audit?from=&to=          the quality audit (bot.audit.audit_period)
    GET /ops/follow_ups?from=&to=     follow-ups after promised times, with counts
    GET /ops/recurring_alerts?from=&to=   recurring-problem alerts

`from` / `to` are ISO 8601 times with an offset, [from, to); either may be left out.

Its own secret, OPS_API_TOKEN (`Authorization: Bearer ...`, compared in constant time, at
least 16 characters): Rasa's ACTION_SERVER_TOKEN never opens /ops, and the ops token never
runs an action (bot/server/actions.py sends every /ops path here, and only here, before its
own check). Without OPS_API_TOKEN (or with a short one) the routes answer 503 and the action
server runs as before. A path under /ops/ that is not one of the routes answers 404 before
any router sees it (so no `/ops/../webhook` reaches an action with the ops token).
Refusals are logged with path and caller, never the presented value.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from bot.server.actions import authorized
from contracts.ops import OPS_MIN_TOKEN_LENGTH, OPS_PREFIX, OPS_TOKEN_ENV

if TYPE_CHECKING:
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse

logger = logging.getLogger("bot.server.ops")

ROUTES = ("cases", "audit", "follow_ups", "recurring_alerts")
_APP_TOKEN = "ops_api_token"  # where register() keeps the token (app.ctx)
_APP_ENGINE = "ops_engine"


def is_ops_path(path: str) -> bool:
    """Every path that this module answers or refuses (none of them reaches an action)."""
    return path == OPS_PREFIX.rstrip("/") or path.startswith(OPS_PREFIX)


def usable_token(token: Optional[str]) -> Optional[str]:
    """The token, or None when it is missing or too short to be a secret."""
    if not token:
        return None
    if len(token) < OPS_MIN_TOKEN_LENGTH:
        logger.warning(
            "%s is shorter than %d characters: the ops API stays off (e.g. `openssl rand -hex 32`)",
            OPS_TOKEN_ENV,
            OPS_MIN_TOKEN_LENGTH,
        )
        return None
    return token


def refusal(request: "Request") -> Optional["HTTPResponse"]:
    """None when `request` may reach an ops route; else the answer (404, 503 or 401)."""
    from sanic import response

    if request.method not in ("GET", "HEAD") or request.path not in {OPS_PREFIX + r for r in ROUTES}:
        return response.json({"error": "not found"}, status=404)
    token = getattr(request.app.ctx, _APP_TOKEN, None)
    if not token:
        return response.json({"error": f"the ops API is off ({OPS_TOKEN_ENV} is not set)"}, status=503)
    presented = request.headers.get("Authorization")
    if authorized(presented, token):
        return None
    logger.warning(
        "refused %s %s from %s: %s",
        request.method,
        request.path,
        request.ip or "?",
        "no ops token" if not presented else "wrong ops token",
    )
    return response.json({"error": "unauthorized"}, status=401)


def _period(request: "Request") -> Tuple[Optional[datetime], Optional[datetime]]:
    def one(name: str) -> Optional[datetime]:
        raw = request.args.get(name)
        if not raw:
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{name}: an ISO 8601 time with an offset") from None
        if moment.tzinfo is None:
            raise ValueError(f"{name}: the time needs its offset (e.g. +09:00)")
        return moment

    return one("from"), one("to")


def _engine(app: "Sanic") -> Any:
    engine = getattr(app.ctx, _APP_ENGINE, None)
    if engine is None:
        from bot.store.db import database_url, init_db, make_engine

        engine = make_engine(database_url())
        # as the actions' first use does (bot/actions/services.py): the tables exist, also
        # those added since the database was made, so a report reads empty, not an error
        init_db(engine)
        setattr(app.ctx, _APP_ENGINE, engine)
    return engine


# The audit's period when the request leaves one end open (bot.audit wants both ends).
AUDIT_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
CONTEXT_TURNS = 1  # turns sent before and after each turn a finding names


def _audit(engine: Any, lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, Any]:
    """bot.audit's result as JSON (its findings are contracts.audit.Finding), with
    `transcripts`: for each case with a finding, the turns around the ones the findings
    name (scrubbed like the findings: no phone numbers, no e-mail addresses), so the
    workbench can show each finding in its place; never a whole transcript."""
    from bot.audit import audit_period
    from bot.audit.findings import scrub

    result = audit_period(engine, lo or AUDIT_EARLIEST, hi or datetime.now(timezone.utc) + timedelta(days=1))
    body = result.to_dict()
    wanted: Dict[str, set] = {}
    for finding in result.findings:
        around = range(finding.turn_index - CONTEXT_TURNS, finding.turn_index + CONTEXT_TURNS + 1)
        wanted.setdefault(finding.case_id, set()).update(around)
    transcripts: Dict[str, Any] = {}
    for case_id, indexes in wanted.items():
        turns = (getattr(result, "turns", None) or {}).get(case_id) or []
        transcripts[case_id] = [
            {
                "role": turn.get("role"),
                "text": scrub(str(turn.get("text") or "")),
                "time": turn.get("time"),
                "agent_name": turn.get("agent_name"),
            }
            if i in indexes
            else None  # left out: the page shows a gap
            for i, turn in enumerate(turns)
        ]
    body["transcripts"] = transcripts
    return body


def _cases(engine: Any, lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, Any]:
    from bot.store.reports import load_cases

    return {"cases": [c.to_dict() for c in load_cases(engine, lo, hi)]}


def _follow_ups(engine: Any, lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, Any]:
    from bot.store.reports import follow_ups

    return follow_ups(engine, lo, hi).to_dict()


def _recurring_alerts(engine: Any, lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, Any]:
    from bot.store.reports import recurring_alerts

    return {"alerts": [a.to_dict() for a in recurring_alerts(engine, lo, hi)]}


def _route(report: Callable[[Any, Optional[datetime], Optional[datetime]], Dict[str, Any]]) -> Callable:
    async def handler(request: "Request") -> "HTTPResponse":
        from sanic import response

        # bot/server/actions.py has already sent this request through refusal(); check again
        # here so that a route can never be reached by a path that skipped the gate
        refused = refusal(request)
        if refused is not None:
            return refused
        try:
            lo, hi = _period(request)
        except ValueError as error:
            return response.json({"error": str(error)}, status=400)
        try:
            # the queries are synchronous (SQLAlchemy): off the event loop, where actions run
            body = await asyncio.to_thread(lambda: report(_engine(request.app), lo, hi))
        except Exception as error:  # noqa: BLE001 - a report that fails says why, not a 500 page
            logger.warning("ops %s failed: %s", request.path, type(error).__name__)
            return response.json({"error": type(error).__name__}, status=503)
        return response.json(body)

    handler.__name__ = f"ops_{report.__name__.strip('_')}"
    return handler


def register(app: "Sanic", token: Optional[str] = None) -> None:
    """Adds the /ops routes to the action server's app; `token` defaults to OPS_API_TOKEN."""
    setattr(app.ctx, _APP_TOKEN, usable_token(token if token is not None else os.environ.get(OPS_TOKEN_ENV)))
    for name, report in (
        ("cases", _cases),
        ("audit", _audit),
        ("follow_ups", _follow_ups),
        ("recurring_alerts", _recurring_alerts),
    ):
        app.add_route(_route(report), OPS_PREFIX + name, methods=["GET"], name=f"ops_{name}")

    @app.listener("after_server_stop")
    async def _dispose(app: "Sanic", _loop: Any) -> None:  # type: ignore[no-untyped-def]
        engine = getattr(app.ctx, _APP_ENGINE, None)
        if engine is not None:
            engine.dispose()


__all__ = ["ROUTES", "is_ops_path", "refusal", "register", "usable_token"]
