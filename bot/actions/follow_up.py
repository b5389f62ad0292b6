"""Follow-ups at the promised time: "did the egg arrive?" once the promised time has passed.

How it goes:
1. When the bot applies a remedy with a promised time (its rule in bot/remedy_policy.yml has
   `eta_minutes` or `eta_days`), the confirmation also carries a custom payload
   `{"follow_up": {"case_id", "due_at", "language"}}` (`follow_up_payload`, called by
   bot/actions/remedies.py). `due_at` is epoch seconds: the promised time itself for a
   delivery ("18:04ごろ"), and for a parcel promised on a day ("11月27日ごろ") the next
   morning (`parcels_next_day_at` of bot/follow_up.yml), since a parcel may come any time
   that day.
2. The gateway schedules it in Redis (gateway/follow_ups.py) and, a while after `due_at`,
   sets the `follow_up_case` slot and triggers `EXTERNAL_follow_up_due`.
3. `action_ask_follow_up` re-reads the case from the orders database (never the payload or
   the slot's word for what was promised): the remedy on record with its eta, the items of
   the claim. Nothing is asked when the case is not this customer's, has no remedy with a
   time, went to a person since, or was answered already; the trigger is then undone
   (UserUtteranceReverted), so the next message is read as if nothing had happened.
4. `action_record_follow_up` (the rules of bot/data/rules_follow_up.yml run it on the answer):
   "yes" or thanks records "arrived" and thanks the customer; "no", a new complaint about
   it or frustration records "not_arrived" and hands the case to a person with the reason
   `broken_promise` (action_handoff builds the whole context; `promise_flags` puts the flag
   and the promised remedy on the agent's card).

The texts are product owners' (bot/follow_up.yml), validated at load like the policy: a
mistake names the file and the line.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import services
from bot.actions.claims import customer_for
from bot.formatting import TOKYO, item_names
from bot.remedy_policy.hours import read_clock
from bot.remedy_policy.loader import Policy, _Reader, compose_yaml, load_owner_file
from bot.remedy_policy.types import ItemView, OrderView
from bot.remedy_policy.wording import eta_text
from bot.store.repository import AppliedRemedy, ClaimRecord
from contracts.case_context import BROKEN_PROMISE, OfferedRemedy

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "follow_up.yml"
FOLLOW_UP_SLOT = "follow_up_case"
BROKEN_PROMISE_REASON = "broken_promise"  # contracts.vocabulary.REASONS
ARRIVED_INTENTS = ("affirm", "thank")
ARRIVED, NOT_ARRIVED = "arrived", "not_arrived"  # bot/store/models.py FOLLOW_UP_ANSWERS
LANGUAGES = ("ja", "en")
TEXTS = ("question", "yes_button", "no_button", "arrived", "not_arrived")
PLACEHOLDERS = ("items", "eta", "case_id")
MAX_BUTTON = 20  # LINE's quick-reply label


@dataclass(frozen=True)
class FollowUpTexts:
    """bot/follow_up.yml: each text per language, and when a parcel's question goes out."""

    texts: Mapping[str, Mapping[str, str]]
    parcels_next_day_at: time = time(10, 0)

    def text(self, name: str, language: str, **values: str) -> str:
        by_language = self.texts[name]
        template = by_language.get(language) or by_language["ja"]
        return template.format(**{p: values.get(p, "") for p in PLACEHOLDERS})


def parse_follow_up_texts(text: str, source: str = "follow_up.yml") -> FollowUpTexts:
    root = compose_yaml(text, source)
    r = _Reader(source)
    top = r.mapping(root, "")
    r.no_unknown(top, "", ("version", "parcels_next_day_at", *TEXTS))
    version = r.scalar(r.required(top, root, "", "version"), "version")
    if version != 1:
        raise r.fail(top["version"][1], "version", f"unsupported version {version!r} (expected 1)")
    texts: Dict[str, Dict[str, str]] = {}
    for name in TEXTS:
        node = r.required(top, root, "", name)
        entries = r.mapping(node, name)
        r.no_unknown(entries, name, LANGUAGES)
        texts[name] = {}
        for language in LANGUAGES:
            value_node = r.required(entries, node, name, language)
            value = r.scalar(value_node, f"{name}.{language}")
            if not isinstance(value, str) or not value.strip():
                raise r.fail(value_node, f"{name}.{language}", "expected a text")
            _check_placeholders(r, value_node, f"{name}.{language}", value, required=name == "question")
            if name.endswith("_button") and len(value) > MAX_BUTTON:
                raise r.fail(value_node, f"{name}.{language}", f"at most {MAX_BUTTON} characters (LINE cuts it)")
            texts[name][language] = value
    parcels = time(10, 0)
    if "parcels_next_day_at" in top:
        parcels = read_clock(r, top["parcels_next_day_at"][1], "parcels_next_day_at")
    return FollowUpTexts(texts, parcels)


def _check_placeholders(r: _Reader, node: yaml.Node, path: str, value: str, required: bool) -> None:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    except ValueError as error:
        raise r.fail(node, path, f"a brace is not closed ({error}); write {{items}}, {{eta}} or {{case_id}}") from None
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise r.fail(
            node, path, f"unknown placeholder {{{sorted(unknown)[0]}}} (expected {{items}}, {{eta}} or {{case_id}})"
        )
    if required and "items" not in names:
        raise r.fail(node, path, "must name what was promised: {items}")


def load_follow_up_texts(path: Optional[Path] = None) -> FollowUpTexts:
    """From `path`, `$FOLLOW_UP_TEXTS_PATH` or bot/follow_up.yml."""
    return load_owner_file(parse_follow_up_texts, path, "FOLLOW_UP_TEXTS_PATH", DEFAULT_PATH)


@lru_cache(maxsize=1)
def texts() -> FollowUpTexts:
    return load_follow_up_texts()


# --- what was promised, from the orders database -------------------------------------------


def promised_remedy(policy: Policy, records: Sequence[AppliedRemedy]) -> Optional[AppliedRemedy]:
    """The case's remedy that arrives at a time (its rule has eta_minutes / eta_days), if any."""
    for record in records:
        rule = policy.remedies.get(record.kind)
        if record.eta is not None and rule is not None and (rule.eta_minutes or rule.eta_days):
            return record
    return None


def due_at(policy: Policy, remedy: AppliedRemedy) -> datetime:
    """When to ask: the promised time for a delivery; for a parcel promised on a day, the
    next morning (a parcel may come any time of that day)."""
    assert remedy.eta is not None
    rule = policy.remedies[remedy.kind]
    if rule.eta_minutes:
        return remedy.eta
    day = remedy.eta.astimezone(TOKYO).date() + timedelta(days=1)
    return datetime.combine(day, texts().parcels_next_day_at, tzinfo=TOKYO)


def follow_up_payload(
    policy: Policy, records: Sequence[AppliedRemedy], case_id: str, language: str
) -> Optional[Dict[str, Any]]:
    """The custom payload that asks the gateway to follow up on the case, or None when
    nothing applied arrives at a time (a refund, a coupon)."""
    remedy = promised_remedy(policy, records)
    if remedy is None:
        return None
    return {"follow_up": {"case_id": case_id, "due_at": int(due_at(policy, remedy).timestamp()), "language": language}}


@dataclass(frozen=True)
class Promise:
    claim: ClaimRecord
    order: OrderView
    items: Tuple[ItemView, ...]
    remedy: AppliedRemedy


def promise_of(tracker: Tracker, case_id: Optional[str]) -> Optional[Promise]:
    """What this conversation's customer was promised for `case_id`, re-read from the orders
    database; None when the case is not theirs or nothing with a time was applied."""
    if not case_id:
        return None
    repository = services.repository()
    claim = repository.claim(str(case_id))
    customer = customer_for(tracker)
    if claim is None or customer is None or claim.customer_id != customer.id or not claim.order_number:
        if claim is not None:
            log.warning("follow-up of case %s refused: not this conversation's customer", claim.case_number)
        return None
    order = repository.order_by_number(claim.order_number)
    remedy = promised_remedy(services.policy(), repository.remedies_for_case(claim.case_number))
    if order is None or remedy is None:
        return None
    items = tuple(i for i in order.items if i.item_id in claim.item_ids) or order.items
    return Promise(claim, order, items, remedy)


def promise_flags(case_id: Optional[str]) -> Tuple[List[str], Optional[OfferedRemedy]]:
    """For the handoff context: (["broken_promise"], the promised remedy) when the customer
    answered the case's follow-up with "not arrived"; ([], None) otherwise."""
    if not case_id:
        return [], None
    repository = services.repository()
    record = repository.follow_up(str(case_id))
    if record is None or record.answer != NOT_ARRIVED:
        return [], None
    remedy = promised_remedy(services.policy(), repository.remedies_for_case(str(case_id)))
    promise = None
    if remedy is not None:
        promise = OfferedRemedy(
            kind=remedy.kind, amount=remedy.amount, eta=remedy.eta.isoformat() if remedy.eta else None
        )
    return [BROKEN_PROMISE], promise


# --- the actions -----------------------------------------------------------------------------


class ActionAskFollowUp(Action):
    """ "別卵は届きましたか？" with yes / no, once the gateway says the time has come."""

    def name(self) -> Text:
        return "action_ask_follow_up"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        case_id = tracker.get_slot(FOLLOW_UP_SLOT)
        promise = promise_of(tracker, case_id)
        repository = services.repository()
        if promise is None or promise.claim.status == "handed_off":
            # nothing to ask (not theirs, nothing with a time, or a person has the case)
            log.info("follow-up of case %s not asked: nothing pending", case_id)
            return [SlotSet(FOLLOW_UP_SLOT, None), UserUtteranceReverted()]
        earlier = repository.follow_up(promise.claim.case_number)
        if earlier is not None and earlier.answer is not None:
            log.info("follow-up of case %s not asked: answered already", promise.claim.case_number)
            return [SlotSet(FOLLOW_UP_SLOT, None), UserUtteranceReverted()]
        now = services.now()
        policy = services.policy()
        repository.record_follow_up_asked(promise.claim.case_number, due_at(policy, promise.remedy), now)
        language = services.language(tracker)
        words = texts()
        values = {
            "items": item_names(promise.items, language),
            "eta": eta_text(promise.remedy.eta, language, now),
            "case_id": promise.claim.case_number,
        }
        dispatcher.utter_message(
            text=words.text("question", language, **values),
            buttons=[
                {"title": words.text("yes_button", language), "payload": "/affirm"},
                {"title": words.text("no_button", language), "payload": "/deny"},
            ],
        )
        return [SlotSet(FOLLOW_UP_SLOT, promise.claim.case_number)]


class ActionRecordFollowUp(Action):
    """The answer to the follow-up question: recorded once; "no" goes to a person."""

    def name(self) -> Text:
        return "action_record_follow_up"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        intent = services.latest_intent(tracker)
        case_id = tracker.get_slot(FOLLOW_UP_SLOT)
        promise = promise_of(tracker, case_id)
        repository = services.repository()
        if promise is None or repository.follow_up(promise.claim.case_number) is None:
            return _as_usual(dispatcher, intent)  # no question pending: an ordinary message
        case_number = promise.claim.case_number
        language = services.language(tracker)
        values = {"items": item_names(promise.items, language), "case_id": case_number}
        done: List[EventType] = [SlotSet(FOLLOW_UP_SLOT, None)]
        if intent in ARRIVED_INTENTS:
            repository.record_follow_up_answer(case_number, ARRIVED, services.now())
            dispatcher.utter_message(text=texts().text("arrived", language, **values))
            return done
        repository.record_follow_up_answer(case_number, NOT_ARRIVED, services.now())
        dispatcher.utter_message(text=texts().text("not_arrived", language, **values))
        # The handoff is about this case (it may be another session's): its order, items and
        # problem from the database, so action_handoff builds the card for it.
        return done + [
            SlotSet("case_id", case_number),
            SlotSet("order_id", promise.order.number),
            SlotSet("problem", promise.claim.problem),
            SlotSet("claim_items", [str(i.item_id) for i in promise.items]),
            SlotSet("handoff_reason", BROKEN_PROMISE_REASON),
            FollowupAction("action_handoff"),
        ]


def _as_usual(dispatcher: CollectingDispatcher, intent: Optional[str]) -> List[EventType]:
    """A message after a follow-up that asked nothing: what the bot does with it anyway."""
    if intent and intent.startswith("report_"):
        return [FollowupAction("action_start_claim")]
    if intent == "express_frustration":
        return [FollowupAction("action_handoff")]
    dispatcher.utter_message(response="utter_you_are_welcome" if intent == "thank" else "utter_how_can_i_help")
    return []


__all__ = [
    "ActionAskFollowUp",
    "ActionRecordFollowUp",
    "FollowUpTexts",
    "follow_up_payload",
    "load_follow_up_texts",
    "parse_follow_up_texts",
    "promise_flags",
]
