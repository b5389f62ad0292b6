"""A claim from report to remedy: find the order, pick the items, decide the remedies.

The conversation side is Rasa's `claim_form` (order_id -> claim_items -> remedy); this
module validates each answer, asks each question with buttons, and asks the policy engine
what may be offered. Any sign that a person is needed (asked for, frustration, safety,
payment, out of policy, repeated misunderstanding) sets `handoff_reason`, which ends the
form; `action_complete_claim` (remedies.py) then hands the case over.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import escalation
from bot.actions import identify, recurring, services
from bot.actions.account_link import account_link_offer
from bot.actions.matching import (
    claimed_items,
    marked_order_number,
    match_items,
    match_order,
    order_number_in,
    orders_mentioning,
)
from bot.actions.problems import INTENT_OF, other_problem
from bot.components.writing_systems import normalize
from bot.formatting import (
    day_and_clock,
    fit_label,
    item_button_label,
    item_names,
    order_button_label,
    order_card,
    order_line,
)
from bot.remedy_policy import decide, order_escalation
from bot.remedy_policy.engine import minutes_late
from bot.remedy_policy.reading import RemedyReading, read_remedy
from bot.remedy_policy.types import OrderView
from contracts.ops_alerts import OPS_ALERT

# Problems that are about particular items of an order (the others are about the whole order).
ITEM_PROBLEMS = ("missing_item", "wrong_item", "damaged_item")
PROBLEM_BY_INTENT = {
    "report_missing_item": "missing_item",
    "report_wrong_item": "wrong_item",
    "report_damaged_item": "damaged_item",
    "report_late_delivery": "late_delivery",
    "cancel_order": "cancel_order",
    "check_order_status": "check_order_status",
}
REFUSAL_INTENT = "deny"
# Orders offered as buttons when asking "which order?".
MAX_ORDER_CHOICES = 4
# Which order statuses come first in the choice, per problem.
PREFERRED_STATUSES = {
    "late_delivery": ("out_for_delivery", "preparing", "placed"),
    "cancel_order": ("placed", "preparing", "out_for_delivery"),
    "check_order_status": ("out_for_delivery", "preparing", "placed"),
}
CLAIM_SLOTS = (
    "order_id",
    "order_proposal",
    "claim_items",
    "remedy",
    "case_id",
    "offers",
    "refused_remedies",
    "handoff_reason",
    "failed_attempts",
    "confirm_remedy",
    "remedy_confirmed",
    "verify_step",
    "verify_phone",
)
# `order_proposal` after the customer said the proposed order is not the one.
DECLINED = "declined"
# The statuses an order can be in for each whole-order problem (a proposal needs exactly one).
ACTIVE_STATUSES = ("placed", "preparing", "out_for_delivery")


_LONE_KANA = re.compile(r"^[\u3040-\u30ff\W_]$")  # kana (ー included), or a mark


def item_mentions(values: Any) -> List[str]:
    """The item names the NLU found, without a lone kana or mark ("返金でお願いします" once
    gave the item 「お」): no item is called that, and it would hide the one already named.
    A lone kanji (卵) is a name."""
    if values is None:
        return []
    listed = values if isinstance(values, (list, tuple)) else [values]
    return [str(v) for v in listed if v and not _LONE_KANA.match(str(v).strip())]


def inform_payload(**entities: Any) -> str:
    """A button payload that fills slots without going through NLU."""
    return "/inform" + json.dumps(entities, ensure_ascii=False)


def candidate_orders(customer_id: int, problem: Optional[str], mentions: Sequence[str]) -> List[OrderView]:
    """The customer's recent orders, most likely first: the ones holding an item they
    named, then the statuses that fit the problem, then the newest."""
    orders = services.repository().recent_orders(customer_id, services.now(), limit=10)
    if problem in ITEM_PROBLEMS:
        orders = [o for o in orders if o.status == "delivered"] or orders
    preferred = PREFERRED_STATUSES.get(problem or "", ("delivered",))
    named = set(o.number for o in orders_mentioning(mentions, orders))
    ranked = sorted(
        orders,
        key=lambda o: (
            o.number not in named,
            preferred.index(o.status) if o.status in preferred else len(preferred),
        ),
    )  # sorted() is stable: newest first within each group
    return ranked[:MAX_ORDER_CHOICES]


def proposed_order(customer_id: int, problem: Optional[str], mentions: Sequence[str], text: str) -> Optional[OrderView]:
    """The one recent order that fits what the customer said, if exactly one does: the
    only one holding a named item ("別卵", in the message or as an entity), or, for a late
    delivery or a cancellation that names no item, the only order still on its way."""
    orders = services.repository().recent_orders(customer_id, services.now(), limit=10)
    if problem in ITEM_PROBLEMS:
        orders = [o for o in orders if o.status == "delivered"]
    elif problem in PREFERRED_STATUSES:
        orders = [o for o in orders if o.status in ACTIVE_STATUSES] or orders
    said = [m for m in mentions if m] + ([text] if text else [])
    named = orders_mentioning(said, orders) if said else []
    if len(named) == 1:
        return named[0]
    if not named and problem in PREFERRED_STATUSES:
        active = [o for o in orders if o.status in ACTIVE_STATUSES]
        return active[0] if len(active) == 1 else None
    return None


def customer_for(tracker: Tracker):
    """The customer behind this conversation: the LINE user id is Rasa's sender id."""
    return services.repository().customer_by_line_id(tracker.sender_id)


class ActionStartClaim(Action):
    """Starts a new claim: remembers the problem and forgets the previous claim's details."""

    def name(self) -> Text:
        return "action_start_claim"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        problem = PROBLEM_BY_INTENT.get(services.latest_intent(tracker) or "", "missing_item")
        events: List[EventType] = [SlotSet("problem", problem)]
        said_now = {e.get("entity") for e in tracker.latest_message.get("entities", [])}
        for slot in CLAIM_SLOTS:
            # An order number given before the problem ("1001" then "it's late") still counts.
            if slot == "order_id" and ("order_id" in said_now or tracker.get_slot("problem") is None):
                continue
            events.append(SlotSet(slot, 0 if slot == "failed_attempts" else None))
        if "item" not in said_now:
            events.append(SlotSet("item", None))
        # 「別卵が入ってなかったし、届くのも遅かった」: this one first, the other after it
        other = other_problem(str(tracker.latest_message.get("text") or ""), problem)
        events.append(SlotSet("next_problem", other))
        if other:
            from bot.actions.fallback import intent_choices  # fallback -> handoff -> this module

            labels = intent_choices().labels
            language = services.language(tracker)
            dispatcher.utter_message(
                response="utter_other_problem_later",
                first=labels[INTENT_OF[problem]][language],
                other=labels[INTENT_OF[other]][language],
            )
        return events


class ActionAskOrderId(Action):
    """Which order? Buttons with the customer's recent orders, or a request for the number."""

    def name(self) -> Text:
        return "action_ask_order_id"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        language = services.language(tracker)
        customer = customer_for(tracker)
        if customer is None:
            label = _OTHER_WAY_BUTTON.get(language, _OTHER_WAY_BUTTON["ja"])
            identify.ask(dispatcher, tracker, (label, inform_payload(order_id=identify.BY_PHONE)))
            if not tracker.get_slot("verify_step"):
                # beside "number / phone": link the shop account on LINE (the gateway's button)
                dispatcher.utter_message(json_message=account_link_offer())
            return []
        problem = tracker.get_slot("problem")
        mentions = item_mentions(tracker.get_slot("item"))
        if tracker.get_slot("order_proposal") != DECLINED:
            text = str(tracker.latest_message.get("text") or "")
            proposal = proposed_order(customer.id, problem, mentions, text)
            if proposal is not None:
                _confirm_order(dispatcher, tracker, proposal, language)
                return [SlotSet("order_proposal", proposal.number)]
        orders = candidate_orders(customer.id, problem, mentions)
        if not orders:
            dispatcher.utter_message(response="utter_no_matching_orders")
            return []
        dispatcher.utter_message(
            response="utter_choose_order",
            buttons=[
                {"title": order_button_label(o, language), "payload": inform_payload(order_id=o.number)} for o in orders
            ],
        )
        # The full lines tell similar orders apart (shop, time, total) beyond the short labels.
        dispatcher.utter_message(text="\n".join(order_line(o, language) for o in orders))
        return []


# An unknown customer without the number: the button sends this text (bot/actions/identify.py).
_OTHER_WAY_BUTTON = {
    "ja": "番号がわからない",
    "en": "I don't have it",
}
_CONFIRM_LABELS = {
    "ja": ("はい、#{number}です", "ちがう注文"),
    "en": ("Yes, #{number}", "A different order"),
}


def _confirm_order(dispatcher: CollectingDispatcher, tracker: Tracker, order: OrderView, language: str) -> None:
    """「#1001 とり政 渋谷店の別卵の件ですね？」 はい / ちがう: one tap instead of a list."""
    text, mentions = _item_message(tracker)
    if not text:  # no entity found: the names in the latest message
        text, mentions = str(tracker.latest_message.get("text") or ""), item_mentions(tracker.get_slot("item"))
    named = claimed_items(text, order.items, mentions) if tracker.get_slot("problem") in ITEM_PROBLEMS else []
    yes, no = _CONFIRM_LABELS.get(language, _CONFIRM_LABELS["ja"])
    dispatcher.utter_message(
        response="utter_confirm_order",
        order_number=order.number,
        shop=order.shop_name,
        when=day_and_clock(order.delivered_at or order.placed_at, language),
        items=item_names(named or order.items, language),
        buttons=[
            {"title": fit_label(yes.format(number=order.number)), "payload": inform_payload(order_id=order.number)},
            {"title": no, "payload": "/deny"},
        ],
    )


class ActionAskClaimItems(Action):
    """Which items? Buttons listing the chosen order's items."""

    def name(self) -> Text:
        return "action_ask_claim_items"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        language = services.language(tracker)
        order = services.repository().order_by_number(tracker.get_slot("order_id") or "")
        if order is None:  # cannot happen after validation; ask for the order again
            return [SlotSet("order_id", None)]
        # The order with its items and prices (a Flex card on LINE), then the question.
        dispatcher.utter_message(json_message={"order_card": order_card(order, language)})
        dispatcher.utter_message(
            response="utter_choose_items",
            order_number=order.number,
            shop=order.shop_name,
            buttons=[
                {"title": item_button_label(i, language), "payload": inform_payload(item=f"item:{i.item_id}")}
                for i in order.items
            ],
        )
        return []


class ValidateClaimForm(FormValidationAction):
    """Checks each answer of the claim form and decides what to ask next."""

    def name(self) -> Text:
        return "validate_claim_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        if tracker.get_slot("handoff_reason") or (tracker.get_slot("offers") or {}).get("notice") == WITHDRAWN:
            return []
        problem = tracker.get_slot("problem")
        slots = ["order_id"]
        if problem in ITEM_PROBLEMS:
            slots.append("claim_items")
        offers = tracker.get_slot("offers")
        has_nothing_to_offer = offers is not None and not offers.get("remedies")
        if problem != "check_order_status" and not has_nothing_to_offer:
            slots.append("remedy")
            chosen = tracker.get_slot("remedy")
            if chosen and tracker.get_slot("confirm_remedy") == chosen:
                slots.append("remedy_confirmed")  # "shall I go ahead?" before applying it
        return slots

    # --- order -----------------------------------------------------------------------
    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """An order number the customer wrote as one ("Order #2001 - ...", 「注文1001の」)
        even when the NLU did not tag it: they are never asked for what they already said.
        Only a number marked as an order's, so a price or a phone number is never taken."""
        if tracker.get_slot("order_id") or tracker.get_slot("requested_slot") == "order_id":
            return {}
        if any(e.get("entity") == "order_id" for e in tracker.latest_message.get("entities") or []):
            return {}
        number = marked_order_number(str(tracker.latest_message.get("text") or ""))
        return {"order_id": number} if number else {}

    def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        text = str(value or "")
        customer = customer_for(tracker)
        said = str(tracker.latest_message.get("text") or text)  # the whole message, not an entity
        intent = services.latest_intent(tracker)
        if (
            customer is None
            and not tracker.get_slot("verify_step")
            and not order_number_in(said)
            and (
                identify.has_no_number(text)
                or identify.has_no_number(said)
                or (identify.wants_other_way(said) and intent not in URGENT_INTENTS)
            )
            and intent != "report_safety_issue"
        ):
            # "番号がわからない" (the button, or typed, often read as frustration or "a person")
            return identify.start(tracker)
        escalation = _escalation(tracker, "order_id")
        if escalation:
            return escalation
        problem = tracker.get_slot("problem")
        order = None
        verified: Dict[Text, Any] = {}
        claim_message: Optional[Tuple[str, List[str]]] = None
        if customer is None:
            text = said
            step = tracker.get_slot("verify_step")
            if takes_back(tracker, remedy_wish(text)) and not order_number_in(text):
                return withdraw(dispatcher, "order_id")
            if step == identify.PHONE or (step is None and identify.phone_digits(text)):
                return identify.phone_answer(dispatcher, text) or _failed(tracker, "order_id", "identity_not_verified")
            if step == identify.SHOP:
                verified = identify.shop_answer(dispatcher, tracker, text)
                customer = customer_for(tracker)  # linked now, if the check passed
                if not verified.get("order_id") or customer is None:
                    return verified  # failed, or several orders: the proposal or the list next
                order = owned_order(verified["order_id"], customer.id)
                claim_message = _report_message(tracker)  # not the shop's name (牛丼太郎)
        proposal = tracker.get_slot("order_proposal")
        if customer is not None and proposal and proposal != DECLINED:
            proposed = owned_order(proposal, customer.id)
            if proposed is not None and _corrects_item(said, proposed):
                order = proposed  # "my mistake, the cola is here, it's the fries": that order, those items
            elif takes_back(tracker, remedy_wish(text)) and not order_number_in(text):
                return withdraw(dispatcher, "order_id")  # "やっぱりいいです", "no cancel please"
            else:
                answer = _answer_to_proposal(text, intent, proposal)
                if answer == "yes":
                    order = proposed
                elif answer == "no":  # not that one: the list of recent orders next, no miss
                    return {"order_id": None, "order_proposal": DECLINED, "failed_attempts": 0}
        if order is None and customer is not None:
            listed = candidate_orders(customer.id, problem, item_mentions(tracker.get_slot("item")))
            order = match_order(text, listed)
        number = order.number if order else order_number_in(text)
        if order is None and number:
            order = owned_order(number, customer.id if customer else None)
        if order is None:
            reading = remedy_wish(text)
            if not number and takes_back(tracker, reading):
                return withdraw(dispatcher, "order_id")  # "見つかりました" / "キャンセルせんといて"
            if not number and (reading.chosen or reading.refused):
                return {"order_id": None}  # "返金して": noted (the offer lists it first), ask again
            if number:
                dispatcher.utter_message(response="utter_order_not_found", order_number=number)
            elif customer is None and identify.wants_other_way(text):
                return identify.start(tracker)  # "番号がわからない": the phone number and the shop
            elif _acknowledges_or_asks(text, intent):
                # "わかりました、探します" / "where do I find it?": say where, count no miss
                dispatcher.utter_message(response="utter_order_number_where")
                return {"order_id": None}
            else:
                dispatcher.utter_message(response="utter_order_not_understood")
            return _failed(tracker, "order_id", "order_not_found")
        slots: Dict[Text, Any] = {**verified, "order_id": order.number, "failed_attempts": 0}
        if problem in ITEM_PROBLEMS:
            named = match_items(item_mentions(tracker.get_slot("item")), order.items)
            # "親子丼に別卵が付いていない": the claim is the egg, not every item named
            text, mentions = claim_message or _item_message(tracker)
            named = claimed_items(text, order.items, mentions) or named
            history = services.repository().customer_history(order.customer_id)
            if order_escalation(services.policy(), problem, order, history, services.now()):
                # Out of policy whichever items (e.g. too old): straight to a person.
                if named:
                    slots["claim_items"] = [str(i.item_id) for i in named]
                slots.update(_decision_slots(tracker, order, named or list(order.items), dispatcher))
            elif len(named) == 1:
                # One named item is the claim; with several ("親子丼に別卵が…") the
                # customer picks which from the buttons.
                slots["claim_items"] = [str(i.item_id) for i in named]
                slots.update(_decision_slots(tracker, order, named, dispatcher))
        elif (
            problem == "late_delivery"
            and order.status == "delivered"
            and minutes_late(order, services.now()) < services.policy().late_grace_minutes
            and _DELIVERY_QUESTION.search(normalize(_report_message(tracker)[0]).lower())
        ):
            # "Has my bowl been delivered yet?" read as late: it came on time, so say when (a
            # customer who never got it says so next). A statement that it came late when the
            # record says on time is not answered with the record: a person looks (the policy).
            slots["problem"] = "check_order_status"
        elif problem in ("late_delivery", "cancel_order"):
            slots.update(_decision_slots(tracker, order, list(order.items), dispatcher))
        return slots

    # --- items -----------------------------------------------------------------------
    def validate_claim_items(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        escalation = _escalation(tracker, "claim_items")
        if escalation:
            return escalation
        order = services.repository().order_by_number(tracker.get_slot("order_id") or "")
        if order is None:
            return {"claim_items": None, "order_id": None}
        mentions = item_mentions(value)
        entity_mentions = item_mentions(
            [e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == "item"]
        )
        chosen = match_items(entity_mentions, order.items) or match_items(mentions, order.items)
        said = str(tracker.latest_message.get("text") or "")
        reading = remedy_wish(said)
        if not chosen and takes_back(tracker, reading):
            return withdraw(dispatcher, "claim_items")
        if not chosen and (reading.chosen or reading.refused):
            return {"claim_items": None}  # a remedy wished for: noted, ask which item again
        if not chosen and _aside(dispatcher, tracker, said):
            return {"claim_items": None}  # answered; the item question again, no miss
        if not chosen:
            dispatcher.utter_message(response="utter_item_not_understood")
            return _failed(tracker, "claim_items", "repeated_misunderstanding")
        slots: Dict[Text, Any] = {"claim_items": [str(i.item_id) for i in chosen], "failed_attempts": 0}
        slots.update(_decision_slots(tracker, order, chosen, dispatcher))
        return slots

    # --- remedy ----------------------------------------------------------------------
    def validate_remedy(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A tap of a current offer chooses it. Typed text chooses only a remedy it names
        without a negation (bot/remedy_policy/reading.py); a remedy named with one is refused and
        not offered again; a retraction ends the claim with nothing applied."""
        escalation = _escalation(tracker, "remedy")
        if escalation:
            return escalation
        refused_before = [str(k) for k in tracker.get_slot("refused_remedies") or []]
        shown = [o["kind"] for o in (tracker.get_slot("offers") or {}).get("remedies", [])]
        offered = [k for k in shown if k not in refused_before]
        if value in offered and _tapped(tracker):  # a button of the current offer
            return chosen_remedy(tracker, str(value), tapped=True)
        wanted, _ = said_in_claim(tracker, offered)
        if wanted in offered and wanted != "cancel_order" and services.latest_intent(tracker) == "affirm":
            # "はい" to "ご希望の返金でよろしければ「はい」": the remedy asked for, shown and agreed to
            return chosen_remedy(tracker, wanted, tapped=True)
        reading = read_remedy(services.policy(), str(value or ""), offered)
        refused = refused_before + [k for k in reading.refused if k in shown and k not in refused_before]
        if reading.chosen:
            return {**chosen_remedy(tracker, reading.chosen, tapped=False), "refused_remedies": refused}
        if reading.retracted:
            return {**withdraw(dispatcher, "remedy"), "refused_remedies": shown}
        if services.latest_intent(tracker) == REFUSAL_INTENT and not reading.refused:
            refused = shown
        if tracker.get_slot("problem") == "cancel_order" and refused and all(k in refused for k in shown):
            # "キャンセルしなくて大丈夫です": not refusing a fix, keeping the order
            return {**withdraw(dispatcher, "remedy"), "refused_remedies": shown}
        if refused and all(k in refused for k in shown):
            return {"remedy": None, "refused_remedies": refused, "handoff_reason": "all_remedies_refused"}
        if len(refused) > len(refused_before):
            # some refused, others left: offer those again (no miss counted)
            return {"remedy": None, "refused_remedies": refused}
        if _aside(dispatcher, tracker, str(value or "")):
            return {"remedy": None}  # answered; the choices again, no miss
        dispatcher.utter_message(response="utter_remedy_not_understood")
        return _failed(tracker, "remedy", "repeated_misunderstanding")

    # --- confirmation --------------------------------------------------------------
    def validate_remedy_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Yes applies the chosen remedy; no applies nothing: a cancellation is taken back
        (the order stays), another remedy goes back to the choice."""
        escalation = _escalation(tracker, "remedy_confirmed")
        if escalation:
            return escalation
        kind = str(tracker.get_slot("remedy") or "")
        text = str(value or "")
        intent = services.latest_intent(tracker)
        reading = remedy_wish(text)
        said_no = intent == REFUSAL_INTENT or reading.retracted or kind in reading.refused
        if (intent == "affirm" or reading.chosen == kind) and not said_no:
            return {"remedy_confirmed": True, "failed_attempts": 0}  # "はい" / "返金でお願いします"
        if said_no:
            if tracker.get_slot("problem") == "cancel_order":
                return {**withdraw(dispatcher, "remedy_confirmed"), "remedy": None, "confirm_remedy": None}
            return {"remedy": None, "confirm_remedy": None, "remedy_confirmed": None, "failed_attempts": 0}
        shown = [o["kind"] for o in (tracker.get_slot("offers") or {}).get("remedies", [])]
        if reading.chosen in shown and reading.chosen != kind:  # "やっぱり返金で": that one instead
            return {**chosen_remedy(tracker, reading.chosen, tapped=False), "remedy_confirmed": None}
        if _aside(dispatcher, tracker, text):
            return {"remedy_confirmed": None}
        dispatcher.utter_message(response="utter_confirm_remedy_not_understood")
        return _failed(tracker, "remedy_confirmed", "repeated_misunderstanding")


_NOT_THAT_ORDER = re.compile(
    r"(ちが[ういく]|違[うい]|別の|べつの|ほかの|他の|それじゃな|そうじゃな|じゃない|いいえ|いや[、 ]|"
    r"\b(no|nope|not (that|this|it)|different|another|other|wrong order)\b)"
)


def _corrects_item(text: str, order: OrderView) -> bool:
    """ "Sorry, the cola is here, it's the fries that are missing": a retraction that names
    another item of the order as the problem corrects the claim, it does not end it."""
    return remedy_wish(text).retracted and bool(claimed_items(text, order.items, said_missing=True))


def _reports_problem(event: Dict[str, Any]) -> bool:
    """A customer message the claim began with (a problem reported, or a cancellation)."""
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
    return intent.startswith("report_") or intent == "cancel_order"


def _report_message(tracker: Tracker) -> Tuple[str, List[str]]:
    """The message that reported the problem, and the item words found in it: the latest
    one that named items ("I don't have the order number, sorry" read as a report names
    none, and must not hide "the onsen tamago was missing")."""
    bare: Optional[Tuple[str, List[str]]] = None
    for event in reversed(tracker.events):
        if event.get("event") == "user" and _reports_problem(event):
            entities = (event.get("parse_data") or {}).get("entities") or []
            values = item_mentions([e.get("value") for e in entities if e.get("entity") == "item"])
            if values:
                return str(event.get("text") or ""), values
            bare = bare or (str(event.get("text") or ""), values)
    return bare or _item_message(tracker)


def _answer_to_proposal(text: str, intent: Optional[str], number: str) -> Optional[str]:
    """ "yes", "no" or None (something else) in answer to "#1001 の別卵の件ですね？"."""
    said = normalize(text).lower()
    if number in said:
        return "yes"
    if intent == REFUSAL_INTENT or _NOT_THAT_ORDER.search(said):
        return "no"
    wish = remedy_wish(text)
    if intent == "affirm" or (wish.chosen and not wish.refused):
        return "yes"  # "持ってきてくれる？": going on with that order
    return None


# Questions asked inside the claim that are not its answer: the order's status, the choices.
_STATUS_QUESTION = re.compile(
    r"(いつ(頃|ごろ)?(届|とど|来|く[るれ]|着)|まだ(届|来)|今どこ|いまどこ|配達状況|"
    r"\b(when will|when does|when is it|where is (it|my)|eta|how long)\b)"
)
_OPTIONS_QUESTION = re.compile(
    r"(選択肢|せんたくし|どんな対応|どういう対応|何ができ|なにができ|どうしてもらえ|他の方法|ほかの方法|"
    r"\b(options?|choices|what can you do|what are my|other ways?)\b)"
)


def _aside(dispatcher: CollectingDispatcher, tracker: Tracker, text: str) -> bool:
    """「いつ届く？」 or "what are my options?" inside the claim: answered (the status of the
    claim's order; the choices are shown again by the question) without losing the claim."""
    said = normalize(text).lower()
    if services.latest_intent(tracker) == "check_order_status" or _STATUS_QUESTION.search(said):
        order = order_of_conversation(tracker)
        if order is not None:
            from bot.actions.remedies import tell_status  # remedies imports this module

            tell_status(dispatcher, order)
            return True
    return bool(_OPTIONS_QUESTION.search(said))


def _tapped(tracker: Tracker) -> bool:
    """A button tap: its payload is the message. Typed text never starts with "/" (the
    gateway strips it), so this cannot be typed."""
    return str(tracker.latest_message.get("text") or "").startswith("/")


def chosen_remedy(tracker: Tracker, kind: str, tapped: bool) -> Dict[Text, Any]:
    """The remedy chosen; whether it is confirmed before it is applied is the policy's."""
    offers = (tracker.get_slot("offers") or {}).get("remedies", [])
    amount = next((int(o.get("amount") or 0) for o in offers if o.get("kind") == kind), 0)
    confirm = services.policy().needs_confirmation(kind, amount, tapped)
    return {"remedy": kind, "failed_attempts": 0, "confirm_remedy": kind if confirm else None, "remedy_confirmed": None}


# "Ok, let me check" and questions about the order number, in answer to "which order?".
_ACK_OR_QUESTION = re.compile(
    r"(わかりました|分かりました|了解|りょうかい|探し|さがし|確認します|見てみ|みてみ|待って|まって|少々|しょうしょう|"
    r"どこ|何処|わから|分から|知らな|不明|番号って|[?？]|"
    r"\b(ok|okay|sure|let me (check|look|see|find)|one (moment|sec|second)|hold on|wait|where|how do i|"
    r"don'?t know|not sure|can'?t find|no idea)\b)"
)


def _acknowledges_or_asks(text: str, intent: Optional[str]) -> bool:
    return intent in ("affirm", "thank") or bool(_ACK_OR_QUESTION.search(text.lower()))


def _item_message(tracker: Tracker) -> Tuple[str, List[str]]:
    """The customer's latest message that named items, and the item words found in it."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        entities = (event.get("parse_data") or {}).get("entities") or []
        values = item_mentions([e.get("value") for e in entities if e.get("entity") == "item"])
        if values:
            return str(event.get("text") or ""), values
    return "", []


def remedy_wish(text: str) -> RemedyReading:
    """What a message outside the remedy question says about remedies (any the policy
    knows; a digit there answers another question, so it chooses nothing)."""
    return read_remedy(services.policy(), text, list(services.policy().remedies), by_number=False)


def said_in_claim(tracker: Tracker, offered: List[str]) -> Tuple[Optional[str], Tuple[str, ...]]:
    """The remedy the customer asked for, and the ones they refused, in the messages of this
    claim before the remedy question (back to the one that reported the problem)."""
    wanted: Optional[str] = None
    refused: Tuple[str, ...] = ()
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        reading = read_remedy(services.policy(), str(event.get("text") or ""), offered, by_number=False)
        wanted = wanted or reading.chosen
        refused = refused + tuple(k for k in reading.refused if k not in refused)
        if _reports_problem(event):
            break
    return wanted, refused


WITHDRAWN = "withdrawn"  # offers["notice"] of a claim the customer took back


def takes_back(tracker: Tracker, reading: RemedyReading) -> bool:
    """The customer takes the claim back: a retraction, or "don't cancel" in a cancellation."""
    return reading.retracted or (tracker.get_slot("problem") == "cancel_order" and "cancel_order" in reading.refused)


def withdraw(dispatcher: CollectingDispatcher, slot: str) -> Dict[Text, Any]:
    """The customer took the claim back: say nothing was done, end the form, apply nothing."""
    dispatcher.utter_message(response="utter_claim_withdrawn")
    return {slot: None, "failed_attempts": 0, "offers": {"remedies": [], "needs_approval": [], "notice": WITHDRAWN}}


# Words that ask for a person; without one, "store credit instead" read as request_human is
# the remedy it names.
_PERSON_WORDS = re.compile(
    r"(人|担当|オペレーター|スタッフ|店長|責任者|電話|有人|"
    r"\b(human|person|people|agent|someone|somebody|staff|operator|manager|representative|call|real)\b)"
)
URGENT_INTENTS = ("report_safety_issue", "express_frustration")
# A question whether the order has come ("届きましたか？", "has it been delivered yet?").
_DELIVERY_QUESTION = re.compile(
    r"(ました?か|てますか|いますか|た[?？]|[?？]\s*$|\b(has|have|did|is|was)\b.*[?？]|\byet\b)"
)
_FOUND_IT = re.compile(
    r"(見つか|見つけ|みつか|みつけ|ありました|あった|入ってました|入ってた|"
    r"\bfound (it|them)\b|\b(was|were) (there|in the)\b)"
)


def _escalation(tracker: Tracker, slot: str) -> Optional[Dict[Text, Any]]:
    """A request for a person (or frustration, safety, payment) answers any question."""
    reason = escalation.for_intent(services.latest_intent(tracker))
    found_it = _FOUND_IT.search(normalize(str(tracker.latest_message.get("text") or "")).lower())
    if reason == "frustration" and found_it:
        return None  # "oh wait, never mind, found them": relief, not anger (the retraction is read next)
    if reason == "safety" and found_it and not tracker.latest_message.get("safety_signals"):
        # the same relief guessed as "safety" by the classifier alone: no allergy, illness or
        # injury word was found (bot/safety_lexicon.yml), so it is the retraction, read next
        return None
    if reason == "request_human":
        said = str(tracker.latest_message.get("text") or "")
        if remedy_wish(said).chosen and not _PERSON_WORDS.search(normalize(said).lower()):
            return None  # a remedy named, no person asked for: the question's answer
    if reason == "payment_or_account":
        # "返金してください" reads as a payment question; inside a claim it is a remedy wished
        # for (validate_remedy chooses it, the other questions note it): no person for that
        said = str(tracker.latest_message.get("text") or "")
        wish = remedy_wish(said)
        if wish.chosen or wish.refused or wish.retracted:
            return None
    return {slot: None, "handoff_reason": reason} if reason else None


def _failed(tracker: Tracker, slot: str, reason: str) -> Dict[Text, Any]:
    """Ask again once; the second miss in a row goes to a person (others stop at two)."""
    attempts = int(tracker.get_slot("failed_attempts") or 0) + 1
    if escalation.after_misunderstood_answer(attempts, reason):
        return {slot: None, "failed_attempts": attempts, "handoff_reason": reason}
    return {slot: None, "failed_attempts": attempts}


def order_of_conversation(tracker: Tracker) -> Optional[OrderView]:
    """The order in the `order_id` slot, only if this conversation may see it. Outside the
    claim form nothing validates that slot (its from_entity mapping fills it on any turn,
    e.g. `/request_human{"order_id": "1101"}`), so readers outside the form use this."""
    number = tracker.get_slot("order_id")
    if not number:
        return None
    customer = customer_for(tracker)
    return owned_order(str(number), customer.id if customer else None)


def owned_order(number: str, customer_id: Optional[int]) -> Optional[OrderView]:
    """An order this conversation may see. Another customer's order is "not found", so
    that order numbers cannot be probed; guests (no LINE account) may use an order placed
    without one."""
    repository = services.repository()
    order = repository.order_by_number(number)
    if order is None:
        return None
    if customer_id is not None:
        return order if order.customer_id == customer_id else None
    owner = repository.customer_by_id(order.customer_id)
    return order if owner is not None and owner.line_user_id is None else None


def _decision_slots(
    tracker: Tracker, order: OrderView, items: Sequence, dispatcher: Optional[CollectingDispatcher] = None
) -> Dict[Text, Any]:
    """Asks the policy what may be offered and opens the case the remedy will belong to;
    counts the claim for recurring problems (bot/actions/recurring.py): an operations alert
    goes out with the answer, and a customer's Nth problem goes to a person."""
    problem = tracker.get_slot("problem")
    if problem == "check_order_status":
        return {}
    repository = services.repository()
    now = services.now()
    decision = decide(
        services.policy(), problem, order, list(items), repository.customer_history(order.customer_id), now
    )
    item_ids = [i.item_id for i in items]
    case_id = tracker.get_slot("case_id")
    claim = repository.claim(str(case_id)) if case_id else None
    if claim is not None and claim.customer_id == order.customer_id and claim.order_number == order.number:
        # The case's items are what a remedy is re-decided from when it is applied.
        repository.update_claim_items(claim.case_number, item_ids, now)
    else:
        case_id = repository.open_claim(order.customer_id, order.number, problem, item_ids, now)
    offers = {
        "remedies": [o.as_dict() for o in decision.offers],
        "needs_approval": [o.as_dict() for o in decision.needs_approval],
        "notice": decision.notice,
    }
    slots: Dict[Text, Any] = {"case_id": case_id, "offers": offers}
    reason = escalation.for_decision(decision)
    alerts, repetition = recurring.on_claim(case_id, order.customer_id, now)
    if dispatcher is not None:
        for alert in alerts:  # for the operations channel; the gateway never shows it on LINE
            dispatcher.utter_message(json_message={OPS_ALERT: alert.to_dict()})
    if repetition is not None and reason in recurring.REPLACEABLE_REASONS:
        reason = recurring.RECURRING_REASON
    if reason:
        slots["handoff_reason"] = reason
    return slots
