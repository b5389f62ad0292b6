"""Recurring problems (bot/remedy_policy.yml `recurring:`, bot/actions/recurring.py), on real
rasa-sdk Trackers against a real (SQLite) orders database: the egg missing from three
orders of one shop raises one operations alert; a customer's third problem within 30 days
is acknowledged and goes to a person flagged "recurring"."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions import services
from bot.actions.claims import ValidateClaimForm
from bot.actions.remedies import ActionCompleteClaim
from bot.remedy_policy import PolicyError, parse_policy
from bot.store import make_engine
from bot.store.models import Customer, Order, OrderItem, RecurringAlert
from contracts.ops_alerts import OPS_ALERT, without_ops_alerts

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
POLICY_TEXT = (ROOT / "bot" / "remedy_policy.yml").read_text(encoding="utf-8")
DEMO = "U00000000000000000000000000000001"
EMMA = "U00000000000000000000000000000002"
SHOP = "とり政 渋谷店"
EGG = ("EXTRA-EGG", "別卵", "Extra egg", "topping", 80)
OYAKODON = ("OYAKODON", "親子丼", "Oyakodon", "dish", 980)

pytestmark = pytest.mark.usefixtures("orders_db")


# --- helpers ---------------------------------------------------------------------------------


def add_customer(line_user_id: str, name: str, language: str = "ja") -> int:
    services.repository()  # the database exists and is seeded first
    now = datetime.now(timezone.utc)
    with Session(make_engine(), future=True) as session, session.begin():
        customer = Customer(line_user_id=line_user_id, display_name=name, language=language, created_at=now)
        session.add(customer)
        session.flush()
        return customer.id


def add_order(customer_id: int, number: str, shop: str = SHOP, items: Sequence[Tuple] = (OYAKODON, EGG)) -> None:
    """A food order delivered ten minutes ago (fresh enough for every remedy)."""
    services.repository()
    now = datetime.now(timezone.utc)
    with Session(make_engine(), future=True) as session, session.begin():
        session.add(
            Order(
                number=number,
                customer_id=customer_id,
                kind="food_delivery",
                status="delivered",
                shop_name=shop,
                placed_at=now - timedelta(minutes=55),
                promised_at=now - timedelta(minutes=5),
                delivered_at=now - timedelta(minutes=10),
                delivery_fee=300,
                items=[
                    OrderItem(sku=s, name_ja=ja, name_en=en, category=c, unit_price=p, quantity=1)
                    for s, ja, en, c, p in items
                ],
            )
        )


def tracker(sender: str, text: str, slots: Dict[str, Any], language: str = "ja") -> Tracker:
    latest = {"intent": {"name": "inform", "confidence": 0.99}, "text": text, "entities": []}
    return Tracker(
        sender,
        {"language": language, "failed_attempts": 0, **slots},
        latest,
        [{"event": "user", "text": text, "parse_data": latest, "timestamp": 1764000000.0}],
        False,
        None,
        {"name": "claim_form"},
        "action_listen",
    )


def claim_egg(sender: str, order: str, language: str = "ja") -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The customer names the order of the missing egg: the claim is recorded (as in the
    conversation, through the claim form's validation); its slots and the bot's messages."""
    slots = {"problem": "missing_item", "item": ["別卵" if language == "ja" else "extra egg"]}
    dispatcher = CollectingDispatcher()
    result = ValidateClaimForm().validate_order_id(order, dispatcher, tracker(sender, order, slots, language), DOMAIN)
    return {**slots, **result}, dispatcher.messages


def complete(sender: str, slots: Dict[str, Any], language: str = "ja") -> List[Dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionCompleteClaim().run(dispatcher, tracker(sender, "", slots, language), DOMAIN))
    return dispatcher.messages


def alerts_in(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [m["custom"][OPS_ALERT] for m in messages if OPS_ALERT in (m.get("custom") or {})]


def earlier_claim(line_user_id: str, order: str, days_ago: float) -> str:
    repository = services.repository()
    customer = repository.customer_by_line_id(line_user_id)
    return repository.open_claim(
        customer.id, order, "missing_item", [], datetime.now(timezone.utc) - timedelta(days=days_ago)
    )


def handoff_of(messages: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return next((m["custom"]["handoff"] for m in messages if "handoff" in (m.get("custom") or {})), None)


# --- a shop's item failing again ------------------------------------------------------------


def test_the_egg_missing_from_three_orders_of_one_shop_raises_one_alert_and_a_fourth_none():
    customers = [add_customer(f"U{n:032d}", f"客{n}") for n in (11, 12, 13)]
    for n, customer in enumerate(customers):
        add_order(customer, f"300{n}")
    senders = [DEMO, "U" + f"{11:032d}", "U" + f"{12:032d}", "U" + f"{13:032d}"]
    orders = ["1001", "3000", "3001", "3002"]

    first, first_messages = claim_egg(senders[0], orders[0])
    second, second_messages = claim_egg(senders[1], orders[1])
    assert alerts_in(first_messages + second_messages) == []  # two orders: not yet
    third, third_messages = claim_egg(senders[2], orders[2])
    fourth, fourth_messages = claim_egg(senders[3], orders[3])

    [alert] = alerts_in(third_messages)
    assert alerts_in(fourth_messages) == []  # the same burst: no second alert
    assert alert["kind"] == "same_item_at_shop" and alert["shop"] == SHOP
    assert (alert["sku"], alert["item_name_ja"], alert["problem"]) == ("EXTRA-EGG", "別卵", "missing_item")
    assert alert["count"] == 3 and alert["threshold"] == 3 and alert["window_hours"] == 24
    assert alert["case_ids"] == [first["case_id"], second["case_id"], third["case_id"]]
    # the customer is still offered the remedies: the alert is for operations only
    assert all(c["offers"]["remedies"] and not c.get("handoff_reason") for c in (first, second, third, fourth))
    # what reaches the customer has no trace of it
    assert all(OPS_ALERT not in (m.get("custom") or {}) for m in without_ops_alerts(third_messages))
    with Session(make_engine(), future=True) as session:
        [row] = session.query(RecurringAlert).all()
        assert row.count == 4 and row.case_ids[-1] == fourth["case_id"]  # the burst grew


def test_three_claims_about_one_order_are_one_problem_not_an_alert():
    messages = []
    for _ in range(3):  # the demo's order told of three times (or three tests of the demo)
        _, said = claim_egg(DEMO, "1001")
        messages += said
    assert alerts_in(messages) == []


# --- a customer's third problem ---------------------------------------------------------------


def test_a_customers_third_problem_in_30_days_is_acknowledged_and_goes_to_a_person_flagged():
    earlier = [earlier_claim(DEMO, "1002", 10), earlier_claim(DEMO, "1005", 3)]
    slots, _ = claim_egg(DEMO, "1001")
    assert slots["handoff_reason"] == "recurring"
    messages = complete(DEMO, slots)
    texts = [m.get("text") or "" for m in messages]
    assert "今回で3回目のご連絡です" in texts[0]
    assert any((m.get("response") or "").startswith("utter_handoff_wait") for m in messages)  # what happens next
    case = handoff_of(messages)
    assert case["reason"] == "recurring" and "recurring" in case["flags"]
    assert case["earlier_cases"] == earlier
    # the agent can still apply the fix in one click: the engine's remedies are on the card
    assert [o["kind"] for o in case["remedies_offered"]][:2] == ["send_item", "refund_item"]


def test_the_acknowledgement_is_in_the_customers_language():
    emma = services.repository().customer_by_line_id(EMMA).id
    add_order(emma, "1103", shop="Burger Lab Roppongi")
    earlier_claim(EMMA, "1101", 2)
    earlier_claim(EMMA, "1102", 20)
    slots, _ = claim_egg(EMMA, "1103", language="en")
    messages = complete(EMMA, slots, language="en")
    assert "this is the 3rd time you've had to contact us in 30 days" in messages[0]["text"]
    assert handoff_of(messages)["customer"]["language"] == "en"


def test_a_third_problem_after_31_days_is_not_flagged():
    earlier_claim(DEMO, "1002", 31)
    earlier_claim(DEMO, "1005", 3)
    slots, _ = claim_egg(DEMO, "1001")
    assert not slots.get("handoff_reason")
    assert slots["offers"]["remedies"]  # the bot fixes it as usual


def test_a_person_asked_for_by_a_recurring_customer_sees_the_flag_too():
    from bot.actions.handoff import hand_off

    earlier_claim(DEMO, "1002", 1)
    earlier_claim(DEMO, "1005", 2)
    slots, _ = claim_egg(DEMO, "1001")
    dispatcher = CollectingDispatcher()
    hand_off(dispatcher, tracker(DEMO, "人と話したい", slots), "request_human", DOMAIN)
    case = handoff_of(dispatcher.messages)
    assert case["reason"] == "request_human" and "recurring" in case["flags"]
    assert dispatcher.messages[0]["response"] == "utter_handoff_request_human"  # its own words


# --- the YAML product owners edit ---------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, error",
    [
        ("customer: {claims: 3, within_days: 30}", "customer: {claims: 1, within_days: 30}", "must be 2 or more"),
        ("same_shop: {claims: 5, within_hours: 24}", "same_shop: {claims: 5, within_days: 1}", "unknown field"),
        ("problems: [missing_item, wrong_item,", "problems: [missing_egg, wrong_item,", "unknown value 'missing_egg'"),
        ("今回で{count}回目", "今回で{times}回目", "unknown placeholder"),
    ],
)
def test_a_mistake_in_the_recurring_section_names_the_file_and_line(old, new, error):
    assert old in POLICY_TEXT
    text = POLICY_TEXT.replace(old, new)
    line = next(
        n for n, row in enumerate(text.splitlines(), start=1) if new.split(":")[0].strip() in row and new in row
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "bot/remedy_policy.yml")
    assert str(caught.value).startswith(f"bot/remedy_policy.yml:{line}: recurring.")
    assert error in str(caught.value)


def test_without_a_recurring_section_nothing_is_counted():
    start = POLICY_TEXT.index("recurring:\n")
    end = POLICY_TEXT.index("# Items of these categories")
    assert parse_policy(POLICY_TEXT[:start] + POLICY_TEXT[end:]).recurring is None
