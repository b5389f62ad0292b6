"""Session start: carry the slots over and take the customer's language and name from
the metadata the gateway sends (LINE profile), so the very first answer is in their language."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

# Slots that belong to one claim and should not leak into a new session.
PER_CLAIM_SLOTS = {"requested_slot", "handoff_reason", "failed_attempts"}


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        for name, value in tracker.current_slot_values().items():
            if value is not None and name not in PER_CLAIM_SLOTS and name != "session_started_metadata":
                events.append(SlotSet(name, value))
        metadata: Dict[str, Any] = tracker.get_slot("session_started_metadata") or {}
        if metadata.get("language") in ("ja", "en") and not tracker.get_slot("language"):
            events.append(SlotSet("language", metadata["language"]))
        if metadata.get("display_name"):
            events.append(SlotSet("customer_name", metadata["display_name"]))
        events.append(ActionExecuted("action_listen"))
        return events
