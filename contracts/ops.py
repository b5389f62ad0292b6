"""The ops API's rows: what the bot's action server (bot/server/ops.py, `GET /ops/...`) and
the gateway (gateway/ops.py, `GET /ops/cases`) answer, and what the workbench (devkit/)
reads back. Standard library only: both sides build and parse these, never each other's
code (issue 14: only `contracts` and HTTP cross the packages).

Times travel as ISO 8601 strings with their offset (UTC); in Python they are aware
datetimes. Nothing here carries a customer's text, name, phone or LINE id: case numbers,
names of problems / remedies / reasons (contracts.vocabulary), agents' names, counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar

# The path prefix of every ops route, on both servers, and the secret that opens them.
OPS_PREFIX = "/ops/"
OPS_TOKEN_ENV = "OPS_API_TOKEN"
OPS_MIN_TOKEN_LENGTH = 16

T = TypeVar("T")


def _time(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> Optional[datetime]:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"naive time {value!r}: ops times carry their offset")
    return moment


def _from(cls: Type[T], data: Mapping[str, Any], times: tuple) -> T:
    """`cls` from a dict, ignoring keys it does not know (a newer server may add some)."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in known}
    for name in times:
        if name in values:
            values[name] = _parse_time(values[name])
    return cls(**values)


def _to(row: Any, times: tuple) -> Dict[str, Any]:
    out = asdict(row)
    for name in times:
        out[name] = _time(out[name])
    return out


@dataclass
class CaseRow:
    """One case over a period (GET /ops/cases on the action server): a claim (a reported
    problem), or a handoff without a claim (a person asked for before a problem was named)."""

    case_number: str
    opened_at: datetime
    problem: str  # contracts.vocabulary PROBLEMS, or "none"
    status: str  # remedied | handed_off | open | claimed | resolved
    remedy: Optional[str] = None  # a remedy, or a combination's name (contracts.vocabulary)
    remedy_amount: Optional[int] = None
    handoff_reason: Optional[str] = None
    resolved_at: Optional[datetime] = None
    resolved_by: Optional[str] = None
    satisfaction: Optional[str] = None

    TIMES = ("opened_at", "resolved_at")

    @property
    def handed_off(self) -> bool:
        return self.handoff_reason is not None

    @property
    def minutes_to_resolution(self) -> Optional[float]:
        if self.resolved_at is None:
            return None
        return max((self.resolved_at - self.opened_at).total_seconds() / 60.0, 0.0)

    def to_dict(self) -> Dict[str, Any]:
        return _to(self, self.TIMES)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CaseRow":
        return _from(cls, data, cls.TIMES)


@dataclass
class LiveCase:
    """A case as the gateway's case store has it now (GET /ops/cases on the gateway): it
    knows claimed / unclaimed before the orders database does. Only what the workbench
    shows: no customer id, no transcript."""

    case_id: str
    status: str  # open | claimed (the gateway's case statuses)
    created_at: datetime
    agent_name: Optional[str] = None
    claimed_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    resolved_by: Optional[str] = None
    problem: Optional[str] = None  # from the case context: names, never the customer's words
    reason: Optional[str] = None

    TIMES = ("created_at", "claimed_at", "resolved_at")

    def to_dict(self) -> Dict[str, Any]:
        return _to(self, self.TIMES)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LiveCase":
        return _from(cls, data, cls.TIMES)


# What the follow-ups came to (GET /ops/follow_ups counts): "asked" counts every question
# asked, "arrived" / "not_arrived" / "no_answer" split those; "skipped_budget": the month's
# push budget was spent, so nothing was asked (counted where the push is decided).
FOLLOW_UP_OUTCOMES = ("asked", "arrived", "not_arrived", "no_answer", "skipped_budget")


@dataclass
class FollowUpRow:
    """One follow-up the bot scheduled after a remedy with a promised time."""

    case_id: str
    outcome: str  # arrived | not_arrived | no_answer | skipped_budget
    due_at: Optional[datetime] = None
    asked_at: Optional[datetime] = None
    answered_at: Optional[datetime] = None

    TIMES = ("due_at", "asked_at", "answered_at")

    def to_dict(self) -> Dict[str, Any]:
        return _to(self, self.TIMES)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FollowUpRow":
        return _from(cls, data, cls.TIMES)


@dataclass
class FollowUps:
    """GET /ops/follow_ups: the rows, and the counts the page shows (skipped ones have no
    row when the gateway alone counts them; it reports them as `skipped_budget`)."""

    rows: List[FollowUpRow] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FollowUps":
        return cls(
            [FollowUpRow.from_dict(r) for r in data.get("rows") or []],
            {str(k): int(v) for k, v in (data.get("counts") or {}).items()},
        )


@dataclass
class RecurringAlertRow:
    """A recurring problem that raised an alert: the same item or shop failing again."""

    kind: str  # e.g. same_item_at_shop | same_shop
    count: int
    raised_at: Optional[datetime] = None
    shop: Optional[str] = None
    item: Optional[str] = None  # the item's name, where the kind has one
    problem: Optional[str] = None  # contracts.vocabulary PROBLEMS, where the kind has one
    window_start: Optional[datetime] = None
    case_ids: List[str] = field(default_factory=list)

    TIMES = ("raised_at", "window_start")

    def to_dict(self) -> Dict[str, Any]:
        return _to(self, self.TIMES)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RecurringAlertRow":
        return _from(cls, data, cls.TIMES)


__all__ = [
    "CaseRow",
    "FOLLOW_UP_OUTCOMES",
    "FollowUpRow",
    "FollowUps",
    "LiveCase",
    "OPS_MIN_TOKEN_LENGTH",
    "OPS_PREFIX",
    "OPS_TOKEN_ENV",
    "RecurringAlertRow",
]
