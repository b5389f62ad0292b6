"""Recurring problems: the same item or shop failing again, one customer's Nth problem.

Counted when a claim is recorded (bot/actions/claims.py `_decision_slots`), over the
claims table, with the thresholds product owners set in bot/remedy_policy.yml
`recurring:`. Always in different orders: a customer who reports the same order twice,
or three tests of the demo order, are one problem, three orders with a problem are three.

- A shop's item (or the shop as a whole) reaching its threshold raises one operations
  alert per burst (bot/store/models.RecurringAlert): sent in the bot's answer as
  `{"ops_alert": ...}` (contracts/ops_alerts.py), which the gateway posts to Slack and
  never shows the customer.
- A customer reaching theirs is told the bot knows (the acknowledgement of the YAML) and
  the case goes to a person at once, flagged "recurring" with the earlier cases; the
  remedies the engine would offer are on the agent's card, to apply in one click.

Counting never stands in the way of the claim: a failure is logged and the claim goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

from bot.actions import services
from bot.remedy_policy.loader import RecurringRule, RecurringRules
from bot.store.repository import ProblemCase, RecurringAlertRecord
from contracts.ops_alerts import OpsAlert, alert_id

log = logging.getLogger(__name__)

SAME_ITEM_AT_SHOP = "same_item_at_shop"
SAME_SHOP = "same_shop"
# The handoff reason of a customer's Nth problem (contracts.vocabulary REASONS).
RECURRING_REASON = "recurring"
# Reasons of the engine that a customer's repetition explains better: "too many claims" is
# the same thing counted in remedies; any other reason (safety, out of policy) stays.
REPLACEABLE_REASONS = (None, "too_many_claims")


@dataclass(frozen=True)
class Repetition:
    """A customer's problems in the window: `count` orders, this case's included."""

    count: int
    days: int
    earlier_cases: Tuple[str, ...]  # one case per other order, oldest first


def _rules() -> Optional[RecurringRules]:
    return services.policy().recurring


def first_per_order(cases: Sequence[ProblemCase]) -> List[ProblemCase]:
    """The first case of each order, oldest first (`cases` come oldest first)."""
    seen: Dict[int, ProblemCase] = {}
    for case in cases:
        seen.setdefault(case.order_id, case)
    return list(seen.values())


def customer_repetition(case_number: str, customer_id: Optional[int], now: datetime) -> Optional[Repetition]:
    """The customer's repetition when this case is a counted problem and their different
    orders with a problem in the window reach `recurring.customer.claims`; else None."""
    rules = _rules()
    rule = rules.customer if rules else None
    if rule is None or customer_id is None:
        return None
    cases = services.repository().problem_cases(now - rule.window, rules.problems, customer_id=customer_id)
    current = next((c for c in cases if c.case_number == case_number), None)
    if current is None:
        return None
    orders = first_per_order(cases)
    if len(orders) < rule.claims:
        return None
    earlier = tuple(c.case_number for c in orders if c.order_id != current.order_id)
    return Repetition(count=len(orders), days=rule.window.days, earlier_cases=earlier)


def ordinal(count: int, language: str) -> str:
    """ "3回目" / "3rd"."""
    if language != "en":
        return f"{count}回目"
    suffix = "th" if 10 <= count % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(count % 10, "th")
    return f"{count}{suffix}"


def acknowledgement(repetition: Repetition, language: str) -> Optional[str]:
    """What the customer reads: the YAML's text in their language, or None without one."""
    rules = _rules()
    texts = rules.acknowledgement if rules else {}
    text = texts.get(language) or texts.get("ja")
    if not text:
        return None
    return text.format(count=repetition.count, ordinal=ordinal(repetition.count, language), days=repetition.days)


def shop_alerts(case_number: str, now: datetime) -> List[OpsAlert]:
    """The operations alerts this case raises now: for each rule whose count it brings to
    the threshold, once per burst (a later case of the same burst only grows its count)."""
    rules = _rules()
    if rules is None or not (rules.same_item_at_shop or rules.same_shop):
        return []
    repository = services.repository()
    claim = repository.claim(case_number)
    if claim is None or claim.order_number is None or claim.problem not in rules.problems:
        return []
    order = repository.order_by_number(claim.order_number)
    if order is None:
        return []
    shop = order.shop_name
    raised: List[OpsAlert] = []
    rule = rules.same_item_at_shop
    if rule is not None:
        cases = repository.problem_cases(now - rule.window, [claim.problem], shop=shop)
        current = next((c for c in cases if c.case_number == case_number), None)
        for sku, name_ja, name_en in current.items if current else ():
            orders = first_per_order([c for c in cases if sku in c.skus])
            if len(orders) >= rule.claims:
                record = repository.note_recurring_alert(
                    SAME_ITEM_AT_SHOP, shop, orders, rule.window, now, sku=sku, problem=claim.problem, item=name_ja
                )
                if record.created:
                    raised.append(_alert(record, rule, item_names=(name_ja, name_en)))
    rule = rules.same_shop
    if rule is not None:
        cases = repository.problem_cases(now - rule.window, rules.problems, shop=shop)
        orders = first_per_order(cases)
        if any(c.case_number == case_number for c in cases) and len(orders) >= rule.claims:
            record = repository.note_recurring_alert(SAME_SHOP, shop, orders, rule.window, now)
            if record.created:
                raised.append(_alert(record, rule))
    return raised


def _alert(
    record: RecurringAlertRecord, rule: RecurringRule, item_names: Tuple[Optional[str], Optional[str]] = (None, None)
) -> OpsAlert:
    start = record.window_start.isoformat()
    return OpsAlert(
        alert_id=alert_id(record.kind, record.shop, record.sku, record.problem, start),
        kind=record.kind,
        shop=record.shop,
        count=record.count,
        threshold=rule.claims,
        window_hours=int(rule.window.total_seconds() // 3600),
        window_start=start,
        raised_at=record.raised_at.isoformat(),
        case_ids=list(record.case_ids),
        problem=record.problem or None,
        sku=record.sku or None,
        item_name_ja=item_names[0],
        item_name_en=item_names[1],
    )


def on_claim(
    case_number: str, customer_id: Optional[int], now: datetime
) -> Tuple[List[OpsAlert], Optional[Repetition]]:
    """Both counts for a claim just recorded; a failure is logged and counts as nothing (the
    customer's claim must go on whatever happens to the statistics)."""
    try:
        alerts = shop_alerts(case_number, now)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("recurring-problem alert for case %s not counted", case_number)
        alerts = []
    return alerts, repetition_of(case_number, customer_id, now)


def repetition_of(case_number: str, customer_id: Optional[int], now: datetime) -> Optional[Repetition]:
    """`customer_repetition`, a failure logged and read as none (the handoff goes on)."""
    try:
        return customer_repetition(case_number, customer_id, now)
    except Exception:  # noqa: BLE001 - the counts must never stop a claim or a handoff
        log.exception("customer repetition for case %s not counted", case_number)
        return None


__all__ = [
    "RECURRING_REASON",
    "REPLACEABLE_REASONS",
    "Repetition",
    "acknowledgement",
    "customer_repetition",
    "first_per_order",
    "on_claim",
    "ordinal",
    "repetition_of",
    "shop_alerts",
]
