"""A customer's third problem within 30 days, over LINE, through the real gateway, Rasa,
action server and redis-server: the bot says it knows this keeps happening, a person takes
the case at once, and the Slack card is flagged "recurring" with the earlier cases.

The customer is this test's own (added to the session's orders database), so the demo
customers' claims of the other tests count for nothing here, and this one's for nothing there.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support.line_stack import HANDOFF_CHANNEL, quick_reply_data, reply_for, texts_of, wait_for

CUSTOMER = "U000000000000000000000000000003c3"  # this test's own customer (no other test uses it)
SHOP = "とり政 新宿店"  # not the demo's shop: no shop alert of the other tests' claims


def seed_customer_with_two_earlier_problems(orders_url: str) -> list:
    """A customer with two problem orders in the last 30 days and a fresh order whose egg is missing."""
    from sqlalchemy.orm import Session

    from bot.remedy_policy.types import RemedyOffer
    from bot.store.db import init_db, make_engine
    from bot.store.models import Customer, Order, OrderItem
    from bot.store.repository import OrdersRepository

    engine = make_engine(orders_url)
    init_db(engine)  # as the action server does on first use (idempotent; the demo data if empty)
    now = datetime.now(timezone.utc)

    def order(number: str, ago: timedelta, items) -> Order:
        return Order(
            number=number,
            kind="food_delivery",
            status="delivered",
            shop_name=SHOP,
            placed_at=now - ago - timedelta(minutes=45),
            promised_at=now - ago + timedelta(minutes=5),
            delivered_at=now - ago,
            delivery_fee=300,
            items=[OrderItem(sku=s, name_ja=ja, name_en=en, category=c, unit_price=p) for s, ja, en, c, p in items],
        )

    with Session(engine, future=True) as session, session.begin():
        session.add(
            Customer(
                line_user_id=CUSTOMER,
                display_name="繰返 花子",
                language="ja",
                created_at=now - timedelta(days=200),
                orders=[
                    order("3301", timedelta(days=12), [("KARAAGE", "唐揚げ", "Fried chicken", "dish", 780)]),
                    order("3302", timedelta(days=4), [("GYOZA", "餃子", "Gyoza", "side", 400)]),
                    order(
                        "3303",
                        timedelta(minutes=15),
                        [
                            ("OYAKODON", "親子丼", "Oyakodon", "dish", 980),
                            ("EXTRA-EGG", "別卵", "Extra egg", "topping", 80),
                        ],
                    ),
                ],
            )
        )
    repo = OrdersRepository(engine)
    customer = repo.customer_by_line_id(CUSTOMER).id
    earlier = []
    for number, problem, days in (("3301", "wrong_item", 12), ("3302", "missing_item", 4)):
        case = repo.open_claim(customer, number, problem, [], now - timedelta(days=days))
        repo.apply_remedy(case, RemedyOffer("refund_item", 400), now - timedelta(days=days))
        earlier.append(case)
    engine.dispose()
    return earlier


@pytest.mark.asyncio
async def test_a_customers_third_problem_reaches_slack_flagged_recurring(
    gateway, line_emulator, slack_emulator, rasa, orders_url, line_client
):
    earlier = seed_customer_with_two_earlier_problems(orders_url)
    emu, slack = line_emulator.emu, slack_emulator.emu

    async def answer(event):
        r = await wait_for(lambda: reply_for(emu, event["replyToken"]), 60, what="the bot's reply")
        return r["json"]["messages"]

    event, res = await line_client.send_text(CUSTOMER, "親子丼に別卵が付いていませんでした")
    assert res.status == 200
    proposal = await answer(event)  # 「#3303 とり政 新宿店の別卵の件ですね？」
    tap = await line_client.postback_event(CUSTOMER, quick_reply_data(proposal, "#3303"))
    await line_client.post([tap])
    told = texts_of(await answer(tap))

    # the bot knows, and says what happens next; no remedy buttons: a person takes it
    assert "今回で3回目のご連絡です" in told and "担当者" in told
    assert "返金" not in told
    case_id = await wait_for(lambda: rasa.tracker(CUSTOMER)["slots"].get("case_id"), 30, what="the case id")
    assert rasa.tracker(CUSTOMER)["paused"] is True

    def card():
        for m in slack.messages(channel=HANDOFF_CHANNEL):
            if case_id in str(m.get("blocks")) and not (m.get("thread_ts") and m["thread_ts"] != m["ts"]):
                return m
        return None

    posted = await wait_for(card, 30, what="the case's Slack card")
    lines = [b["text"]["text"] for b in posted["blocks"] if b.get("type") == "section" and "text" in b]
    [flag] = [line for line in lines if "Recurring" in line]
    assert "3rd problem of this customer" in flag and all(c in flag for c in earlier)
    assert "Recurring problems" in posted["text"]  # the reason on the card's title
