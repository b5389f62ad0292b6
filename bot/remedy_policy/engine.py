"""The remedy policy as a pure function: (problem, order, items, history, now) -> decision.

No database, no Rasa, no clock: everything comes in as arguments, so each rule and each
boundary is tested with literal tables (tests/bot/test_policy_engine.py).

Order of the checks, first match wins:
1. the order's state rules the problem out (cancelled; items claimed before delivery;
   cancelling a delivered order) -> a person;
2. the claim is too old, or the customer had too many remedies lately -> a person;
3. an item the policy does not cover -> a person;
4. late delivery that is not late yet -> a notice with the expected time, no remedy
   (delivered on time by our records -> a person);
5. each remedy listed for the problem and order kind whose own conditions hold is offered,
   unless its value is above the automatic limit (then only a person may grant it);
   a never-alone remedy (coupon) is dropped when nothing real is offered before it;
6. nothing left to offer -> a person (above the limit, or no remedy applies).

Combinations (`combinations:`, an agent's only) are priced here too, part by part, on top
of the decision: `price_combination` and `available_combinations`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import List, Optional, Sequence, Tuple

from bot.remedy_policy.loader import Policy, RemedyRule
from bot.remedy_policy.types import CustomerHistory, ItemView, OrderView, PolicyDecision, RemedyOffer

ITEM_PROBLEMS = ("missing_item", "wrong_item", "damaged_item")


def decide(
    policy: Policy,
    problem: str,
    order: OrderView,
    items: Sequence[ItemView],
    history: CustomerHistory,
    now: datetime,
) -> PolicyDecision:
    """What the bot may offer for this claim, in the order to offer it, or why it may not."""
    if problem not in policy.problems:
        # A case opened without a claim ("handoff": a person was asked for first) has no
        # remedies of its own; a person decides (never a KeyError in the agent's action).
        return PolicyDecision(problem=problem, escalate_reason="no_remedy_available")
    reason = _escalation_before_offers(policy, problem, order, items, history, now)
    if reason:
        return PolicyDecision(problem=problem, escalate_reason=reason)
    if problem == "late_delivery" and not _is_late(policy, order, now):
        if order.delivered_at is not None:
            # Our records say it came on time and the customer says otherwise: a person checks.
            return PolicyDecision(problem=problem, escalate_reason="no_remedy_available")
        return PolicyDecision(problem=problem, notice="not_late_yet")

    offers: List[RemedyOffer] = []
    needs_approval: List[RemedyOffer] = []
    for kind in policy.problems[problem].get(order.kind, ()):
        rule = policy.remedies[kind]
        if not _allowed(rule, order, items, now):
            continue
        offer = RemedyOffer(kind=kind, amount=_amount(rule, order, items), eta=_eta(rule, now))
        if remedy_value(policy, offer, items) > policy.auto_approve_limit:
            needs_approval.append(RemedyOffer(kind, offer.amount, offer.eta, needs_approval=True))
        elif rule.never_alone and not offers:
            continue  # a coupon is never the first or only fix
        else:
            offers.append(offer)

    if offers:
        return PolicyDecision(problem=problem, offers=tuple(offers), needs_approval=tuple(needs_approval))
    if needs_approval:
        return PolicyDecision(
            problem=problem, needs_approval=tuple(needs_approval), escalate_reason="amount_above_limit"
        )
    if problem == "cancel_order":
        return PolicyDecision(problem=problem, escalate_reason="order_not_cancellable")
    return PolicyDecision(problem=problem, escalate_reason="no_remedy_available")


def _escalation_before_offers(
    policy: Policy,
    problem: str,
    order: OrderView,
    items: Sequence[ItemView],
    history: CustomerHistory,
    now: datetime,
) -> Optional[str]:
    reason = order_escalation(policy, problem, order, history, now)
    if reason:
        return reason
    if problem in ITEM_PROBLEMS and any(item.category in policy.excluded_categories for item in items):
        return "item_not_covered"
    return None


def order_escalation(
    policy: Policy, problem: str, order: OrderView, history: CustomerHistory, now: datetime
) -> Optional[str]:
    """Why a person must handle any claim of this problem on this order, whichever items:
    known as soon as the order is picked, so the customer is not asked for items first."""
    if order.status == "cancelled":
        return "order_cancelled"
    if problem in ITEM_PROBLEMS:
        if order.status != "delivered" or order.delivered_at is None:
            return "order_not_delivered"
        if now - order.delivered_at > timedelta(hours=policy.claim_window_hours):
            return "claim_window_passed"
    if problem == "cancel_order" and order.status == "delivered":
        return "order_not_cancellable"
    if problem == "late_delivery" and order.promised_at is not None:
        if now - order.promised_at > timedelta(hours=policy.late_claim_window_hours):
            return "claim_window_passed"
    since = now - timedelta(days=policy.claims_period_days)
    if sum(1 for moment in history.claim_times if moment > since) >= policy.max_claims:
        return "too_many_claims"
    return None


def minutes_late(order: OrderView, now: datetime) -> float:
    """How far past the promised time the order is (delivered: when it arrived)."""
    if order.promised_at is None:
        return 0.0
    arrived = order.delivered_at or now
    return (arrived - order.promised_at).total_seconds() / 60


def _is_late(policy: Policy, order: OrderView, now: datetime) -> bool:
    return minutes_late(order, now) >= policy.late_grace_minutes


def _allowed(rule: RemedyRule, order: OrderView, items: Sequence[ItemView], now: datetime) -> bool:
    if rule.statuses is not None and order.status not in rule.statuses:
        return False
    if rule.categories is not None and any(item.category not in rule.categories for item in items):
        return False
    if rule.within_minutes_of_delivery is not None and order.delivered_at is not None:
        if now - order.delivered_at > timedelta(minutes=rule.within_minutes_of_delivery):
            return False
    required_lateness = rule.min_minutes_late_by_status.get(order.status)
    if required_lateness is not None and minutes_late(order, now) < required_lateness:
        return False
    return True


def _amount(rule: RemedyRule, order: OrderView, items: Sequence[ItemView]) -> int:
    base = {
        "none": 0,
        "item_total": sum(item.line_total for item in items),
        "delivery_fee": order.delivery_fee,
        "order_total": order.total,
        "fixed": rule.fixed_amount,
    }[rule.amount]
    # Rounded down to whole yen, so what is shown is never more than the policy allows.
    return math.floor(base * (100 + rule.bonus_percent) / 100)


def _eta(rule: RemedyRule, now: datetime) -> Optional[datetime]:
    if rule.eta_minutes is not None:
        return now + timedelta(minutes=rule.eta_minutes)
    if rule.eta_days is not None:
        return now + timedelta(days=rule.eta_days)
    return None


def remedy_value(policy: Policy, offer: RemedyOffer, items: Sequence[ItemView]) -> int:
    """What a remedy costs: what is paid back, or the value of what is sent again (the
    limits, the automatic one and an agent's own, compare this)."""
    if policy.remedies[offer.kind].amount == "none":
        return sum(item.line_total for item in items)
    return offer.amount


def price_remedy(
    policy: Policy, kind: str, order: OrderView, items: Sequence[ItemView], now: datetime
) -> Optional[RemedyOffer]:
    """`kind` priced for this order on its own conditions (statuses, categories, times),
    whatever the problem lists; None when they do not hold now."""
    rule = policy.remedies.get(kind)
    if rule is None or not _allowed(rule, order, items, now):
        return None
    return RemedyOffer(kind=kind, amount=_amount(rule, order, items), eta=_eta(rule, now))


def price_combination(
    policy: Policy,
    parts: Sequence[str],
    decision: PolicyDecision,
    order: OrderView,
    items: Sequence[ItemView],
    now: datetime,
) -> Optional[Tuple[RemedyOffer, ...]]:
    """The combination `parts` priced for the case now, part by part, or None when the
    policy does not allow it now: it must be listed under `combinations:`, its first part
    offered by `decision` (within or above the automatic limit: an agent applies it), and
    each further part allowed on its own conditions and worth more than ¥0."""
    parts = tuple(parts)
    if parts not in policy.combinations:
        return None
    first = next((o for o in (*decision.offers, *decision.needs_approval) if o.kind == parts[0]), None)
    if first is None:
        return None
    offers = [RemedyOffer(first.kind, first.amount, first.eta)]
    for kind in parts[1:]:
        offer = price_remedy(policy, kind, order, items, now)
        if offer is None or remedy_value(policy, offer, items) <= 0:
            return None  # e.g. a delivery fee of ¥0: nothing to add
        offers.append(offer)
    return tuple(offers)


def available_combinations(
    policy: Policy, decision: PolicyDecision, order: OrderView, items: Sequence[ItemView], now: datetime
) -> List[Tuple[RemedyOffer, ...]]:
    """Every combination of the policy an agent may apply to the case now, priced, in the
    policy's order."""
    priced = (price_combination(policy, parts, decision, order, items, now) for parts in policy.combinations)
    return [offers for offers in priced if offers is not None]


def combination_value(policy: Policy, offers: Sequence[RemedyOffer], items: Sequence[ItemView]) -> int:
    """What a combination costs: its parts' values added up (compared with an agent's limit)."""
    return sum(remedy_value(policy, offer, items) for offer in offers)
