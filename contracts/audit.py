"""The quality audit's findings, typed once for both environments.

The bot's audit (bot/audit/, patterns in bot/audit.yml) reads every closed case, bot and
agent turns alike, and names the turn that shows each pattern; the weekly report
(`make audit-report`) and the workbench (over the ops API) read the same JSON form.
Standard library only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Mapping, Optional

from contracts.vocabulary import Label

# The patterns, in the order reports list them (the key of each in bot/audit.yml).
COUPON_FIRST = "coupon_first"  # a coupon or discount as the first or only remedy
BARE_CANT = "bare_cant"  # "we can't" with no next step
ASKED_AGAIN = "asked_again"  # asked for something the customer had already said
PASSED_AROUND = "passed_around"  # more than one handoff, or more than one agent
UNANSWERED_QUESTION = "unanswered_question"  # a question of the customer's left unanswered
SLOW_FIRST_REPLY = "slow_first_reply"  # the first human reply later than the SLA
UNSATISFIED = "unsatisfied"  # "not solved" to the satisfaction question

PATTERNS: Mapping[str, Label] = {
    COUPON_FIRST: Label("Coupon as the first or only remedy", "クーポンが最初・唯一の提案"),
    BARE_CANT: Label('A bare "can\'t" without a next step', "次の案内のない「できません」"),
    ASKED_AGAIN: Label("Asked for what the customer had already said", "お客様が伝えた内容を再度質問"),
    PASSED_AROUND: Label("Passed around (handoffs or agents)", "たらい回し（引き継ぎ・担当者が複数）"),
    UNANSWERED_QUESTION: Label("A customer's question left unanswered", "お客様の質問に未回答"),
    SLOW_FIRST_REPLY: Label("First human reply later than the SLA", "担当者の初回返信がSLA超過"),
    UNSATISFIED: Label("Not satisfied with the outcome", "解決していないとの回答"),
}

# Who said the turn a finding names.
ROLES = ("customer", "bot", "agent")


def pattern_label(name: str) -> Label:
    return PATTERNS.get(name) or Label(name.replace("_", " "), name)


@dataclass(frozen=True)
class Finding:
    """One pattern seen in one case, at one turn (its index in the case's transcript, from
    0); the turn's text is scrubbed of phone numbers and e-mail addresses."""

    case_id: str
    pattern: str  # a key of PATTERNS
    turn_index: int
    turn_text: str
    explanation: str
    role: str = "bot"  # one of ROLES: who said the turn
    speaker: Optional[str] = None  # the agent's name for an agent turn
    turn_time: Optional[str] = None  # ISO 8601 with the zone

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Finding":
        """From the JSON form; unknown keys are ignored (a newer writer may add some)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["turn_index"] = int(values.get("turn_index", 0))
        return cls(**values)


__all__ = [
    "ASKED_AGAIN",
    "BARE_CANT",
    "COUPON_FIRST",
    "Finding",
    "PASSED_AROUND",
    "PATTERNS",
    "ROLES",
    "SLOW_FIRST_REPLY",
    "UNANSWERED_QUESTION",
    "UNSATISFIED",
    "pattern_label",
]
