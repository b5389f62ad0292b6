"""Faults behind the gateway: the action server down, Rasa killed (SIGKILL) and restarted,
Redis killed (SIGKILL) and restarted (with its append-only file, see conftest.py).

What the customer sees: an honest apology by reply while the bot cannot answer, then the
real answers by push once it can, in the order they wrote; each message reaches Rasa's
tracker once; nothing pending is left.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from devkit.emulators.line_client import new_user_id
from gateway.delivery import _RETRY_KEY_NS
from gateway.line.api import RETRY_KEY_HEADER
from tests.support.line_stack import reply_for, wait_for
from tests.system.faults.conftest import pending_ids, seen_by, user_turns

APOLOGY = "処理できませんでした"


def answers_pushed(emu, user, events):
    """{event index: pushed messages} for the answers pushed to `user`, found by the
    X-Line-Retry-Key the gateway derives from each event id; and the order they came in."""
    keys = {str(uuid.uuid5(_RETRY_KEY_NS, f"{e['webhookEventId']}:0")): i for i, e in enumerate(events)}
    order, messages = [], {}
    for r in list(emu.requests_to("/v2/bot/message/push")):
        i = keys.get(r["headers"].get(RETRY_KEY_HEADER))
        if i is not None and r.get("status") == 200 and r["json"]["to"] == user:
            order.append(i)
            messages[i] = r["json"]["messages"]
    return order, messages


async def apologised(emu, event):
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), 30, what="the apology")
    texts = "\n".join(m.get("text", "") for m in r["json"]["messages"])
    assert APOLOGY in texts, texts
    return r


@pytest.mark.asyncio
async def test_action_server_down_apology_then_the_answer_once_it_is_back(
    gateway, line_emulator, rasa, action_server, line_client, redis_url
):
    emu = line_emulator.emu
    user = new_user_id()
    action_server.kill()
    try:
        await asyncio.sleep(2.5)  # the gateway trusts a healthy check for 2 s
        event, res = await line_client.send_text(user, "注文の状況を教えてください")
        assert res.status == 200
        await apologised(emu, event)
        await asyncio.sleep(2.0)
        assert event["webhookEventId"] in pending_ids(redis_url)  # kept
        assert user_turns(rasa, user) == []  # held back: Rasa would run its actions half-way
    finally:
        action_server.start()
    await wait_for(lambda: answers_pushed(emu, user, [event])[0], 60, what="the answer")
    await asyncio.sleep(1.5)
    order, messages = answers_pushed(emu, user, [event])
    assert order == [0]
    answer = [m["text"] for m in messages[0] if m["type"] == "text"]
    assert answer and APOLOGY not in "\n".join(answer)
    assert seen_by(emu, user)[1:] == answer  # apology, then the answer; nothing twice
    assert user_turns(rasa, user) == ["注文の状況を教えてください"]
    assert event["webhookEventId"] not in pending_ids(redis_url)


@pytest.mark.asyncio
async def test_redis_killed_pending_messages_survive_and_nothing_is_acked_while_it_is_down(
    gateway, line_emulator, rasa, action_server, restartable_redis, line_client, redis_url
):
    emu = line_emulator.emu
    user = new_user_id()
    texts = ["注文の状況を教えてください", "ありがとう"]
    action_server.kill()  # keeps the first message pending across the Redis crash
    try:
        await asyncio.sleep(2.5)
        first, res = await line_client.send_text(user, texts[0])
        assert res.status == 200
        await apologised(emu, first)
        assert first["webhookEventId"] in pending_ids(redis_url)

        restartable_redis.kill()
        # Redis down: the event cannot be made durable, so it is not acked (LINE redelivers)
        second, res = await line_client.send_text(user, texts[1])
        assert res.status == 500
        restartable_redis.start()
        # the journal came back from the append-only file
        assert first["webhookEventId"] in pending_ids(redis_url)
        res = await line_client.redeliver([second])
        assert res.status == 200 and json.loads(res.text)["accepted"] == 1
    finally:
        if restartable_redis.process is None or restartable_redis.process.poll() is not None:
            restartable_redis.start()
        action_server.start()
    await wait_for(lambda: len(answers_pushed(emu, user, [first, second])[0]) == 2, 60, what="both answers")
    await asyncio.sleep(1.5)
    order, _ = answers_pushed(emu, user, [first, second])
    assert order == [0, 1]  # in the order the customer wrote
    assert user_turns(rasa, user) == texts  # each once
    assert not {first["webhookEventId"], second["webhookEventId"]} & set(pending_ids(redis_url))
    # the gateway is healthy again without a restart (its Redis clients reconnected)
    res = await line_client.redeliver([second])
    assert json.loads(res.text)["duplicates"] == 1  # and the dedupe keys survived too


@pytest.mark.asyncio
async def test_rasa_killed_mid_conversation_answers_what_came_meanwhile_in_order(
    gateway, line_emulator, rasa, line_client, redis_url
):
    emu = line_emulator.emu
    user = new_user_id()
    meanwhile = ["注文の状況を教えてください", "ありがとう"]
    event, _ = await line_client.send_text(user, "こんにちは")
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), 60, what="the first answer")
    assert APOLOGY not in json.dumps(r["json"], ensure_ascii=False)
    try:
        rasa.process.kill()  # SIGKILL: no graceful shutdown
        rasa.process.wait(timeout=10)
        events = []
        for text in meanwhile:
            e, res = await line_client.send_text(user, text)
            assert res.status == 200  # still acked at once
            events.append(e)
        for e in events:
            await apologised(emu, e)  # each told at once that its answer is coming
        await asyncio.sleep(1.0)
        assert [e["webhookEventId"] for e in events] == [
            i for i in pending_ids(redis_url) if i in {e["webhookEventId"] for e in events}
        ]
        assert answers_pushed(emu, user, events)[0] == []
    finally:
        started = time.monotonic()
        rasa.start()
    await wait_for(lambda: len(answers_pushed(emu, user, events)[0]) == 2, 60, what="the answers after Rasa came back")
    await asyncio.sleep(1.5)
    order, messages = answers_pushed(emu, user, events)
    assert order == [0, 1]
    assert all(APOLOGY not in json.dumps(m, ensure_ascii=False) for m in messages.values())
    # Each message reached Rasa once. (Rasa here keeps trackers in memory, as endpoints.yml
    # does by default, so the turn before the kill is gone from the new process.)
    assert [t for t in user_turns(rasa, user) if t in meanwhile] == meanwhile
    assert not {e["webhookEventId"] for e in events} & set(pending_ids(redis_url))
    print(f"Rasa restart took {time.monotonic() - started:.0f} s")
