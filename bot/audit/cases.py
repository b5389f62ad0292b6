"""The closed cases of a period, read from the orders database for the audit.

A case is closed when it reached an end: the bot (or an agent's approval) applied its
remedy, or an agent resolved it, or the customer answered the satisfaction question. Its
closing time is the latest of those, so a case remedied on Monday and resolved by an
agent on Tuesday is Tuesday's. Read only; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.audit.findings import AuditCase
from bot.store.models import CaseOutcome, CaseTranscript, Claim, Customer, Handoff, Remedy


@dataclass
class _Ends:
    remedied_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    answered_at: Optional[datetime] = None
    satisfaction: Optional[str] = None
    names: List[str] = field(default_factory=list)

    @property
    def closed_at(self) -> Optional[datetime]:
        times = [t for t in (self.remedied_at, self.resolved_at, self.answered_at) if t is not None]
        return max(times) if times else None


def closed_cases(engine: Engine, start: datetime, end: datetime) -> List[AuditCase]:
    """The cases closed in [start, end), oldest first, with their turns (empty when no
    transcript was kept), handoff times, satisfaction answer and the customer's names."""
    ends: Dict[str, _Ends] = {}
    with Session(engine, future=True) as session:
        remedied = (
            select(Claim.case_number, func.min(Remedy.applied_at))
            .join(Remedy, Remedy.claim_id == Claim.id)
            .where(Claim.status == "remedied")
            .group_by(Claim.case_number)
            .having(and_(func.min(Remedy.applied_at) >= start, func.min(Remedy.applied_at) < end))
        )
        for number, applied_at in session.execute(remedied):
            ends.setdefault(number, _Ends()).remedied_at = applied_at
        outcomes = select(CaseOutcome).where(
            or_(
                and_(CaseOutcome.resolved_at >= start, CaseOutcome.resolved_at < end),
                and_(CaseOutcome.answered_at >= start, CaseOutcome.answered_at < end),
            )
        )
        for row in session.scalars(outcomes):
            found = ends.setdefault(row.case_number, _Ends())
            found.resolved_at, found.answered_at = row.resolved_at, row.answered_at
            found.satisfaction = row.satisfaction
        numbers = list(ends)
        if not numbers:
            return []
        # the outcome of a case remedied in the period may close it later: the latest end counts
        for row in session.scalars(select(CaseOutcome).where(CaseOutcome.case_number.in_(numbers))):
            found = ends[row.case_number]
            found.resolved_at, found.answered_at = row.resolved_at, row.answered_at
            found.satisfaction = row.satisfaction
        handoffs: Dict[str, List[datetime]] = {}
        query = select(Handoff).where(Handoff.case_number.in_(numbers)).order_by(Handoff.created_at, Handoff.id)
        for handoff in session.scalars(query):
            handoffs.setdefault(handoff.case_number, []).append(handoff.created_at)
            customer = (handoff.context or {}).get("customer") or {}
            if customer.get("display_name"):
                ends[handoff.case_number].names.append(str(customer["display_name"]))
        languages: Dict[str, str] = {}
        query = select(Claim.case_number, Customer.display_name, Customer.language).join(
            Customer, Claim.customer_id == Customer.id
        )
        for number, name, language in session.execute(query.where(Claim.case_number.in_(numbers))):
            ends[number].names.append(name)
            languages[number] = language
        turns = {
            row.case_id: list(row.turns or [])
            for row in session.scalars(select(CaseTranscript).where(CaseTranscript.case_id.in_(numbers)))
        }
    cases = []
    for number, found in ends.items():
        closed_at = found.closed_at
        if closed_at is None or not (start <= closed_at < end):
            continue
        case_turns = turns.get(number, [])
        # the customer's names (not the agents': a finding names the agent who spoke)
        names = list(found.names)
        cases.append(
            AuditCase(
                case_id=number,
                turns=case_turns,
                closed_at=closed_at,
                handoff_times=tuple(handoffs.get(number, [])),
                satisfaction=found.satisfaction,
                names=tuple(dict.fromkeys(n for n in names if n)),
                language=languages.get(number) or _language_of(case_turns),
            )
        )
    cases.sort(key=lambda c: (c.closed_at, c.case_id))
    return cases


def _language_of(turns: List[dict]) -> Optional[str]:
    """A guest's case has no customer row: the writing of their first words tells."""
    said = next((str(t.get("text") or "") for t in turns if t.get("role") == "customer"), "")
    if not said:
        return None
    return "en" if said.isascii() else "ja"
