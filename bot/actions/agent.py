"""What the bot does when an agent acts on a handed-off case (triggered by the gateway
through Rasa's trigger_intent, after it resumed the conversation):

- `action_agent_approved_remedy`: an agent approved a remedy the bot could not grant
  alone (e.g. above the automatic limit). The approval is verified (signed by the gateway)
  and the remedy re-decided by the policy engine from the orders database; it is applied
  through the same idempotent path as the customer's own choice (one remedy per case), the
  customer is told exactly what happens, and the conversation is paused again: the case
  stays with the agent.
- `action_agent_resolved`: the agent handed the conversation back. The bot says so,
  with the agent's name, and asks a short satisfaction question.
- `action_record_satisfaction`: the customer's answer, kept with the case's outcome.
"""

from __future__ import annotations

import logging
import os
import time
from typing import List, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import services
from bot.actions.remedies import apply_and_confirm, case_now
from bot.policy import remedy_value
from contracts.approvals import KEY_ENV, ApprovalInvalid, approval_notice, enough_approvers, verify_approval

log = logging.getLogger(__name__)

# Slots that belonged to the finished case; cleared so the next problem starts afresh.
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
    """Slack user ids with the supervisor role: bot/policy.yml, plus SLACK_SUPERVISOR_IDS."""
    extra = [s.strip() for s in os.environ.get("SLACK_SUPERVISOR_IDS", "").split(",") if s.strip()]
    return tuple(services.policy().supervisors) + tuple(extra)


class ActionAgentApprovedRemedy(Action):
    """Applies a remedy an agent approved, only if all of these hold:
    the approval is signed by the gateway (AGENT_APPROVAL_KEY) for this case and customer
    and is fresh; the case, read from the orders database, is this customer's; the engine
    offers that remedy for it now (within or above the automatic limit), priced by the
    engine; and above `approvals.agent_limit` a supervisor approved it too. Otherwise
    nothing is applied and only the agents' thread is told why (an `agent_notice`)."""

    def name(self) -> Text:
        return "action_agent_approved_remedy"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        kind = str(tracker.get_slot("approved_remedy") or "")
        case_id = str(tracker.get_slot("case_id") or "")
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
            return _refused(dispatcher, kind, "approval_not_verified")
        if approval.remedy != kind:
            log.warning("agent approval refused for case %s: signed for another remedy", case_id)
            return _refused(dispatcher, kind, "approval_not_verified")
        case = case_now(tracker)
        offer = case.offered(kind, approvable=True) if case is not None else None
        if case is None or offer is None:
            log.info("approved remedy %r is not one the policy offers for case %s now", kind, case_id)
            return _refused(dispatcher, kind, "not_offered_now")
        value = remedy_value(services.policy(), offer, case.items)
        if value > services.policy().agent_approval_limit and not enough_approvers(approval.approvers, supervisors()):
            dispatcher.utter_message(
                json_message=approval_notice(
                    "needs_supervisor",
                    kind,
                    amount=offer.amount,
                    value=value,
                    agent_limit=services.policy().agent_approval_limit,
                    approvers=[a.name for a in approval.approvers],
                )
            )
            return [ConversationPaused()]
        apply_and_confirm(dispatcher, tracker, case, offer)
        services.repository().record_case_outcome(
            case.claim.case_number,
            approved_remedy=offer.kind,
            approved_by=", ".join(a.name for a in approval.approvers),
        )
        return [SlotSet("remedy", offer.kind), SlotSet("agent_approval", None), ConversationPaused()]


def _refused(dispatcher: CollectingDispatcher, kind: str, reason: str) -> List[EventType]:
    # The customer is told nothing: the case stays with the agent, who sees why in the thread.
    dispatcher.utter_message(json_message=approval_notice("refused", kind, reason=reason))
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
        return [SlotSet("case_id", None)]
