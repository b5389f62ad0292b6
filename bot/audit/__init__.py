"""The quality audit of closed cases, bot turns and agent turns alike (issue 17).

    from bot.audit import audit_period
    result = audit_period(engine, start, end)   # every case closed in [start, end)

Patterns and their words are the product owners' (bot/audit.yml, bot/audit/patterns.py);
the detectors are bot/audit/findings.py, the turns bot/audit/transcript.py (kept per case
by the action server in `case_transcripts`), the weekly report bot/audit/report.py
(`make audit-report`). Findings are contracts.audit.Finding, so the workbench can read
them as JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional

from sqlalchemy.engine import Engine

from bot.audit.cases import closed_cases
from bot.audit.findings import AuditCase, audit_case
from bot.audit.patterns import AuditPatterns, AuditPatternsError, load_patterns
from bot.remedy_policy.hours import HandoffHours
from contracts.audit import PATTERNS, Finding


@dataclass(frozen=True)
class AuditedCase:
    """A case the audit read: when it closed, its language, how many findings."""

    case_id: str
    closed_at: datetime
    language: Optional[str]
    turns: int
    findings: int


@dataclass
class AuditResult:
    start: datetime
    end: datetime
    cases: List[AuditedCase] = field(default_factory=list)
    findings: List[Finding] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)  # every pattern, 0 when unseen
    without_transcript: int = 0  # closed cases with no turns kept (nothing to read)
    turns: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)  # case -> turns (for reports)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON form (no turns: the findings carry the turns that show them)."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cases": [{**c.__dict__, "closed_at": c.closed_at.isoformat()} for c in self.cases],
            "findings": [f.to_dict() for f in self.findings],
            "counts": dict(self.counts),
            "without_transcript": self.without_transcript,
        }


def audit_period(
    engine: Engine,
    start: datetime,
    end: datetime,
    patterns: Optional[AuditPatterns] = None,
    hours: Optional[HandoffHours] = None,
) -> AuditResult:
    """Audits every case closed in [start, end) (aware datetimes)."""
    patterns = patterns or load_patterns()
    result = AuditResult(start=start, end=end)
    counts: Counter = Counter()
    for case in closed_cases(engine, start, end):
        found = audit_case(case, patterns, hours)
        result.findings += found
        counts.update(f.pattern for f in found)
        result.cases.append(AuditedCase(case.case_id, case.closed_at, case.language, len(case.turns), len(found)))
        result.turns[case.case_id] = [dict(t) for t in case.turns]
        if not case.turns:
            result.without_transcript += 1
    result.counts = {name: counts.get(name, 0) for name in PATTERNS}
    return result


__all__ = [
    "AuditCase",
    "AuditPatterns",
    "AuditPatternsError",
    "AuditResult",
    "AuditedCase",
    "audit_case",
    "audit_period",
    "load_patterns",
]
