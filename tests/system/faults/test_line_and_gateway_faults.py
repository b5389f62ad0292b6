"""Faults on the LINE side: the LINE API answering 429 and 500, and the gateway killed
(SIGKILL) between the webhook ack and the reply. Real gateway, Rasa, action server and
redis-server; LINE emulated (devkit/emulators/line_api.py, `fail_next`).

What must hold: the customer sees each answer once, and their message reaches Rasa's
tracker once.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from devkit.emulators.line_client import LineWebhookClient, new_user_id
from gateway.line.api import RETRY_KEY_HEADER
from tests.support.line_stack import ACCESS_TOKEN, SECRET, reply_for, wait_for
from tests.system.faults.conftest import pending_ids, seen_by, user_turns

ASK_STATUS = "注文の状況を教えてください"
APOLOGY = "処理できませんでした"


def calls_with_token(emu, token):
    return [r for r in list(emu.requests) if (r.get("json") or {}).get("replyToken") == token]


def pushes_to(emu, user):
    return [r for r in list(emu.requests_to("/v2/bot/message/push")) if (r.get("json") or {}).get("to") == user]


@pytest.mark.asyncio
async def test_line_429_then_500_on_reply_the_answer_arrives_once(gateway, line_emulator, rasa, line_client):
    emu = line_emulator.emu
    user = new_user_id()
    emu.fail_next("/v2/bot/message/reply", 429, times=1, headers={"Retry-After": "1"}, message="Too Many Requests")
    emu.fail_next("/v2/bot/message/reply", 500, times=1)
    event, res = await line_client.send_text(user, ASK_STATUS)
    assert res.status == 200
    await wait_for(lambda: reply_for(emu, event["replyToken"]), 30, what="the reply")
    await asyncio.sleep(1.0)
    statuses = [r["status"] for r in calls_with_token(emu, event["replyToken"])]
    assert statuses == [429, 500, 200]
    # Retry-After was honoured: the second try came at least a second after the 429
    calls = calls_with_token(emu, event["replyToken"])
    assert calls[1]["time"] - calls[0]["time"] >= 0.9
    assert len(seen_by(emu, user)) >= 1 and not any(APOLOGY in t for t in seen_by(emu, user))
    assert pushes_to(emu, user) == []
    assert user_turns(rasa, user) == [ASK_STATUS]


@pytest.mark.asyncio
async def test_line_429_and_500_on_push_the_push_is_shown_once_under_one_retry_key(gateway, line_emulator, rasa):
    emu = line_emulator.emu
    user = new_user_id()
    # a reply token LINE never issued (as after its minute is up): the answer must be pushed
    async with LineWebhookClient(gateway.webhook_url, SECRET) as client:
        emu.fail_next("/v2/bot/message/push", 429, times=1, headers={"Retry-After": "1"})
        emu.fail_next("/v2/bot/message/push", 500, times=1)
        event, res = await client.send_text(user, ASK_STATUS)
        assert res.status == 200
        await wait_for(lambda: [p for p in pushes_to(emu, user) if p["status"] == 200], 30, what="the push")
    await asyncio.sleep(1.0)
    pushes = pushes_to(emu, user)
    assert [p["status"] for p in pushes] == [429, 500, 200]
    keys = {p["headers"].get(RETRY_KEY_HEADER) for p in pushes}
    assert len(keys) == 1 and None not in keys  # one logical push, retried under one key
    shown = seen_by(emu, user)
    assert len(shown) == len(
        [m for p in pushes if p["status"] == 200 for m in p["json"]["messages"] if m["type"] == "text"]
    )
    assert user_turns(rasa, user) == [ASK_STATUS]

    # The emulator honours the key as LINE does: the same push again is refused with 409
    # and shown no second time (what makes the gateway's retried pushes idempotent).
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{line_emulator.url}/v2/bot/message/push",
            json=pushes[-1]["json"],
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}", RETRY_KEY_HEADER: keys.pop()},
        ) as resp:
            assert resp.status == 409
            assert resp.headers.get("x-line-accepted-request-id")
    assert seen_by(emu, user) == shown


@pytest.mark.asyncio
async def test_line_down_longer_than_the_retries_the_answer_comes_later_once(
    gateway, line_emulator, rasa, line_client, redis_url
):
    """Reply and push answer 500 for longer than the client retries (5 attempts each):
    the answer is not given up, it stays pending and is pushed when LINE is back; the
    message is not sent to Rasa again."""
    emu = line_emulator.emu
    user = new_user_id()
    emu.fail_next("/v2/bot/message/reply", 500, times=5)
    emu.fail_next("/v2/bot/message/push", 500, times=8)
    event, res = await line_client.send_text(user, ASK_STATUS)
    assert res.status == 200
    pushed = await wait_for(
        lambda: [p for p in pushes_to(emu, user) if p["status"] == 200], 90, what="the answer once LINE is back"
    )
    await asyncio.sleep(1.5)
    assert len([p for p in pushes_to(emu, user) if p["status"] == 200]) == 1
    assert len(seen_by(emu, user)) == len([m for m in pushed[0]["json"]["messages"] if m["type"] == "text"])
    assert user_turns(rasa, user) == [ASK_STATUS]
    assert event["webhookEventId"] not in pending_ids(redis_url)


async def killed_before_the_reply(gateway, emu, client, user, text):
    """Sends `text`; LINE answers the reply with 503 + Retry-After 20, so the gateway sits
    between Rasa's turn and the reply; it is killed (SIGKILL) right there."""
    emu.fail_next("/v2/bot/message/reply", 503, times=1, headers={"Retry-After": "20"})
    event, res = await client.send_text(user, text)
    assert res.status == 200  # acked at once
    await wait_for(
        lambda: [r for r in calls_with_token(emu, event["replyToken"]) if r.get("status") == 503],
        60,
        what="the reply attempt",
    )
    gateway.stop(kill=True)
    return event


@pytest.mark.asyncio
async def test_gateway_killed_between_ack_and_reply_answers_once_after_restart(
    gateway, line_emulator, rasa, line_client, redis_url
):
    emu = line_emulator.emu
    user = new_user_id()
    try:
        event = await killed_before_the_reply(gateway, emu, line_client, user, ASK_STATUS)
        assert user_turns(rasa, user) == [ASK_STATUS]  # Rasa had the turn before the kill
        assert event["webhookEventId"] in pending_ids(redis_url)
    finally:
        gateway.start()
    # the restarted gateway resumes the event: the reply token is still fresh -> reply
    await wait_for(lambda: reply_for(emu, event["replyToken"]), 30, what="the reply after restart")
    await asyncio.sleep(1.5)
    assert user_turns(rasa, user) == [ASK_STATUS]  # not sent to Rasa a second time
    assert pushes_to(emu, user) == []
    answer = reply_for(emu, event["replyToken"])["json"]["messages"]
    assert seen_by(emu, user) == [m["text"] for m in answer if m["type"] == "text"]
    assert event["webhookEventId"] not in pending_ids(redis_url)


@pytest.mark.asyncio
async def test_gateway_killed_and_back_after_the_reply_token_expired_pushes_once(
    gateway, line_emulator, rasa, line_client, redis_url
):
    emu = line_emulator.emu
    user = new_user_id()
    original = dict(gateway.env)
    try:
        event = await killed_before_the_reply(gateway, emu, line_client, user, ASK_STATUS)
        # back later than a reply token lives (made short here instead of waiting a minute)
        gateway.env["GATEWAY_REPLY_TOKEN_MAX_AGE_S"] = "0.5"
        gateway.start()
        pushed = await wait_for(
            lambda: [p for p in pushes_to(emu, user) if p["status"] == 200], 30, what="the answer pushed after restart"
        )
        await asyncio.sleep(1.5)
        assert len(pushes_to(emu, user)) == 1
        assert reply_for(emu, event["replyToken"]) is None
        assert seen_by(emu, user) == [m["text"] for m in pushed[0]["json"]["messages"] if m["type"] == "text"]
        assert user_turns(rasa, user) == [ASK_STATUS]
        # the push's retry key is derived from the event: a second resume cannot show it twice
        key = pushed[0]["headers"][RETRY_KEY_HEADER]
        assert uuid.UUID(key).version == 5
    finally:
        gateway.env.clear()
        gateway.env.update(original)
        gateway.restart(kill=False)
    assert event["webhookEventId"] not in pending_ids(redis_url)
    assert json.dumps(user_turns(rasa, user), ensure_ascii=False).count(ASK_STATUS) == 1
