"""What the bot does when an agent acts on a handed-off case (triggered by the gateway
through Rasa's trigger_intent, after it resumed the conversation):

- `action_agent_approved_remedy`: an agent approved a remedy the bot could not grant
  alone (e.g. above the automatic limit). It is applied through the same idempotent path
  as the customer's own choice (one remedy per case), the customer is told exactly what
  happens, and the conversation is paused again: the case stays with the agent.
- `action_agent_resolved`: the agent handed the conversation back. The bot says so,
  with the agent's name, and asks a short satisfaction question.
- `action_record_satisfaction`: the customer's answer, kept with the case's outcome.
"""
from __future__ import annotations

from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import services
from bot.actions.remedies import apply_and_confirm, offer_from_dict
from bot.policy.types import RemedyOffer

# Slots that belonged to the finished case; cleared so the next problem starts afresh.
CASE_SLOTS = ("order_id", "claim_items", "problem", "remedy", "offers", "refused_remedies",
              "handoff_reason", "failed_attempts", "approved_remedy")


def approvable_offer(tracker: Tracker, kind: str) -> Optional[RemedyOffer]:
    """The offer of `kind` as the policy priced it (needing approval, or offered)."""
    offers = tracker.get_slot("offers") or {}
    for data in list(offers.get("needs_approval") or []) + list(offers.get("remedies") or []):
        if data.get("kind") == kind:
            return offer_from_dict(data)
    return None


class ActionAgentApprovedRemedy(Action):
    def name(self) -> Text:
        return "action_agent_approved_remedy"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        kind = tracker.get_slot("approved_remedy") or ""
        case_id = tracker.get_slot("case_id")
        order = services.repository().order_by_number(tracker.get_slot("order_id") or "")
        offer = approvable_offer(tracker, kind)
        if not case_id or order is None or offer is None:
            # nothing the bot can apply: the agent sees the answer in the thread and goes on
            dispatcher.utter_message(response="utter_agent_approval_unknown", remedy=kind)
            return [ConversationPaused()]
        apply_and_confirm(dispatcher, tracker, order, offer)
        services.repository().record_case_outcome(
            case_id, approved_remedy=offer.kind, approved_by=tracker.get_slot("agent_name"),
        )
        return [SlotSet("remedy", offer.kind), ConversationPaused()]


class ActionAgentResolved(Action):
    def name(self) -> Text:
        return "action_agent_resolved"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        case_id = tracker.get_slot("case_id")
        agent = tracker.get_slot("agent_name") or ""
        if case_id:
            services.repository().record_case_outcome(
                case_id, resolved_by=agent or None, resolved_at=services.now(),
            )
        dispatcher.utter_message(response="utter_case_resolved", agent_name=agent)
        dispatcher.utter_message(response="utter_ask_satisfaction")
        return [SlotSet(slot, None) for slot in CASE_SLOTS]


class ActionRecordSatisfaction(Action):
    def name(self) -> Text:
        return "action_record_satisfaction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        satisfied = services.latest_intent(tracker) in ("affirm", "thank")
        case_id = tracker.get_slot("case_id")
        if case_id:
            services.repository().record_case_outcome(
                case_id, satisfaction="satisfied" if satisfied else "not_satisfied",
                answered_at=services.now(),
            )
        dispatcher.utter_message(response="utter_satisfaction_thanks" if satisfied else "utter_satisfaction_sorry")
        return [SlotSet("case_id", None)]


