"""Keeps the `language` slot ("ja"/"en") on the language the customer writes in.

Rasa runs this on every message (it is the slot's custom mapping). A message that says
nothing about its language ("OK", "1001", an emoji, a button payload) leaves the slot as
it was: at first the LINE profile's language, sent by the gateway at session start.
"""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.components.writing_systems import detect_language


class ActionDetectLanguage(Action):
    def name(self) -> Text:
        return "action_detect_language"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        text = tracker.latest_message.get("text") or ""
        # a button payload, or an intent the gateway triggered ("EXTERNAL: ..."): not the
        # customer's words
        if text.startswith(("/", "EXTERNAL:")):
            return []
        language = detect_language(text)
        if language is None or language == tracker.get_slot("language"):
            return []
        return [SlotSet("language", language)]
