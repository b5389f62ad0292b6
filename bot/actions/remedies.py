"""Offering remedies and applying the chosen one exactly once.

The `offers` slot only says what was shown. What is applied is decided again at the moment
of applying (`bot/actions/decision.py`): only a remedy the engine offers for the case now
is applied, at the engine's amount and time, never at one taken from a slot, a payload or
a request. The repository applies one remedy per case number, so a second tap, a retried
request or a restarted action server never applies it twice.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import services
from bot.actions.case_record import keep_transcript
from bot.actions.claims import ITEM_PROBLEMS, WITHDRAWN, customer_for, inform_payload, owned_order, said_in_claim
from bot.actions.decision import CaseNow, case_now
from bot.actions.fallback import intent_choices
from bot.actions.follow_up import follow_up_payload
from bot.actions.handoff import hand_off
from bot.actions.problems import INTENT_OF
from bot.actions.responses import response_text
from bot.formatting import clock, item_names
from bot.remedy_policy import render_button, render_confirmations, render_label
from bot.remedy_policy.types import ItemView, OrderView, RemedyOffer

log = logging.getLogger(__name__)


def offer_from_dict(data: Dict[Text, Any]) -> RemedyOffer:
    eta = data.get("eta")
    return RemedyOffer(
        kind=data["kind"],
        amount=int(data["amount"]),
        eta=datetime.fromisoformat(eta) if eta else None,
        needs_approval=bool(data.get("needs_approval")),
    )


def claim_items(tracker: Tracker, order: OrderView) -> List[ItemView]:
    """The items the claim is about (the whole order for late delivery and cancellation)."""
    chosen = {int(i) for i in tracker.get_slot("claim_items") or []}
    return [i for i in order.items if i.item_id in chosen] or list(order.items)


class ActionAskRemedy(Action):
    """Offers the remedies the policy allows, each with its real amount or time."""

    def name(self) -> Text:
        return "action_ask_remedy"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        language = services.language(tracker)
        order = services.repository().order_by_number(tracker.get_slot("order_id") or "")
        shown = [offer_from_dict(o) for o in (tracker.get_slot("offers") or {}).get("remedies", [])]
        # What the claim's messages already said: "返金してほしい" first, "クーポンはいらない" gone.
        wanted, refused_in_claim = said_in_claim(tracker, [o.kind for o in shown])
        refused = set(tracker.get_slot("refused_remedies") or []) | set(refused_in_claim)
        offers = [o for o in shown if o.kind not in refused]  # a refused remedy is not offered again
        offers.sort(key=lambda o: o.kind != wanted)  # stable: the policy's order otherwise
        events: List[EventType] = []
        if refused_in_claim and offers:
            events.append(SlotSet("refused_remedies", sorted(refused)))
        if order is None or not offers:
            return []
        items = claim_items(tracker, order)
        now = services.now()
        policy = services.policy()
        labels = [render_label(policy, o, language, items, now) for o in offers]
        options = "\n".join(f"{n}. {label}" for n, label in enumerate(labels, start=1))
        buttons = [
            {"title": render_button(policy, o, language, items, now), "payload": inform_payload(remedy=o.kind)}
            for o in offers
        ]
        # The same choices as a card (a Flex bubble on LINE): each one's amount or time in
        # full above its button; the first is the one the policy recommends.
        dispatcher.utter_message(
            json_message={
                "remedy_card": {
                    "title": item_names(items, language)
                    if tracker.get_slot("problem") in ITEM_PROBLEMS
                    else f"#{order.number}",
                    "alt_text": options,
                    "options": [
                        {"label": b["title"], "detail": label, "payload": b["payload"], "recommended": n == 0}
                        for n, (b, label) in enumerate(zip(buttons, labels))
                    ],
                }
            }
        )
        buttons.append({"title": response_text(domain, "utter_refuse_all_button", language), "payload": "/deny"})
        if wanted and offers[0].kind == wanted and wanted != "cancel_order":
            # what they asked for, first: a "はい" takes it (validate_remedy), the others stay
            dispatcher.utter_message(response="utter_wished_remedy_first", offer=labels[0])
        if tracker.get_slot("problem") in ITEM_PROBLEMS:
            dispatcher.utter_message(
                response="utter_offer_remedies", items=item_names(items, language), options=options, buttons=buttons
            )
        else:
            dispatcher.utter_message(
                response="utter_offer_remedies_order", order_number=order.number, options=options, buttons=buttons
            )
        return events


_CONFIRM_BUTTONS = {
    # (yes, no) per language; a cancellation says what "no" keeps.
    "ja": (("はい、キャンセルする", "キャンセルしない"), ("はい、お願いします", "ほかの方法にする")),
    "en": (("Yes, cancel it", "No, keep the order"), ("Yes, go ahead", "Something else")),
}


class ActionAskRemedyConfirmed(Action):
    """ "注文をキャンセルして全額¥1,730を返金、でよろしいですか？" with yes / no buttons."""

    def name(self) -> Text:
        return "action_ask_remedy_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        language = services.language(tracker)
        kind = str(tracker.get_slot("remedy") or "")
        order = services.repository().order_by_number(tracker.get_slot("order_id") or "")
        shown = [offer_from_dict(o) for o in (tracker.get_slot("offers") or {}).get("remedies", [])]
        offer = next((o for o in shown if o.kind == kind), None)
        if order is None or offer is None:  # nothing to confirm: back to the choice
            return [SlotSet("remedy", None), SlotSet("confirm_remedy", None)]
        label = render_label(services.policy(), offer, language, claim_items(tracker, order), services.now())
        cancel_labels, other_labels = _CONFIRM_BUTTONS.get(language, _CONFIRM_BUTTONS["ja"])
        yes, no = cancel_labels if kind == "cancel_order" else other_labels
        dispatcher.utter_message(
            response="utter_confirm_remedy",
            offer=label,
            buttons=[{"title": yes, "payload": "/affirm"}, {"title": no, "payload": "/deny"}],
        )
        return []


class ActionCompleteClaim(Action):
    """Ends the claim form: hand off, apply the remedy, or tell the order's status."""

    def name(self) -> Text:
        return "action_complete_claim"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        reason = tracker.get_slot("handoff_reason")
        if reason:
            return hand_off(dispatcher, tracker, reason)
        offers = tracker.get_slot("offers") or {}
        if offers.get("notice") == WITHDRAWN:
            # the customer took the claim back (validate_claim_form said so): nothing applied
            return ask_what_else(dispatcher, tracker)
        order = owned_order(str(tracker.get_slot("order_id") or ""), _customer_id(tracker))
        if order is None:
            return hand_off(dispatcher, tracker, "order_not_found")
        if tracker.get_slot("problem") == "check_order_status":
            tell_status(dispatcher, order)
        elif offers.get("notice") == "not_late_yet":
            dispatcher.utter_message(
                response="utter_not_late_yet",
                order_number=order.number,
                shop=order.shop_name,
                eta_time=clock(order.promised_at),
            )
        else:
            case = case_now(tracker)
            kind = str(tracker.get_slot("remedy") or "")
            refused = kind in (tracker.get_slot("refused_remedies") or [])
            chosen = case.offered(kind) if case is not None and not refused else None
            if case is None or chosen is None:
                # Not offered now (e.g. the time for a fresh delivery passed): a person decides.
                log.info("remedy %r is not offered now for this case: handed to a person", kind)
                return hand_off(dispatcher, tracker, "no_remedy_available")
            must_confirm = kind in services.policy().confirm_remedies or tracker.get_slot("confirm_remedy") == kind
            if must_confirm and tracker.get_slot("remedy_confirmed") is not True:
                # The form asks first; a tracker without the customer's yes applies nothing.
                log.warning("remedy %r was not confirmed by the customer: nothing applied", kind)
                return hand_off(dispatcher, tracker, "no_remedy_available")
            apply_and_confirm(dispatcher, tracker, case, chosen)
        return ask_what_else(dispatcher, tracker)


_THAT_IS_ALL = {"ja": "いいえ、大丈夫です", "en": "No, that's all"}


def ask_what_else(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """ "Anything else?", or the other problem the first message told of, as a button."""
    other = tracker.get_slot("next_problem")
    if other not in INTENT_OF:
        dispatcher.utter_message(response="utter_anything_else")
        return []
    language = services.language(tracker)
    label = intent_choices().labels[INTENT_OF[other]][language]
    order = tracker.get_slot("order_id")
    # the same order goes with it (the customer told of both in one message about it)
    payload = f"/{INTENT_OF[other]}" + (json.dumps({"order_id": str(order)}) if order else "")
    no = _THAT_IS_ALL.get(language, _THAT_IS_ALL["ja"])
    dispatcher.utter_message(
        response="utter_other_problem_now",
        problem=label,
        buttons=[{"title": label, "payload": payload}, {"title": no, "payload": "/deny"}],
    )
    return [SlotSet("next_problem", None)]


def _customer_id(tracker: Tracker) -> Optional[int]:
    customer = customer_for(tracker)
    return customer.id if customer else None


def apply_and_confirm(dispatcher: CollectingDispatcher, tracker: Tracker, case: CaseNow, offer: RemedyOffer) -> None:
    """Applies the engine's `offer` once for this case and says what happens, when, and
    how much."""
    case_id = case.claim.case_number
    repository = services.repository()
    applied = repository.apply_remedy(case_id, offer, case.now)
    # After a retry the remedies on record are the ones to confirm, whatever was asked now
    # (every part, when an agent applied a combination).
    records = [applied] if applied.created else (repository.remedies_for_case(case_id) or [applied])
    on_record = [RemedyOffer(kind=r.kind, amount=r.amount, eta=r.eta) for r in records]
    confirmation = render_confirmations(
        services.policy(),
        on_record,
        services.language(tracker),
        case.items,
        case_id,
        applied.applied_at,
    )
    response = "utter_remedy_applied" if applied.created else "utter_remedy_already_applied"
    dispatcher.utter_message(response=response, confirmation=confirmation, case_id=case_id)
    keep_transcript(tracker, case_id, dispatcher)
    # Something arrives at a promised time: the gateway asks once after it (bot/actions/follow_up.py).
    follow_up = follow_up_payload(services.policy(), records, case_id, services.language(tracker))
    if follow_up is not None:
        dispatcher.utter_message(json_message=follow_up)


def tell_status(dispatcher: CollectingDispatcher, order: OrderView) -> None:
    now = services.now()
    common = {"order_number": order.number, "shop": order.shop_name, "eta_time": clock(order.promised_at)}
    if order.status == "delivered":
        dispatcher.utter_message(response="utter_status_delivered", delivered_time=clock(order.delivered_at), **common)
    elif order.status == "out_for_delivery" and order.promised_at and now > order.promised_at:
        late = int((now - order.promised_at).total_seconds() // 60)
        dispatcher.utter_message(response="utter_status_late", late_minutes=late, **common)
    else:
        dispatcher.utter_message(response=f"utter_status_{order.status}", **common)
