"""The orders database locked (SQLite: another connection holds an EXCLUSIVE lock) while the
customer confirms a remedy: the action waits (busy timeout, bot/store/db.py) and the claim
completes after the lock is released; the remedy row is applied once.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from gateway.customer_input import signed_payload
from tests.support.line_stack import DEMO_CUSTOMER, quick_reply_data, reply_for, texts_of, wait_for
from tests.system.faults.conftest import user_turns

LOCK_S = 3.0


def hold_exclusive_lock(path: str, seconds: float, locked: threading.Event) -> None:
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        db.execute("COMMIT")
    finally:
        db.close()


async def answer(emu, event):
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), 60, what="the answer")
    return r["json"]["messages"]


@pytest.mark.asyncio
async def test_remedy_confirmed_while_the_orders_database_is_locked_is_applied_once(
    gateway, line_emulator, rasa, line_client, orders_url
):
    emu = line_emulator.emu
    rasa.restart_conversation(DEMO_CUSTOMER)
    event, _ = await line_client.send_text(DEMO_CUSTOMER, "親子丼に別卵が付いていませんでした")
    msgs = await answer(emu, event)
    for label in ("#1001",):  # the message named the missing egg: no item question
        event = await line_client.postback_event(DEMO_CUSTOMER, quick_reply_data(msgs, label))
        await line_client.post([event])
        msgs = await answer(emu, event)
    assert "¥80" in texts_of(msgs)

    path = orders_url.removeprefix("sqlite:///")
    locked = threading.Event()
    holder = threading.Thread(target=hold_exclusive_lock, args=(path, LOCK_S, locked))
    holder.start()
    assert locked.wait(5)
    started = time.monotonic()
    choice = quick_reply_data(msgs, "refund_item")
    event = await line_client.postback_event(DEMO_CUSTOMER, choice)
    await line_client.post([event])
    msgs = await answer(emu, event)
    waited = time.monotonic() - started
    holder.join()
    confirmation = texts_of(msgs)
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"].get("case_id")
    assert case_id and case_id in confirmation and "¥80" in confirmation
    assert waited >= LOCK_S - 0.5  # it did wait for the lock, and then went through
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT kind, amount FROM remedies WHERE idempotency_key = ?", (case_id,)).fetchall()
    assert rows == [("refund_item", 80)]
    # the choice reached Rasa once (as its payload: the tap carried the gateway's signature)
    assert user_turns(rasa, DEMO_CUSTOMER).count(signed_payload(choice)) == 1
