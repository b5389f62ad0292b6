"""A case re-read from the orders database and re-decided by the policy engine, now.

Why: slots can be written by anyone who reaches Rasa's API (or the action server with its
secret), so nothing that moves money or tells an agent an amount is taken from them. The
case (order, items, problem) comes from the orders database, its owner is checked against
this conversation, and the engine says what it offers at this moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Sequence

from rasa_sdk import Tracker

from bot.actions import services
from bot.actions.claims import customer_for, owned_order
from bot.remedy_policy import decide
from bot.remedy_policy.types import ItemView, OrderView, PolicyDecision, RemedyOffer
from bot.store.repository import ClaimRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseNow:
    """A case as the orders database has it and what the engine offers for it now."""

    claim: ClaimRecord
    order: OrderView
    items: Sequence[ItemView]
    decision: PolicyDecision
    now: datetime

    def offered(self, kind: str, *, approvable: bool = False) -> Optional[RemedyOffer]:
        """The engine's offer of `kind`; with `approvable`, also one only a person may grant."""
        candidates = list(self.decision.offers) + (list(self.decision.needs_approval) if approvable else [])
        return next((o for o in candidates if o.kind == kind), None)


def case_now(tracker: Tracker) -> Optional[CaseNow]:
    """This conversation's case re-read from the orders database and re-decided at this
    moment; None when there is no such case, it has no order, or the order is not this
    conversation's customer's (slots can be written by anyone who reaches Rasa's API)."""
    case_id = tracker.get_slot("case_id")
    repository = services.repository()
    claim = repository.claim(str(case_id)) if case_id else None
    if claim is None or claim.order_number is None:
        return None
    customer = customer_for(tracker)
    order = owned_order(claim.order_number, customer.id if customer else None)
    if order is None or claim.customer_id != order.customer_id:
        log.warning("case %s is not this conversation's: nothing applied", claim.case_number)
        return None
    items = [i for i in order.items if i.item_id in claim.item_ids] or list(order.items)
    now = services.now()
    decision = decide(
        services.policy(), claim.problem, order, items, repository.customer_history(order.customer_id), now
    )
    return CaseNow(claim, order, items, decision, now)
