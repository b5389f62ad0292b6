"""What the bot does when an agent acts on a handed-off case (triggered by the gateway
through Rasa's trigger_intent, after it resumed the conversation):

- `action_agent_approved_remedy`: an agent approved a remedy the bot could not grant
  alone (e.g. above the automatic limit), a combination of remedies
  ("send_item+refund_delivery_fee", bot/remedy_policy.yml `combinations:`) or a goodwill
  (`goodwill:`). The approval is verified (signed by the gateway) and every amount
  re-decided by the policy engine from the orders database, except a goodwill's, which is
  the agent's within the policy's bounds; it is applied once through the idempotent
  repository path, the customer is told exactly what happens (one message), and the
  conversation is paused again: the case stays with the agent.
- `action_agent_resolved`: the agent handed the conversation back. The bot says so,
  with the agent's name, and asks a short satisfaction question.
- `action_record_satisfaction`: the customer's answer, kept with the case's outcome.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import services
from bot.actions.case_record import keep_transcript
from bot.actions.claims import customer_for
from bot.actions.remedies import apply_and_confirm, case_now
from bot.remedy_policy import (
    combination_value,
    price_combination,
    remedy_value,
    render_confirmations,
    render_goodwill_confirmation,
)
from bot.remedy_policy.types import OrderView, RemedyOffer
from contracts.approvals import (
    KEY_ENV,
    AgentApproval,
    ApprovalInvalid,
    approval_notice,
    enough_approvers,
    verify_approval,
)
from contracts.vocabulary import GOODWILL, combination_parts

log = logging.getLogger(__name__)

# Slots that belonged to the finished case; cleared so the next problem starts afresh.
# What pays money back to the order's payment method: a refund goodwill is never more
# than the order cost less what these already refunded for the case.
REFUND_KINDS = ("refund_item", "refund_delivery_fee", "cancel_order")

CASE_SLOTS = (
    "order_id",
    "claim_items",
    "problem",
    "remedy",
    "offers",
    "refused_remedies",
    "handoff_reason",
    "failed_attempts",
    "approved_remedy",
    "agent_approval",
)


def supervisors() -> Tuple[str, ...]:
    """Slack user ids with the supervisor role: bot/remedy_policy.yml, plus SLACK_SUPERVISOR_IDS."""
    extra = [s.strip() for s in os.environ.get("SLACK_SUPERVISOR_IDS", "").split(",") if s.strip()]
    return tuple(services.policy().supervisors) + tuple(extra)


class ActionAgentApprovedRemedy(Action):
    """Applies a remedy an agent approved, only if all of these hold:
    the approval is signed by the gateway (AGENT_APPROVAL_KEY) for this case and customer
    and is fresh; the case, read from the orders database, is this customer's; the engine
    offers that remedy for it now (within or above the automatic limit), priced by the
    engine; and above `approvals.agent_limit` a supervisor approved it too. Otherwise
    nothing is applied and only the agents' thread is told why (an `agent_notice`).
    A combination (`apply_combination`) and a goodwill (`give_goodwill`) go the same way,
    with their own rules."""

    def name(self) -> Text:
        return "action_agent_approved_remedy"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        kind = str(tracker.get_slot("approved_remedy") or "")
        case_id = str(tracker.get_slot("case_id") or "")
        not_verified = "goodwill_not_verified" if kind == GOODWILL else "approval_not_verified"
        try:
            approval = verify_approval(
                os.environ.get(KEY_ENV, ""),
                tracker.get_slot("agent_approval"),
                case_id=case_id,
                sender_id=tracker.sender_id,
                now=time.time(),
            )
        except ApprovalInvalid as exc:
            log.warning("agent approval refused for case %s: %s", case_id or "-", exc)
            return _refused(dispatcher, kind, not_verified)
        if approval.remedy != kind:
            log.warning("agent approval refused for case %s: signed for another remedy", case_id)
            return _refused(dispatcher, kind, not_verified)
        if kind == GOODWILL:
            return give_goodwill(dispatcher, tracker, approval)
        if len(combination_parts(kind)) > 1:
            return apply_combination(dispatcher, tracker, approval)
        case = case_now(tracker)
        if case is not None and services.repository().remedies_for_case(case.claim.case_number):
            # a double click, a second agent: the customer heard of the first one already
            return _refused(dispatcher, kind, "already_remedied")
        offer = case.offered(kind, approvable=True) if case is not None else None
        if case is None or offer is None:
            log.info("approved remedy %r is not one the policy offers for case %s now", kind, case_id)
            return _refused(dispatcher, kind, "not_offered_now")
        value = remedy_value(services.policy(), offer, case.items)
        if value > services.policy().agent_approval_limit and not enough_approvers(approval.approvers, supervisors()):
            return _needs_supervisor(
                dispatcher,
                kind,
                approval,
                amount=offer.amount,
                value=value,
                agent_limit=services.policy().agent_approval_limit,
            )
        apply_and_confirm(dispatcher, tracker, case, offer)
        services.repository().record_case_outcome(
            case.claim.case_number, approved_remedy=offer.kind, approved_by=_names(approval)
        )
        return [SlotSet("remedy", offer.kind), SlotSet("agent_approval", None), ConversationPaused()]


def apply_combination(dispatcher: CollectingDispatcher, tracker: Tracker, approval: AgentApproval) -> List[EventType]:
    """Remedies an agent applies together (bot/remedy_policy.yml `combinations:`): only when the
    case is this customer's and has no remedy yet, and the engine prices every part for it
    now; their values add up against the agent's limit. Applied all at once or not at all,
    and the customer reads every part in one message."""
    kind = approval.remedy
    policy = services.policy()
    case = case_now(tracker)
    if case is None:
        log.info("combination %r: case %s is not this conversation's", kind, approval.case_id)
        return _refused(dispatcher, kind, "not_offered_now")
    repository = services.repository()
    case_id = case.claim.case_number
    if repository.remedies_for_case(case_id):
        return _refused(dispatcher, kind, "already_remedied")
    offers = price_combination(policy, combination_parts(kind), case.decision, case.order, case.items, case.now)
    if offers is None:
        log.info("combination %r is not one the policy allows for case %s now", kind, case_id)
        return _refused(dispatcher, kind, "not_offered_now")
    value = combination_value(policy, offers, case.items)
    if value > policy.agent_approval_limit and not enough_approvers(approval.approvers, supervisors()):
        return _needs_supervisor(
            dispatcher,
            kind,
            approval,
            amount=sum(o.amount for o in offers),
            value=value,
            agent_limit=policy.agent_approval_limit,
        )
    applied = repository.apply_remedies(case_id, offers, case.now)
    if not any(a.created for a in applied):
        # a concurrent approval (another agent, a double click) applied first: its
        # customer message is the one; nothing more is added or said
        return _refused(dispatcher, kind, "already_remedied")
    on_record = [RemedyOffer(kind=a.kind, amount=a.amount, eta=a.eta) for a in applied]
    confirmation = render_confirmations(
        policy, on_record, services.language(tracker), case.items, case_id, applied[0].applied_at
    )
    dispatcher.utter_message(response="utter_remedy_applied", confirmation=confirmation, case_id=case_id)
    repository.record_case_outcome(case_id, approved_remedy=kind, approved_by=_names(approval))
    return [SlotSet("remedy", kind), SlotSet("agent_approval", None), ConversationPaused()]


def give_goodwill(dispatcher: CollectingDispatcher, tracker: Tracker, approval: AgentApproval) -> List[EventType]:
    """A goodwill an agent decided (the signed record carries kind, amount and reason):
    given once per case, only within bot/remedy_policy.yml `goodwill:` (kind allowed, amount from
    ¥1 up to max_amount, a reason), only for this customer's case, and above the agent's
    own limit only with a supervisor's approval too."""
    goodwill = approval.goodwill
    if goodwill is None:
        return _refused(dispatcher, GOODWILL, "goodwill_not_verified")
    rule = services.policy().goodwill
    if rule is None or goodwill.kind not in rule.kinds:
        return _refused(dispatcher, GOODWILL, "goodwill_not_allowed")
    if goodwill.amount < 1:
        return _refused(dispatcher, GOODWILL, "goodwill_no_amount")
    if goodwill.amount > rule.max_amount:
        return _refused(dispatcher, GOODWILL, "goodwill_above_max", max_amount=rule.max_amount)
    reason = goodwill.reason.strip()
    if not reason:
        return _refused(dispatcher, GOODWILL, "goodwill_no_reason")
    if len(reason) > rule.reason_max_length:
        return _refused(dispatcher, GOODWILL, "goodwill_reason_too_long", max_length=rule.reason_max_length)
    found = _goodwill_case(tracker)
    if found is None:
        return _refused(dispatcher, GOODWILL, "not_customers_case")
    case_id, order = found
    repository = services.repository()
    if goodwill.kind not in rule.kinds_for(has_order=order is not None):
        return _refused(dispatcher, GOODWILL, "goodwill_not_allowed")
    if goodwill.kind in REFUND_KINDS and order is not None:
        refunded = sum(r.amount for r in repository.remedies_for_case(case_id) if r.kind in REFUND_KINDS)
        refundable = max(order.total - refunded, 0)
        if goodwill.amount > refundable:
            return _refused(dispatcher, GOODWILL, "goodwill_above_max", max_amount=refundable)
    if goodwill.amount > rule.agent_limit and not enough_approvers(approval.approvers, supervisors()):
        return _needs_supervisor(dispatcher, GOODWILL, approval, value=goodwill.amount, agent_limit=rule.agent_limit)
    given = repository.give_goodwill(
        case_id,
        goodwill.kind,
        goodwill.amount,
        reason,
        [(a.slack_user_id, a.name) for a in approval.approvers],
        services.now(),
    )
    if not given.created:
        return _refused(dispatcher, GOODWILL, "goodwill_already_given")
    confirmation = render_goodwill_confirmation(
        services.policy(), given.kind, given.amount, services.language(tracker), case_id
    )
    dispatcher.utter_message(response="utter_remedy_applied", confirmation=confirmation, case_id=case_id)
    repository.record_case_outcome(case_id, approved_remedy=GOODWILL, approved_by=_names(approval))
    return [SlotSet("agent_approval", None), ConversationPaused()]


def _goodwill_case(tracker: Tracker) -> Optional[Tuple[str, Optional[OrderView]]]:
    """(case number, its order or None) when the case is this conversation's customer's:
    with an order, as for remedies (case_now); without one, the case's customer must be
    the conversation's (an unknown guest gets nothing)."""
    case_id = tracker.get_slot("case_id")
    claim = services.repository().claim(str(case_id)) if case_id else None
    if claim is None:
        return None
    if claim.order_number is not None:
        case = case_now(tracker)
        return None if case is None else (claim.case_number, case.order)
    customer = customer_for(tracker)
    if customer is None or claim.customer_id != customer.id:
        log.warning("goodwill for case %s: not this conversation's customer", claim.case_number)
        return None
    return claim.case_number, None


def _names(approval: AgentApproval) -> str:
    return ", ".join(a.name for a in approval.approvers)


def _needs_supervisor(
    dispatcher: CollectingDispatcher, kind: str, approval: AgentApproval, **details: Any
) -> List[EventType]:
    # Nothing applied: the thread asks a supervisor to approve too.
    dispatcher.utter_message(
        json_message=approval_notice(
            "needs_supervisor", kind, **details, approvers=[a.name for a in approval.approvers]
        )
    )
    return [ConversationPaused()]


def _refused(dispatcher: CollectingDispatcher, kind: str, reason: str, **details: Any) -> List[EventType]:
    # The customer is told nothing: the case stays with the agent, who sees why in the thread.
    dispatcher.utter_message(json_message=approval_notice("refused", kind, reason=reason, **details))
    return [SlotSet("agent_approval", None), ConversationPaused()]


class ActionAgentResolved(Action):
    def name(self) -> Text:
        return "action_agent_resolved"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        case_id = tracker.get_slot("case_id")
        agent = tracker.get_slot("agent_name") or ""
        if case_id:
            services.repository().record_case_outcome(
                case_id,
                resolved_by=agent or None,
                resolved_at=services.now(),
            )
        dispatcher.utter_message(response="utter_case_resolved", agent_name=agent)
        dispatcher.utter_message(response="utter_ask_satisfaction")
        keep_transcript(tracker, case_id, dispatcher, domain)
        return [SlotSet(slot, None) for slot in CASE_SLOTS]


class ActionRecordSatisfaction(Action):
    def name(self) -> Text:
        return "action_record_satisfaction"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        satisfied = services.latest_intent(tracker) in ("affirm", "thank")
        case_id = tracker.get_slot("case_id")
        if case_id:
            services.repository().record_case_outcome(
                case_id,
                satisfaction="satisfied" if satisfied else "not_satisfied",
                answered_at=services.now(),
            )
        dispatcher.utter_message(response="utter_satisfaction_thanks" if satisfied else "utter_satisfaction_sorry")
        keep_transcript(tracker, case_id, dispatcher, domain)
        return [SlotSet("case_id", None)]
