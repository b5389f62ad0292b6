"""Misunderstanding and out-of-scope: one clarifying try, then a person.

Not understood (`nlu_fallback`): rather than "I didn't understand", the bot offers the
likeliest readings of the message as buttons (in the spirit of Rasa's two-stage
fallback), labelled in the customer's language from `bot/intent_choices.yml`, plus one
to talk to a person: 「次のどれでしょうか？」 [商品が足りない] [注文をキャンセルしたい]
[担当者と話す]. A tap is an ordinary message of that intent, with the entities the
customer named (`/report_missing_item{"item": "別卵"}`), so nothing said is lost; its
own rule takes it from there. Without a usable reading (nonsense, only small talk, all
below the floor) the bot asks with the usual problem buttons (`utter_clarify`).

Out of scope keeps `utter_out_of_scope`: the model read the message clearly, as something
we do not do; offering order problems it did not mean would only push a claim.

Either way this is the one clarifying try: a second unclear message in a row goes to a
person.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import escalation
from bot.actions import services
from bot.actions.handoff import hand_off
from bot.escalation import UNCLEAR_INTENTS
from bot.remedy_policy.loader import LANGUAGES, _Reader, compose_yaml, load_owner_file

CHOICES_PATH = Path(__file__).resolve().parents[1] / "intent_choices.yml"
# Never offered as a reading: no reading at all, small talk, answers to a question,
# "not what we do", the agent's words, and the gateway's triggers (a signed postback of
# /EXTERNAL_... must never come from a customer's tap). The person button is always there.
NEVER_OFFERED = (
    "nlu_fallback",
    "out_of_scope",
    "greet",
    "goodbye",
    "affirm",
    "deny",
    "thank",
    "inform",
    "relayed_to_agent",
    "request_human",
)
PERSON_PAYLOAD = "/request_human"
# LINE's limits (gateway/line/messages.py): a quick reply label, a postback's data.
MAX_LABEL = 20
MAX_PAYLOAD = 300
MAX_CHOICES = 5
# An intent name as Rasa's button payload syntax reads it (`/intent{...}`).
_INTENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


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


# --- bot/intent_choices.yml ----------------------------------------------------------------
@dataclass(frozen=True)
class IntentChoices:
    # intent -> language -> button label, in the file's order
    labels: Mapping[str, Mapping[str, str]]
    # the "something else / talk to a person" button, per language
    person: Mapping[str, str]
    min_confidence: float = 0.1
    max_choices: int = 3
    source: str = "bot/intent_choices.yml"


def _label_units(label: str) -> int:
    """Length as LINE counts a label: UTF-16 code units (an emoji counts 2), as the gateway does."""
    return len(label.encode("utf-16-le")) // 2


def parse_intent_choices(text: str, source: str = "intent_choices.yml") -> IntentChoices:
    """The choices; every mistake names the file, the line and the field."""
    root = compose_yaml(text, source)
    r = _Reader(source)
    top = r.mapping(root, "")
    r.no_unknown(top, "", ("version", "min_confidence", "max_choices", "choices", "person"))
    version_node = r.required(top, root, "", "version")
    if r.scalar(version_node, "version") != 1:
        raise r.fail(version_node, "version", "unsupported version (expected 1)")
    values: Dict[str, Any] = {}
    if "min_confidence" in top:
        values["min_confidence"] = r.number(top["min_confidence"][1], "min_confidence", maximum=1.0)
    if "max_choices" in top:
        node = top["max_choices"][1]
        values["max_choices"] = r.integer(node, "max_choices", minimum=1)
        if values["max_choices"] > MAX_CHOICES:
            raise r.fail(node, "max_choices", f"must be {MAX_CHOICES} or less, got {values['max_choices']}")
    choices_node = r.required(top, root, "", "choices")
    labels: Dict[str, Dict[str, str]] = {}
    for intent, (key, value) in r.mapping(choices_node, "choices").items():
        path = f"choices.{intent}"
        if not _INTENT_NAME.match(intent):
            raise r.fail(key, path, "expected an intent name of domain.yml (letters, digits, _)")
        if intent in NEVER_OFFERED or intent.startswith("EXTERNAL_"):
            raise r.fail(
                key, path, f"this intent cannot be offered as a choice (never: {', '.join(NEVER_OFFERED)}, EXTERNAL_*)"
            )
        labels[intent] = _labels(r, value, path)
    if not labels:
        raise r.fail(choices_node, "choices", "list at least one intent")
    person = _labels(r, r.required(top, root, "", "person"), "person")
    return IntentChoices(labels=labels, person=person, source=source, **values)


def _labels(r: _Reader, node: yaml.Node, path: str) -> Dict[str, str]:
    entries = r.mapping(node, path)
    r.no_unknown(entries, path, LANGUAGES)
    result = {}
    for lang in LANGUAGES:
        value_node = r.required(entries, node, path, lang)
        label = r.scalar(value_node, f"{path}.{lang}")
        if not isinstance(label, str) or not label.strip():
            raise r.fail(value_node, f"{path}.{lang}", "expected a button label")
        label = label.strip()
        if _label_units(label) > MAX_LABEL:
            raise r.fail(
                value_node,
                f"{path}.{lang}",
                f"{label!r} is {_label_units(label)} characters long; LINE shows at most {MAX_LABEL}",
            )
        result[lang] = label
    return result


def load_intent_choices(path: Optional[os.PathLike] = None) -> IntentChoices:
    """From `path`, `$INTENT_CHOICES_PATH` or `bot/intent_choices.yml`."""
    return load_owner_file(parse_intent_choices, path, "INTENT_CHOICES_PATH", CHOICES_PATH)


@lru_cache(maxsize=1)
def intent_choices() -> IntentChoices:
    return load_intent_choices()


# --- the readings -----------------------------------------------------------------------------
def likely_readings(
    parse_data: Mapping[str, Any], choices: IntentChoices, known_intents: Optional[Sequence[str]] = None
) -> List[str]:
    """The likeliest offerable intents of a not-understood message, most likely first."""
    if parse_data.get("unfamiliar_input"):
        return []  # no word we could know: the ranking is the model guessing at nonsense
    readings: List[str] = []
    ranking = sorted(parse_data.get("intent_ranking") or [], key=lambda r: -float(r.get("confidence") or 0))
    for entry in ranking:
        name = entry.get("name")
        if name not in choices.labels or name in readings:
            continue
        if known_intents is not None and name not in known_intents:
            continue
        if float(entry.get("confidence") or 0) < choices.min_confidence:
            break  # sorted: the rest are lower still
        readings.append(name)
        if len(readings) == choices.max_choices:
            break
    return readings


def said_entities(parse_data: Mapping[str, Any], known_entities: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The entities of the message as a payload's JSON: {"item": "別卵"}, several as a list."""
    found: Dict[str, List[Any]] = {}
    for entity in parse_data.get("entities") or []:
        name, value = entity.get("entity"), entity.get("value")
        if not name or value in (None, "") or (known_entities is not None and name not in known_entities):
            continue
        if value not in found.setdefault(name, []):
            found[name].append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in found.items()}


def choice_payload(intent: str, entities: Mapping[str, Any]) -> str:
    """`/intent` or `/intent{"item": "別卵"}` (Rasa's button payload syntax)."""
    payload = f"/{intent}" + (json.dumps(entities, ensure_ascii=False) if entities else "")
    if _label_units(payload) > MAX_PAYLOAD:
        return f"/{intent}"  # LINE would drop the button; the words stay in the conversation
    return payload


def choice_buttons(
    tracker: Tracker, domain: Mapping[str, Any], choices: Optional[IntentChoices] = None
) -> List[Dict[str, str]]:
    """The readings as buttons in the customer's language, then the person button; [] when
    no reading is usable."""
    choices = choices or intent_choices()
    message = tracker.latest_message or {}
    known_intents = _names(domain.get("intents")) if domain.get("intents") else None
    known_entities = _names(domain.get("entities")) if domain.get("entities") else None
    readings = likely_readings(message, choices, known_intents)
    if not readings:
        return []
    language = services.language(tracker)
    entities = said_entities(message, known_entities)
    buttons = [{"title": choices.labels[i][language], "payload": choice_payload(i, entities)} for i in readings]
    buttons.append({"title": choices.person[language], "payload": PERSON_PAYLOAD})
    return buttons


def _names(declared: Any) -> Tuple[str, ...]:
    """Names from a domain list, whose items are names or {name: properties}."""
    return tuple(next(iter(d)) if isinstance(d, dict) else str(d) for d in declared or ())


class ActionClarifyOrHandoff(Action):
    def name(self) -> Text:
        return "action_clarify_or_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = escalation.after_unclear_turns(unclear_turns_in_a_row(tracker), intent)
        if reason:
            return hand_off(dispatcher, tracker, reason, domain)
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        buttons = choice_buttons(tracker, domain)
        if buttons:
            dispatcher.utter_message(response="utter_clarify_choices", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_clarify")
        return []


# A mistake in bot/intent_choices.yml stops the action server's start, not a customer's turn.
intent_choices()
