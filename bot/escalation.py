"""When the bot stops and a person takes over at once, and why: the one place that answers
"a person now, because ..." (a reason of contracts.vocabulary.REASONS) or "no" (None).

The limits are product owners' (bot/handoff.yml `escalation:`); the reasons that need no
number are here: an intent that asks for a person, safety, payment or account questions
(`for_intent`), the remedy engine's out-of-policy answer (`for_decision`), two misses,
unclear turns and failed identity checks (`after_*`). Frustration is scored by the
dialogue policy (bot/components/frustration_policy.py, weights in bot/remedy_policy.yml), which
predicts `action_handoff` with the reason `frustration`; the exceptions that read an
intent differently inside a claim ("返金してください" is a remedy wish, not a payment
question) are the claim form's, which asks `for_intent` first.
"""

from __future__ import annotations

from typing import Optional

from bot.remedy_policy.hours import EscalationLimits
from bot.remedy_policy.types import PolicyDecision

# Intents that mean "a person, now", whatever the bot was asking.
PERSON_BY_INTENT = {
    "request_human": "request_human",
    "express_frustration": "frustration",
    "report_safety_issue": "safety",
    "ask_payment_or_account": "payment_or_account",
}
UNCLEAR_INTENTS = ("nlu_fallback", "out_of_scope")


def limits() -> EscalationLimits:
    from bot.actions import services  # the action server's loaded files (cached)

    return services.hours().escalation


def for_intent(intent: Optional[str]) -> Optional[str]:
    return PERSON_BY_INTENT.get(intent or "")


def for_decision(decision: Optional[PolicyDecision]) -> Optional[str]:
    """The engine's reason when the case is outside what the bot may do alone."""
    return decision.escalate_reason if decision is not None else None


def after_misunderstood_answer(attempts: int, reason: str) -> Optional[str]:
    """`attempts` misunderstood answers to the same question: a person after the limit."""
    return reason if attempts >= limits().misunderstood_answers else None


def after_unclear_turns(turns_in_a_row: int, intent: Optional[str]) -> Optional[str]:
    """Messages in a row with no reading: "not what we do" or "did not understand"."""
    if turns_in_a_row < limits().unclear_turns:
        return None
    return "out_of_scope" if intent == "out_of_scope" else "repeated_misunderstanding"


def after_identity_failures(failures: int) -> Optional[str]:
    return "identity_not_verified" if failures >= limits().identity_failures else None


__all__ = [
    "PERSON_BY_INTENT",
    "UNCLEAR_INTENTS",
    "after_identity_failures",
    "after_misunderstood_answer",
    "after_unclear_turns",
    "for_decision",
    "for_intent",
    "limits",
]
