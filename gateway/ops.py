"""The gateway's ops API, for the workbench (devkit/workbench), which reads it over HTTP and
imports no gateway code (issue 14). Owner: the gateway. Read-only:

    GET /ops/cases          the handoff cases open or claimed right now, from the case store
                            (gateway/core/cases.py): it knows claimed / unclaimed before the
                            orders database does. Rows are contracts.ops.LiveCase: case id,
                            status, agent, times, the problem and handoff reason by name;
                            never the customer's id, words or name.
    GET /ops/follow_ups     per quota month, follow-ups pushed and skipped because the push
                            budget was spent (gateway/follow_ups.py's counters).

The door: OPS_API_TOKEN as `Authorization: Bearer ...` (constant-time comparison, at least
16 characters; the same secret as the bot's /ops routes), and only from loopback or a
private network (the gateway itself may face the internet for LINE's webhooks; its ops
route never does). Without the token the route answers 503; a refusal is logged with the
path and the caller, never the presented value.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional
from zoneinfo import ZoneInfo

from aiohttp import web

from contracts.ops import OPS_MIN_TOKEN_LENGTH, OPS_PREFIX, OPS_TOKEN_ENV, LiveCase

log = logging.getLogger(__name__)

OPEN_STATUSES = ("open", "claimed")
QUOTA_ZONE = ZoneInfo("Asia/Tokyo")  # LINE's monthly quota resets in Japan time


def authorized(header_value: Optional[str], token: Optional[str]) -> bool:
    """True when `header_value` is exactly "Bearer <token>" (constant-time comparison)."""
    if not token or len(token) < OPS_MIN_TOKEN_LENGTH or not header_value:
        return False
    scheme, _, presented = header_value.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8"), token.encode("utf-8"))


def _near(remote: Optional[str]) -> bool:
    """Loopback or a private network (the workbench's machine, a compose network)."""
    try:
        address = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _utc(ts: Optional[float]) -> Optional[datetime]:
    return datetime.fromtimestamp(ts, timezone.utc) if ts else None


def live_case(case: Any) -> LiveCase:
    """A gateway.core.cases.Case as the workbench sees it (nothing else of it leaves)."""
    context = case.context or {}
    problem, reason = context.get("problem"), context.get("reason")
    return LiveCase(
        case_id=case.case_id,
        status=case.status,
        created_at=_utc(case.created_at) or datetime.now(timezone.utc),
        agent_name=case.agent_name,
        claimed_at=_utc(case.claimed_at),
        resolved_at=_utc(case.resolved_at),
        resolved_by=case.resolved_by,
        problem=problem if isinstance(problem, str) else None,
        reason=reason if isinstance(reason, str) else None,
    )


def _usable(token: Optional[str]) -> Optional[str]:
    if token is not None and len(token) < OPS_MIN_TOKEN_LENGTH:
        log.warning("%s is shorter than %d characters: the ops routes stay off", OPS_TOKEN_ENV, OPS_MIN_TOKEN_LENGTH)
        return None
    return token or None


def _refusal(request: web.Request, token: Optional[str]) -> Optional[web.Response]:
    """None when the request may read; else the answer (503 off, 401 refused)."""
    if not token:
        return web.json_response({"error": f"the ops API is off ({OPS_TOKEN_ENV} is not set)"}, status=503)
    presented = request.headers.get("Authorization")
    if _near(request.remote) and authorized(presented, token):
        return None
    log.warning(
        "refused GET %s from %s: %s",
        request.path,
        request.remote or "?",
        "not a local caller" if not _near(request.remote) else ("no ops token" if not presented else "wrong ops token"),
    )
    return web.json_response({"error": "unauthorized"}, status=401)


def cases_handler(token: Optional[str], case_store: Callable[[web.Request], Any]) -> Callable:
    """GET /ops/cases; `case_store(request)` finds the running gateway's store."""
    token = _usable(token)

    async def handler(request: web.Request) -> web.Response:
        refused = _refusal(request, token)
        if refused is not None:
            return refused
        try:
            cases: List[Any] = await case_store(request).open_cases()
        except Exception as exc:  # noqa: BLE001 - Redis down: say so, the workbench shows the DB alone
            log.warning("ops cases: case store unavailable (%s)", type(exc).__name__)
            return web.json_response({"error": "case store unavailable"}, status=503)
        rows = [live_case(c).to_dict() for c in cases if c.status in OPEN_STATUSES]
        return web.json_response({"cases": rows})

    return handler


MAX_MONTHS = 13  # the push counters live about a year (gateway/follow_ups.py COUNTER_TTL_S)


def months(lo: Optional[datetime], hi: Optional[datetime], now: Optional[datetime] = None) -> List[str]:
    """The quota months ("YYYY-MM", Japan time, as LINE's quota resets) that [lo, hi) touches,
    the newest MAX_MONTHS of them; no `lo`: the last MAX_MONTHS months."""
    end = (hi or now or datetime.now(timezone.utc)).astimezone(QUOTA_ZONE)
    if hi is not None:
        end = (hi - timedelta(microseconds=1)).astimezone(QUOTA_ZONE)  # [lo, hi): hi itself is out
    year, month = end.year, end.month
    first = lo.astimezone(QUOTA_ZONE) if lo is not None else None
    out: List[str] = []
    while len(out) < MAX_MONTHS:
        out.append(f"{year:04d}-{month:02d}")
        if first is not None and (year, month) <= (first.year, first.month):
            break
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def follow_ups_handler(token: Optional[str], follow_up_store: Callable[[web.Request], Any]) -> Callable:
    """GET /ops/follow_ups?from=&to=: per quota month, the follow-ups pushed and those
    skipped because the month's push budget was spent (gateway/follow_ups.py counts them;
    the bot's database never sees a skipped one)."""
    token = _usable(token)

    async def handler(request: web.Request) -> web.Response:
        refused = _refusal(request, token)
        if refused is not None:
            return refused
        try:
            lo, hi = (_parse(request.query.get(k)) for k in ("from", "to"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            store = follow_up_store(request)
            by_month: Dict[str, Dict[str, int]] = {m: dict(await store.counts(m)) for m in months(lo, hi)}
        except Exception as exc:  # noqa: BLE001 - Redis down: say so
            log.warning("ops follow-ups: store unavailable (%s)", type(exc).__name__)
            return web.json_response({"error": "follow-up store unavailable"}, status=503)
        return web.json_response(
            {
                "months": by_month,
                "skipped_budget": sum(c.get("skipped", 0) for c in by_month.values()),
                "pushed": sum(c.get("pushed", 0) for c in by_month.values()),
            }
        )

    return handler


def _parse(raw: Optional[str]) -> Optional[datetime]:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("from/to: an ISO 8601 time with an offset") from None
    if moment.tzinfo is None:
        raise ValueError("from/to: the time needs its offset (e.g. +09:00)")
    return moment


def register(
    app: web.Application,
    token: Optional[str],
    case_store: Callable[[web.Request], Any],
    follow_up_store: Optional[Callable[[web.Request], Any]] = None,
) -> None:
    app.router.add_get(OPS_PREFIX + "cases", cases_handler(token, case_store))
    if follow_up_store is not None:
        app.router.add_get(OPS_PREFIX + "follow_ups", follow_ups_handler(token, follow_up_store))


__all__ = ["OPEN_STATUSES", "authorized", "cases_handler", "follow_ups_handler", "live_case", "months", "register"]
