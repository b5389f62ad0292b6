"""Misunderstanding and out-of-scope: one clarifying try, then a person."""
from __future__ import annotations

from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.handoff import hand_off

UNCLEAR_INTENTS = ("nlu_fallback", "out_of_scope")
# Other bots give up after two misunderstood turns in a row; so do we, to a person.
MAX_UNCLEAR_TURNS = 2


def unclear_turns_in_a_row(tracker: Tracker) -> int:
    """How many of the latest customer messages in a row were not understood or off-topic."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent not in UNCLEAR_INTENTS:
            break
        count += 1
    return count


class ActionClarifyOrHandoff(Action):
    def name(self) -> Text:
        return "action_clarify_or_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if unclear_turns_in_a_row(tracker) >= MAX_UNCLEAR_TURNS:
            reason = "out_of_scope" if intent == "out_of_scope" else "repeated_misunderstanding"
            return hand_off(dispatcher, tracker, reason, domain)
        dispatcher.utter_message(response="utter_out_of_scope" if intent == "out_of_scope" else "utter_clarify")
        return []
