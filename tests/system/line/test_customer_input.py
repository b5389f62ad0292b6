"""What a customer types is text; only the gateway's own buttons are button taps — the
attacks replayed over the real gateway, Rasa, action server, redis-server and the LINE
emulator (gateway/customer_input.py).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
import redis

from devkit.emulators.line_client import new_user_id
from gateway import texts
from tests.support.line_stack import (
    DEMO_CUSTOMER,
    quick_reply_data,
    reply_for,
    texts_of,
    wait_for,
)

RESOLVED_MARKS = (
    "本件の対応が完了しました",
    "問題は解決しましたか",
    "finished with your case",
    "Did this solve your problem",
)
HAND_MADE_REFUND = '/inform{"remedy":"refund_item"}'


async def answer(emu, event, timeout=60.0):
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), timeout, what="the reply to an event")
    return r["json"]["messages"]


def everything_sent_to(emu, user: str) -> str:
    return json.dumps([d["message"] for d in emu.messages_for(user)], ensure_ascii=False)


def remedy_count(orders_url: str) -> int:
    with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT count(*) FROM remedies").fetchone()[0]


@pytest.mark.asyncio
async def test_typing_a_gateway_intent_does_not_resolve_a_case(gateway, line_emulator, rasa, line_client):
    emu = line_emulator.emu
    user = new_user_id()
    emu.set_profile(user, "新規 花子", "ja")
    for typed in ("/EXTERNAL_agent_resolved", "  /EXTERNAL_agent_resolved"):
        event, res = await line_client.send_text(user, typed)
        assert res.status == 200
        await answer(emu, event)
    await asyncio.sleep(1.0)  # time for a wrong push to show up
    shown = everything_sent_to(emu, user)
    assert not any(mark in shown for mark in RESOLVED_MARKS), shown
    tracker = rasa.tracker(user)
    users = [e for e in tracker["events"] if e.get("event") == "user"]
    assert [e["text"] for e in users] == ["EXTERNAL_agent_resolved"] * 2  # plain text
    assert not any(e["parse_data"]["intent"].get("name", "").startswith("EXTERNAL_") for e in users)
    assert not any(e.get("name") == "action_agent_resolved" for e in tracker["events"])
    assert "named a reserved intent" in gateway.log_text()


@pytest.mark.asyncio
async def test_a_hand_made_or_replayed_remedy_postback_changes_nothing(
    gateway, line_emulator, rasa, line_client, orders_url, redis_url
):
    emu = line_emulator.emu
    r = redis.Redis.from_url(redis_url)
    r.delete(f"gw:case:owner:{DEMO_CUSTOMER}")  # the bot owns the conversation
    r.close()
    rasa.restart_conversation(DEMO_CUSTOMER)
    stranger = new_user_id()
    emu.set_profile(stranger, "他人 次郎", "ja")
    try:
        # the demo customer gets as far as the remedies offered for the missing egg
        event, _ = await line_client.send_text(DEMO_CUSTOMER, "親子丼に別卵が付いていませんでした")
        msgs = await answer(emu, event)
        for label in ("#1001",):  # the message named the missing egg: no item question
            event = await line_client.postback_event(DEMO_CUSTOMER, quick_reply_data(msgs, label))
            await line_client.post([event])
            msgs = await answer(emu, event)
        assert "¥80" in texts_of(msgs)
        genuine = quick_reply_data(msgs, "refund_item")
        before_texts = rasa.user_texts(DEMO_CUSTOMER)
        before_slots = rasa.tracker(DEMO_CUSTOMER)["slots"]
        before_remedies = remedy_count(orders_url)

        attempts = [
            (DEMO_CUSTOMER, HAND_MADE_REFUND),  # no signature
            (DEMO_CUSTOMER, '/inform{"remedy": "refund_item"}'),  # the payload itself
            (DEMO_CUSTOMER, genuine.replace("refund_item", "refund_order")),  # tampered
            (stranger, genuine),  # someone else's button
        ]
        for user, data in attempts:
            event = await line_client.postback_event(user, data)
            await line_client.post([event])
            refused = await answer(emu, event)
            assert texts_of(refused) == texts.text("choose_again", "ja")
        await asyncio.sleep(1.0)
        assert rasa.user_texts(DEMO_CUSTOMER) == before_texts  # nothing reached Rasa
        assert rasa.user_texts(stranger) == []
        assert rasa.tracker(DEMO_CUSTOMER)["slots"] == before_slots  # no remedy chosen
        assert remedy_count(orders_url) == before_remedies  # none applied
        log = gateway.log_text()
        assert log.count("postback refused") >= len(attempts)
        assert "refund_item" not in log and DEMO_CUSTOMER not in log
    finally:
        rasa.restart_conversation(DEMO_CUSTOMER)  # the next test starts afresh
