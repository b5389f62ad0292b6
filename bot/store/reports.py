"""Read-only reports over the orders database, for the ops API (bot/server/ops.py) and
through it the workbench: how cases went over a period, the follow-ups, the recurring-
problem alerts. The bot owns these tables, so the queries live here, beside the models;
the rows they return are contracts.ops shapes (what crosses HTTP).

A case is a claim (a reported problem); a handoff without a claim row (a person asked for
before any problem was named) is a case too.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from sqlalchemy import MetaData, Table, inspect, select
from sqlalchemy.engine import Engine

from bot.store.models import CaseOutcome, Claim, Handoff, Remedy
from contracts.ops import FOLLOW_UP_OUTCOMES, CaseRow, FollowUpRow, FollowUps, RecurringAlertRow
from contracts.vocabulary import combination_name


def _in(moment: Optional[datetime], lo: Optional[datetime], hi: Optional[datetime]) -> bool:
    if moment is None:
        return False
    return (lo is None or moment >= lo) and (hi is None or moment < hi)


def load_cases(engine: Engine, lo: Optional[datetime] = None, hi: Optional[datetime] = None) -> List[CaseRow]:
    """The cases opened in [lo, hi) (aware datetimes; None: unbounded), newest first, as
    the database knows them: a handed-off case stays "handed_off" until its outcome says
    "resolved" (the gateway's live state, GET /ops/cases there, knows claimed/unclaimed)."""
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
        rows[number].status = "handed_off"  # until the gateway or the outcome says more
    for number, row in rows.items():
        outcome = outcomes.get(number)
        if outcome is None:
            continue
        if outcome.resolved_at is not None:
            row.resolved_at, row.status = outcome.resolved_at, "resolved"
        row.resolved_by = outcome.resolved_by or row.resolved_by
        row.satisfaction = outcome.satisfaction
    return sorted(rows.values(), key=lambda r: r.opened_at, reverse=True)


# --- tables other features add (read defensively: a database created before them, or a
# column renamed, must not break the ops API; the models are not imported for the same
# reason: the table is reflected as the database has it) ------------------------------------


def _table(engine: Engine, name: str) -> Optional[Table]:
    if not inspect(engine).has_table(name):
        return None
    return Table(name, MetaData(), autoload_with=engine)


def _aware(value: Any) -> Optional[datetime]:
    """A reflected timestamp: SQLite hands back naive UTC (bot/store/models.UTCDateTime)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _first(row: Dict[str, Any], *names: str) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return None


# answer column values -> contracts.ops FOLLOW_UP_OUTCOMES
_ANSWERS = {
    "arrived": "arrived",
    "yes": "arrived",
    "not_arrived": "not_arrived",
    "no": "not_arrived",
    "skipped_budget": "skipped_budget",
    "skipped": "skipped_budget",
    "budget": "skipped_budget",
}


def follow_ups(engine: Engine, lo: Optional[datetime] = None, hi: Optional[datetime] = None) -> FollowUps:
    """The follow-ups due in [lo, hi) and their counts by outcome (table `follow_ups`)."""
    table = _table(engine, "follow_ups")
    out = FollowUps(counts={k: 0 for k in FOLLOW_UP_OUTCOMES})
    if table is None:
        return out
    with engine.connect() as conn:
        raw = [dict(r._mapping) for r in conn.execute(select(table))]
    for r in raw:
        due = _aware(_first(r, "due_at", "asked_at"))
        if not _in(due, lo, hi) and not (due is None and lo is None and hi is None):
            continue
        asked, answered = _aware(r.get("asked_at")), _aware(r.get("answered_at"))
        answer = str(_first(r, "answer", "outcome", "status") or "").strip().lower()
        outcome = _ANSWERS.get(answer, "no_answer")
        if outcome != "skipped_budget":
            out.counts["asked"] += 1
        out.rows.append(FollowUpRow(str(_first(r, "case_number", "case_id") or "?"), outcome, due, asked, answered))
        out.counts[outcome] += 1
    out.rows.sort(key=lambda f: f.due_at.timestamp() if f.due_at else 0.0, reverse=True)
    return out


def recurring_alerts(
    engine: Engine, lo: Optional[datetime] = None, hi: Optional[datetime] = None
) -> List[RecurringAlertRow]:
    """The recurring-problem alerts raised in [lo, hi), newest first (table `recurring_alerts`)."""
    table = _table(engine, "recurring_alerts")
    if table is None:
        return []
    with engine.connect() as conn:
        raw = [dict(r._mapping) for r in conn.execute(select(table))]
    alerts = []
    for r in raw:
        raised = _aware(_first(r, "raised_at", "created_at", "updated_at", "window_start"))
        if not _in(raised, lo, hi) and not (raised is None and lo is None and hi is None):
            continue
        cases = _first(r, "case_ids", "cases", "case_numbers")
        if isinstance(cases, str):
            try:
                cases = json.loads(cases)
            except ValueError:
                cases = [c.strip() for c in cases.split(",") if c.strip()]
        try:
            count = int(_first(r, "count", "claims", "claim_count") or len(cases or []))
        except (TypeError, ValueError):
            count = len(cases or [])
        alerts.append(
            RecurringAlertRow(
                kind=str(r.get("kind") or "?"),
                count=count,
                raised_at=raised,
                shop=_first(r, "shop", "shop_name") or None,
                item=_first(r, "item", "item_name", "sku") or None,
                problem=r.get("problem") or None,
                window_start=_aware(r.get("window_start")),
                case_ids=[str(c) for c in cases or []],
            )
        )
    alerts.sort(key=lambda a: a.raised_at.timestamp() if a.raised_at else 0.0, reverse=True)
    return alerts


__all__ = ["follow_ups", "load_cases", "recurring_alerts"]
