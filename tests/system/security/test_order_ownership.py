"""A customer reaches only their own orders, through Rasa's REST channel (what the gateway
calls) with the real action server and orders database.

Another customer's order number must get exactly the answer a number that does not exist
gets (the typed number aside): no shop, item, price or button of that order, no other
question, so order numbers cannot be probed. Demo data: bot/store/seed.py (1001-1006
デモ 太郎, 1101-1102 Emma Brown, 2001 山田 花子 who has no LINE account).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from tests.support.line_stack import DEMO_CUSTOMER
from tests.support.rasa_stack import Chat, handoff_case, reset_orders

EMMA = "U00000000000000000000000000000002"
STRANGER = "U0000000000000000000000000000ffff"  # a LINE user the shop does not know
# What another customer's order would reveal if it leaked into an answer (only what no
# order of the asking customer has: 1006 of デモ 太郎 holds a cheeseburger too).
FOREIGN_MARKS = {
    "1101": ("Burger Lab", "Roppongi", "Emma"),
    "1001": ("とり政", "親子丼", "Oyakodon", "Extra egg", "デモ"),
    "2001": ("牛丼太郎", "牛丼", "Gyudon", "温泉卵", "山田"),
}


@pytest.fixture
def fresh_orders(orders_url: str) -> None:
    reset_orders(orders_url)  # demo orders relative to now, no claims of earlier tests


def answer(chat: Chat, text: str, number: str) -> List[Dict[str, Any]]:
    """The bot's messages with the typed number masked, so two answers compare."""
    return json.loads(json.dumps(chat.say(text), ensure_ascii=False).replace(number, "<N>"))


def same_turns(rasa, sender: str, language: str, opening: str, probe: str, foreign: str, missing: str) -> tuple:
    """The same conversation twice: the probe holds another customer's order number, then
    a number that exists nowhere."""
    replies = []
    for number in (foreign, missing):
        chat = Chat(rasa, sender, {"language": language})
        if opening:
            chat.say(opening)
        replies.append((answer(chat, probe.format(n=number), number), chat))
    return replies[0], replies[1]


def assert_reveals_nothing(reply: List[Dict[str, Any]], foreign: str) -> None:
    text = json.dumps(reply, ensure_ascii=False)
    for mark in FOREIGN_MARKS[foreign]:
        assert mark not in text, f"another customer's order leaked: {mark!r}"


@pytest.mark.parametrize(
    "sender, language, opening, probe, foreign, missing",
    [
        # the demo customer, asked "which order?", types Emma's order number
        (DEMO_CUSTOMER, "ja", "別卵が入っていませんでした", "{n}", "1101", "9999"),
        # ... the number of a guest order (a customer without LINE)
        (DEMO_CUSTOMER, "ja", "別卵が入っていませんでした", "注文番号は{n}です", "2001", "9998"),
        # Emma types the demo customer's order number
        (EMMA, "en", "my order is missing the fries", "it's order {n}", "1001", "9997"),
        # a stranger (guest) types an order of a customer who has a LINE account
        (STRANGER, "ja", "牛丼に温泉卵が入っていませんでした", "{n}", "1101", "9996"),
        # a forged button payload (a LINE postback's data reaches Rasa as this text)
        (DEMO_CUSTOMER, "ja", "別卵が入っていませんでした", '/inform{{"order_id": "{n}"}}', "1101", "9995"),
        # the number given in the first message, no question asked yet
        (DEMO_CUSTOMER, "ja", "", "注文番号{n}の配達状況を教えてください", "1101", "9994"),
        (EMMA, "en", "", "where is my order {n}?", "1001", "9993"),
    ],
)
def test_another_customers_order_gets_the_answer_of_a_number_that_does_not_exist(
    rasa, fresh_orders, sender, language, opening, probe, foreign, missing
):
    (foreign_reply, foreign_chat), (missing_reply, _) = same_turns(
        rasa, sender, language, opening, probe, foreign, missing
    )
    assert foreign_reply == missing_reply
    assert_reveals_nothing(foreign_reply, foreign)
    assert foreign_chat.slot("order_id") != foreign  # nothing of it kept for later turns


def test_asking_for_a_person_about_another_customers_order_hands_over_without_it(rasa, fresh_orders):
    """The case card goes to agents, who act on its order: a foreign order number typed
    with a request for a person must not become this customer's case's order."""
    cases = {}
    for number in ("1101", "9999"):
        chat = Chat(rasa, DEMO_CUSTOMER, {"language": "ja"})
        reply = chat.say(f'/request_human{{"order_id": "{number}"}}')
        cases[number] = handoff_case(reply)
        assert cases[number] is not None, "no handoff"
        assert_reveals_nothing(json.loads(json.dumps(reply, ensure_ascii=False)), "1101")
    assert cases["1101"]["order"] == cases["9999"]["order"]
    assert not cases["1101"]["items"]
    assert cases["1101"]["customer"]["display_name"] != "Emma Brown"
