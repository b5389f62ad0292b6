"""How cases went, over a period: the case rows come from the bot's ops API (the action
server's `GET /ops/cases`, built from the orders database by bot/store/reports.py) and the
live case state from the gateway's (`GET /ops/cases`, its case store), which knows
claimed/unclaimed before the database does; both as contracts.ops shapes, over HTTP
(devkit/workbench/ops_client.py). Here: merging the two, the period, the summaries.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

from contracts.ops import CaseRow, LiveCase
from contracts.vocabulary import combination_parts, not_fixes

TOKYO = ZoneInfo("Asia/Tokyo")
# Remedies that do not fix the problem (a coupon for later), as the contract names them:
# store credit is paid now and counts as a fix, like in the policy (DESIGN: "a fixed
# discount is not a remedy").
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


def merge_live(
    rows: Iterable[CaseRow], live_cases: Iterable[LiveCase], lo: Optional[datetime], hi: Optional[datetime]
) -> List[CaseRow]:
    """The database's cases of [lo, hi) with the gateway's live state laid over them
    (`live_cases`: empty without Redis or without the gateway), newest first."""
    merged: Dict[str, CaseRow] = {r.case_number: r for r in rows}
    for case in live_cases:
        row = merged.get(case.case_id)
        if row is None:  # the gateway knows a case the DB does not (another DB, or lost)
            if not _in(case.created_at, lo, hi):
                continue
            row = merged[case.case_id] = CaseRow(
                case.case_id, case.created_at, case.problem or "none", case.status, handoff_reason=case.reason or "?"
            )
        if row.handed_off and row.status != "resolved":
            row.status = case.status  # open / claimed, as the agents see it
            if case.resolved_at and row.resolved_at is None:
                row.resolved_at, row.resolved_by = case.resolved_at, case.resolved_by
    return sorted(merged.values(), key=lambda r: r.opened_at, reverse=True)


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


__all__ = ["COUPON_KINDS", "CaseRow", "Summary", "TOKYO", "histogram", "median", "merge_live", "period", "summarize"]
