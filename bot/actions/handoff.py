"""Handing a case to a person, with everything the bot learned.

The customer never repeats themselves: the case context carries who they are, which order
and items, the problem, what was offered and refused, why the bot escalated, the
frustration score with its reasons (bot/frustration.py), and the whole transcript. It is
recorded in the orders database and sent to the gateway as a custom payload
(`{"handoff": {...}}`), which opens the agents' thread. Rasa then pauses the conversation
until an agent hands it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import escalation
from bot.actions import recurring, services
from bot.actions.case_record import keep_transcript
from bot.actions.claims import (
    WITHDRAWN,
    ValidateClaimForm,
    chosen_remedy,
    customer_for,
    order_of_conversation,
    remedy_wish,
)
from bot.actions.decision import CaseNow, case_now
from bot.actions.follow_up import promise_flags
from bot.audit.transcript import turns_from_events
from bot.formatting import yen
from bot.frustration import Assessment, assess
from bot.remedy_policy import available_combinations, combination_value
from bot.remedy_policy.reading import read_remedy
from contracts.case_context import (
    RECURRING,
    CaseContext,
    CaseItem,
    CustomerRef,
    Frustration,
    GoodwillAllowance,
    OfferedCombination,
    OfferedRemedy,
    OrderSummary,
    Turn,
)
from contracts.vocabulary import combination_name

# Reasons that have their own `utter_handoff_<reason>` response; others use the generic one.
GENERIC_REASON = "no_remedy_available"


class ActionHandoff(Action):
    """Runs when a rule decides a person is needed (asked for, frustration, safety, payment),
    or when the frustration score reaches its threshold (bot/components/frustration_policy.py)."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        reason = escalation.for_intent(services.latest_intent(tracker))
        if reason is None and frustration_of(tracker).hand_off:
            reason = "frustration"  # the frustration policy decided: the score is the reason
        reason = reason or tracker.get_slot("handoff_reason") or "request_human"
        if reason == "payment_or_account":
            answered = _remedy_answer(dispatcher, tracker)
            if answered is not None:
                return answered
        events: List[EventType] = []
        if (tracker.active_loop or {}).get("name"):
            # Handed over in the middle of a claim: the form's question is not pending any
            # more (as when the form itself hands off); the agent takes it from here.
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        return events + hand_off(dispatcher, tracker, reason, domain)


def _remedy_answer(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[EventType]]:
    """ "返金してください" / "don't refund it, I found it" read as a payment question while
    the claim asks which remedy: an answer to that question, not a reason for a person.
    The chosen remedy is applied by action_complete_claim, re-decided by the engine."""
    if (tracker.active_loop or {}).get("name") != "claim_form":
        return None
    if tracker.get_slot("requested_slot") in ("order_id", "claim_items"):
        # a remedy wished for before the order or item is known: the form goes on (its
        # validation notes the wish without counting a miss; the offer lists it first)
        wish = remedy_wish(str(tracker.latest_message.get("text") or ""))
        return [FollowupAction("claim_form")] if wish.chosen or wish.refused else None
    if tracker.get_slot("requested_slot") == "remedy_confirmed":
        # "やっぱり返金はやめて" / "store credit instead" at "shall I go ahead?": its answer
        said = str(tracker.latest_message.get("text") or "")
        result = ValidateClaimForm().validate_remedy_confirmed(said, dispatcher, tracker, {})
        events = [SlotSet(name, value) for name, value in result.items()]
        ends = (
            result.get("remedy_confirmed") is True
            or result.get("handoff_reason")
            or ((result.get("offers") or {}).get("notice") == WITHDRAWN)
        )
        if ends:
            return events + [ActiveLoop(None), SlotSet("requested_slot", None), FollowupAction("action_complete_claim")]
        return events + [FollowupAction("claim_form")]
    if tracker.get_slot("requested_slot") != "remedy":
        return None
    refused = set(tracker.get_slot("refused_remedies") or [])
    offered = [
        o.get("kind")
        for o in (tracker.get_slot("offers") or {}).get("remedies", [])
        if isinstance(o, dict) and o.get("kind") not in refused
    ]
    reading = read_remedy(services.policy(), str(tracker.latest_message.get("text") or ""), offered)
    done = [ActiveLoop(None), SlotSet("requested_slot", None), FollowupAction("action_complete_claim")]
    if reading.retracted:
        dispatcher.utter_message(response="utter_claim_withdrawn")
        return [SlotSet("offers", {"remedies": [], "needs_approval": [], "notice": WITHDRAWN})] + done
    if reading.chosen:
        chosen = chosen_remedy(tracker, reading.chosen, tapped=False)
        events = [SlotSet(name, value) for name, value in chosen.items()]
        if chosen["confirm_remedy"]:
            return events + [FollowupAction("claim_form")]  # the form asks "shall I go ahead?"
        return events + done
    return None


def frustration_of(tracker: Tracker) -> Assessment:
    """The conversation's frustration score, with the weights of bot/remedy_policy.yml."""
    return assess(tracker.events, services.policy().frustration)


def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, domain: Optional[DomainDict] = None
) -> List[EventType]:
    """Tells the customer what happens next, records the case and pauses the conversation."""
    now = services.now()
    case = build_case_context(tracker, reason, now)
    context = case.to_dict()
    services.repository().record_handoff(case.case_id, case.customer.customer_id, reason, context, now)
    said = _acknowledge_repetition(dispatcher, tracker, case, now) if reason == recurring.RECURRING_REASON else False
    if not said:
        response = f"utter_handoff_{reason}"
        if reason == recurring.RECURRING_REASON or (domain is not None and response not in domain.get("responses", {})):
            response = f"utter_handoff_{GENERIC_REASON}"
        dispatcher.utter_message(response=response)
    dispatcher.utter_message(**wait_message(now, services.language(tracker)))
    dispatcher.utter_message(json_message={"handoff": context})
    keep_transcript(tracker, case.case_id, dispatcher, domain)
    return [
        SlotSet("handoff_reason", reason),
        SlotSet("case_id", case.case_id),
        ConversationPaused(),
    ]


def _acknowledge_repetition(
    dispatcher: CollectingDispatcher, tracker: Tracker, case: CaseContext, now: datetime
) -> bool:
    """A customer's Nth problem: "今回で3回目のご連絡です" (bot/remedy_policy.yml
    `recurring.acknowledgement`), in place of the reason's own message; False when there is
    nothing to say (no text, or the count no longer holds)."""
    repetition = recurring.repetition_of(case.case_id, case.customer.customer_id, now)
    text = recurring.acknowledgement(repetition, services.language(tracker)) if repetition else None
    if not text:
        return False
    dispatcher.utter_message(text=text)
    return True


def wait_message(now: datetime, language: str) -> Dict[str, Any]:
    """How long until a person answers (bot/handoff.yml): the usual wait within working
    hours, otherwise when the team starts again."""
    hours = services.hours()
    if hours.is_open(now):
        return {"response": "utter_handoff_wait", "wait_minutes": hours.usual_wait_minutes}
    opens = hours.next_opening(now)
    today = now.astimezone(hours.timezone).date()
    if language == "en":
        relative = {today: "today", today + timedelta(days=1): "tomorrow"}.get(opens.date())
        opens_at = f"{opens:%H:%M} {relative}" if relative else f"{opens:%a %b} {opens.day}, {opens:%H:%M}"
    else:
        day = (
            "明日"
            if opens.date() == today + timedelta(days=1)
            else ("本日" if opens.date() == today else f"{opens.month}月{opens.day}日")
        )
        opens_at = f"{day}{opens:%H:%M}"
    return {
        "response": "utter_handoff_wait_closed",
        "opens_at": opens_at,
        "open_time": f"{hours.open:%H:%M}",
        "close_time": f"{hours.close:%H:%M}",
    }


def build_case_context(tracker: Tracker, reason: str, now: datetime) -> CaseContext:
    """Everything an agent needs to take over without asking the customer again."""
    repository = services.repository()
    # Only an order this conversation may see: the slot itself is not validated outside the
    # claim form, and the card must not show agents another customer's order.
    order = order_of_conversation(tracker)
    customer = customer_for(tracker)
    if customer is None and order is not None:
        customer = repository.customer_by_id(order.customer_id)
    claimed_ids = {int(i) for i in tracker.get_slot("claim_items") or []}
    # What the agent reads as offered and priced is the engine's, for the case on record:
    # the `offers` slot is not trusted for amounts (anyone reaching Rasa's API can set it).
    case = case_now(tracker)
    offered = [OfferedRemedy(**o.as_dict()) for o in case.decision.offers] if case else []
    needing_approval = [OfferedRemedy(**o.as_dict()) for o in case.decision.needs_approval] if case else []
    refused = tracker.get_slot("refused_remedies") or []
    problem = tracker.get_slot("problem")
    case_id = tracker.get_slot("case_id") or repository.open_claim(
        customer.id if customer else None,
        order.number if order else None,
        problem or "handoff",
        sorted(claimed_ids),
        now,
    )
    items = [
        CaseItem(
            item_id=i.item_id,
            name_ja=i.name_ja,
            name_en=i.name_en,
            unit_price=i.unit_price,
            quantity=i.quantity,
            claimed=i.item_id in claimed_ids,
        )
        for i in (order.items if order else ())
    ]
    metadata = tracker.get_slot("session_started_metadata") or {}
    context = CaseContext(
        case_id=str(case_id),
        reason=reason,
        created_at=now.isoformat(),
        customer=CustomerRef(
            line_user_id=tracker.sender_id,
            customer_id=customer.id if customer else None,
            display_name=tracker.get_slot("customer_name")
            or metadata.get("display_name")
            or (customer.display_name if customer else None),
            language=services.language(tracker),
        ),
        problem=problem,
        order=_order_summary(order),
        items=items,
        remedies_offered=offered,
        remedies_refused=list(refused),
        remedies_needing_approval=needing_approval,
        combinations=offered_combinations(case) if case else [],
        goodwill=goodwill_allowance(str(case_id), order is not None, customer is not None),
        safety_signals=list(tracker.latest_message.get("safety_signals", [])),
        frustration=Frustration(**frustration_of(tracker).as_dict()),
        transcript=transcript(tracker),
        timezone=str(services.hours().timezone),
    )
    # "promised 18:04, not arrived" (the follow-up's answer on record), whatever the reason
    context.flags, context.promise = promise_flags(str(case_id))
    # the customer's Nth problem in the window, whatever the reason: the agent sees the earlier cases
    repetition = recurring.repetition_of(str(case_id), customer.id if customer else None, now)
    if repetition is not None:
        context.flags = [*context.flags, RECURRING]
        context.earlier_cases = list(repetition.earlier_cases)
    context.summary = summary_line(context)
    return context


def offered_combinations(case: CaseNow) -> List[OfferedCombination]:
    """The combinations an agent may apply to the case now (bot/remedy_policy.yml `combinations:`),
    priced by the engine; none once the case has a remedy (one set of remedies per case)."""
    policy = services.policy()
    if services.repository().remedies_for_case(case.claim.case_number):
        return []
    return [
        OfferedCombination(
            name=combination_name([o.kind for o in offers]),
            parts=[OfferedRemedy(**o.as_dict()) for o in offers],
            # worth more than an agent's own limit: a supervisor approves too
            needs_approval=combination_value(policy, offers, case.items) > policy.agent_approval_limit,
        )
        for offers in available_combinations(policy, case.decision, case.order, case.items, case.now)
    ]


def goodwill_allowance(case_id: str, has_order: bool, has_customer: bool) -> GoodwillAllowance:
    """What the Goodwill modal may offer for the case (bot/remedy_policy.yml `goodwill:`): nothing
    for an unknown customer or once a goodwill is on record; without an order, only what
    goes to the customer's account (bot/actions/agent.py refuses the rest anyway)."""
    rule = services.policy().goodwill
    if rule is None or not has_customer or services.repository().goodwill_for_case(case_id) is not None:
        return GoodwillAllowance()
    kinds = list(rule.kinds_for(has_order))
    if not kinds:
        return GoodwillAllowance()
    return GoodwillAllowance(
        kinds=kinds,
        agent_limit=rule.agent_limit,
        max_amount=rule.max_amount,
        reason_max_length=rule.reason_max_length,
    )


def _order_summary(order) -> Optional[OrderSummary]:
    if order is None:
        return None
    return OrderSummary(
        number=order.number,
        shop=order.shop_name,
        kind=order.kind,
        status=order.status,
        placed_at=order.placed_at.isoformat(),
        promised_at=order.promised_at.isoformat() if order.promised_at else None,
        delivered_at=order.delivered_at.isoformat() if order.delivered_at else None,
        delivery_fee=order.delivery_fee,
        total=order.total,
    )


def summary_line(context: CaseContext) -> str:
    """One line for the top of the agent's card, e.g.
    "safety | missing_item #1001: 別卵 ¥80 | offered send_item, refund_item | refused all"."""
    parts = [context.reason]
    what = context.problem or "no claim"
    if context.order:
        claimed = context.claimed_items or context.items
        names = "、".join(f"{i.name_ja} {yen(i.total)}" for i in claimed)
        what += f" #{context.order.number}: {names}"
    parts.append(what)
    if context.remedies_offered:
        # a recurring customer went to a person before any offer: these are the agent's to apply
        shown = "not offered yet, may apply " if context.reason == recurring.RECURRING_REASON else "offered "
        parts.append(shown + ", ".join(o.kind for o in context.remedies_offered))
    if context.remedies_refused:
        parts.append("refused " + ", ".join(context.remedies_refused))
    frustration = context.frustration
    if frustration.reasons:
        signals = ", ".join(dict.fromkeys(r["signal"] for r in frustration.reasons))
        parts.append(f"frustration {frustration.score:.2f}/{frustration.threshold:.2f}: {signals}")
    return " | ".join(parts)


def transcript(tracker: Tracker) -> List[Turn]:
    """Customer, bot and agent turns of this conversation, oldest first, as the customer saw
    them: a tapped button is its label (「#1001 親子丼ほか2点」), never its payload (one
    reading of the events with the audit's: bot/audit/transcript.py)."""
    return [
        Turn(role=t["role"], text=t["text"], time=t["time"], intent=t.get("intent"))
        for t in turns_from_events(tracker.events)
    ]
