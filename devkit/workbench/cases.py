"""How cases went, over a period: read from the orders database (bot/store: claims,
remedies, handoffs, case_outcomes) and, when REDIS_URL is set, the gateway's live case
state (gateway/core/cases.py), which knows claimed/unclaimed before the DB does.

A case is a claim (a reported problem); a handoff without a claim row (a person asked for
before any problem was named) is a case too.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from bot.store.models import CaseOutcome, Claim, Handoff, Remedy
from contracts.vocabulary import combination_name, combination_parts, not_fixes

TOKYO = ZoneInfo("Asia/Tokyo")
# A coupon or store credit is not a fix for the order (DESIGN: "a fixed discount is not a
# remedy"); everything else sends, re-makes, replaces, refunds or cancels.
# Remedies that do not fix the problem (a coupon for later), as the contract names them:
# store credit is paid now and counts as a fix, like in the policy.
COUPON_KINDS = tuple(sorted(not_fixes()))
# Buckets for the time-to-resolution histogram: (upper bound in minutes, label).
TIME_BUCKETS: Tuple[Tuple[float, str], ...] = (
    (1, "<1 min"),
    (5, "1–5 min"),
    (15, "5–15 min"),
    (60, "15–60 min"),
    (240, "1–4 h"),
    (1440, "4–24 h"),
    (float("inf"), ">1 day"),
)


@dataclass
class CaseRow:
    case_number: str
    opened_at: datetime
    problem: str
    status: str  # remedied | handed_off | open | claimed | resolved
    remedy: Optional[str] = None  # a remedy, or a combination's name (contracts.vocabulary)
    remedy_amount: Optional[int] = None
    handoff_reason: Optional[str] = None
    resolved_at: Optional[datetime] = None
    resolved_by: Optional[str] = None
    satisfaction: Optional[str] = None

    @property
    def handed_off(self) -> bool:
        return self.handoff_reason is not None

    @property
    def minutes_to_resolution(self) -> Optional[float]:
        if self.resolved_at is None:
            return None
        return max((self.resolved_at - self.opened_at).total_seconds() / 60.0, 0.0)


@dataclass
class Summary:
    cases: List[CaseRow]
    by_problem: Counter = field(default_factory=Counter)
    remedies: Counter = field(default_factory=Counter)
    handoff_reasons: Counter = field(default_factory=Counter)
    satisfaction: Counter = field(default_factory=Counter)
    bot_minutes: List[float] = field(default_factory=list)
    agent_minutes: List[float] = field(default_factory=list)

    @property
    def handed_off(self) -> int:
        return sum(1 for c in self.cases if c.handed_off)

    @property
    def coupon_count(self) -> int:
        return sum(n for kind, n in self.remedies.items() if kind in COUPON_KINDS)

    @property
    def real_remedy_count(self) -> int:
        return sum(n for kind, n in self.remedies.items() if kind not in COUPON_KINDS)


def period(
    preset: Optional[str], start: Optional[str], end: Optional[str], today: Optional[datetime] = None
) -> Tuple[Optional[datetime], Optional[datetime], str, str]:
    """(from, to) as aware datetimes for the query, [from, to); and the dates to show in
    the form. Dates are Japan days; a preset ("7", "30", "all") wins over the dates."""
    now = (today or datetime.now(timezone.utc)).astimezone(TOKYO)
    if preset in ("7", "30"):
        first = (now - timedelta(days=int(preset) - 1)).date()
        return (datetime.combine(first, datetime.min.time(), TOKYO), None, first.isoformat(), "")
    if preset == "all":
        return None, None, "", ""

    def day(value: Optional[str]) -> Optional[datetime]:
        try:
            return datetime.combine(datetime.strptime(value or "", "%Y-%m-%d").date(), datetime.min.time(), TOKYO)
        except ValueError:
            return None

    lo, hi = day(start), day(end)
    if lo is None and hi is None and not start and not end:
        first = (now - timedelta(days=29)).date()  # the default view: the last 30 days
        return datetime.combine(first, datetime.min.time(), TOKYO), None, first.isoformat(), ""
    return (
        lo,
        hi + timedelta(days=1) if hi else None,
        lo.date().isoformat() if lo else "",
        hi.date().isoformat() if hi else "",
    )


def _in(moment: Optional[datetime], lo: Optional[datetime], hi: Optional[datetime]) -> bool:
    if moment is None:
        return False
    return (lo is None or moment >= lo) and (hi is None or moment < hi)


def _utc(ts: Optional[float]) -> Optional[datetime]:
    return datetime.fromtimestamp(ts, timezone.utc) if ts else None


def load_cases(
    engine: Engine, live_cases: Iterable[Any], lo: Optional[datetime], hi: Optional[datetime]
) -> List[CaseRow]:
    """The cases opened in [lo, hi), newest first. `live_cases` are
    gateway.core.cases.Case objects (empty without Redis)."""
    live = {c.case_id: c for c in live_cases}
    rows: Dict[str, CaseRow] = {}
    if not inspect(engine).has_table(Claim.__tablename__):
        return []  # the action server creates the tables on its first use: no case yet
    with engine.connect() as conn:
        claims = conn.execute(select(Claim.id, Claim.case_number, Claim.problem, Claim.status, Claim.created_at)).all()
        # A case may have several remedy rows (a combination an agent applied: one per part).
        remedies: Dict[int, List[Any]] = {}
        for r in conn.execute(
            select(Remedy.claim_id, Remedy.kind, Remedy.amount, Remedy.applied_at).order_by(Remedy.id)
        ):
            remedies.setdefault(r.claim_id, []).append(r)
        handoffs: Dict[str, Any] = {}
        for h in conn.execute(
            select(Handoff.case_number, Handoff.reason, Handoff.context, Handoff.created_at).order_by(
                Handoff.created_at
            )
        ):
            handoffs.setdefault(h.case_number, h)  # the first handoff of a case says why
        outcomes = {
            o.case_number: o
            for o in conn.execute(
                select(
                    CaseOutcome.case_number, CaseOutcome.resolved_at, CaseOutcome.resolved_by, CaseOutcome.satisfaction
                )
            )
        }
    for c in claims:
        if not _in(c.created_at, lo, hi):
            continue
        row = CaseRow(c.case_number, c.created_at, c.problem, c.status)
        parts = remedies.get(c.id)
        if parts:
            # a combination reads as its name ("send_item+refund_delivery_fee"), its amount the sum
            row.remedy = combination_name([p.kind for p in parts])
            row.remedy_amount = sum(p.amount for p in parts)
            row.resolved_at = min(p.applied_at for p in parts)  # the bot fixed it then (unless handed off)
        rows[c.case_number] = row
    claim_numbers = {c.case_number for c in claims}
    for number, h in handoffs.items():
        if number not in rows:
            if number in claim_numbers or not _in(h.created_at, lo, hi):
                continue
            problem = (h.context or {}).get("problem") or "none"
            rows[number] = CaseRow(number, h.created_at, problem, "handed_off")
        rows[number].handoff_reason = h.reason
        # a handed-off case ends when an agent resolves it, even if a remedy was approved
        rows[number].resolved_at = None
        rows[number].status = "handed_off"  # until Redis or the outcome says more
    for number, case in live.items():
        row = rows.get(number)
        if row is None:  # the gateway knows a case the DB does not (another DB, or lost)
            opened = _utc(case.created_at)
            if not _in(opened, lo, hi):
                continue
            row = rows[number] = CaseRow(
                number,
                opened,
                (case.context or {}).get("problem") or "none",
                case.status,
                handoff_reason=(case.context or {}).get("reason") or "?",
            )
        if row.handed_off:
            row.status = case.status  # open / claimed / resolved, as the agents see it
            if case.resolved_at and row.resolved_at is None:
                row.resolved_at, row.resolved_by = _utc(case.resolved_at), case.resolved_by
    for number, row in rows.items():
        outcome = outcomes.get(number)
        if outcome is None:
            continue
        if outcome.resolved_at is not None:
            row.resolved_at, row.status = outcome.resolved_at, "resolved"
        row.resolved_by = outcome.resolved_by or row.resolved_by
        row.satisfaction = outcome.satisfaction
    return sorted(rows.values(), key=lambda r: r.opened_at, reverse=True)


def summarize(cases: List[CaseRow]) -> Summary:
    s = Summary(cases)
    for c in cases:
        s.by_problem[c.problem] += 1
        for kind in combination_parts(c.remedy):
            s.remedies[kind] += 1  # each part of a combination counts as the remedy it is
        if c.handed_off:
            s.handoff_reasons[c.handoff_reason] += 1
        minutes = c.minutes_to_resolution
        if minutes is not None:
            (s.agent_minutes if c.handed_off else s.bot_minutes).append(minutes)
        # the satisfaction question follows an agent's Resolve
        if (c.handed_off and c.resolved_at is not None) or c.satisfaction:
            s.satisfaction[c.satisfaction or "no_answer"] += 1
    return s


def histogram(minutes: List[float]) -> List[Tuple[str, int]]:
    counts = [0] * len(TIME_BUCKETS)
    for m in minutes:
        counts[next(i for i, (upper, _) in enumerate(TIME_BUCKETS) if m < upper)] += 1
    return [(label, n) for (_, label), n in zip(TIME_BUCKETS, counts)]


def median(minutes: List[float]) -> Optional[float]:
    return statistics.median(minutes) if minutes else None


__all__ = ["COUPON_KINDS", "CaseRow", "Summary", "TOKYO", "histogram", "load_cases", "median", "period", "summarize"]
