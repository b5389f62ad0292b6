"""Per-user order and exactly-once replies when one customer's events reach different
gateway instances, with two Rasa servers sharing Redis behind a balancer.

What a customer would notice if this broke: answers out of order, the same answer twice,
a message ignored, or a refund paid twice.
"""

from __future__ import annotations

import asyncio
import json
from typing import Dict, List, Tuple

import pytest

from bench.load import SCRIPTS, Answer, next_message
from devkit import stack
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from gateway.customer_input import signed_payload
from tests.support.line_stack import SECRET, reply_for, wait_for
from tests.system.scale.conftest import balancer_counts

REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"


def replies_by_token(emu, tokens: Dict[str, Tuple[str, int]]) -> Dict[str, List[int]]:
    """Per user, the indexes of the messages the accepted reply calls answered, in the
    order the emulator received them."""
    order: Dict[str, List[int]] = {}
    for r in list(emu.requests):
        if r["path"] == REPLY and r.get("status") == 200:
            hit = tokens.get((r.get("json") or {}).get("replyToken"))
            if hit:
                order.setdefault(hit[0], []).append(hit[1])
    return order


def pushes_to(emu, users) -> List[str]:
    return [
        r["json"]["to"] for r in list(emu.requests) if r["path"] == PUSH and (r.get("json") or {}).get("to") in users
    ]


def user_texts(rasa_pair, user: str) -> List[str]:
    events = stack.get_json(rasa_pair.api(f"/conversations/{user}/tracker"))["events"]
    return [e.get("text") for e in events if e.get("event") == "user"]


@pytest.mark.asyncio
async def test_whole_conversations_spread_over_both_gateways_are_answered_once_in_order(
    gateway_pair, rasa_pair, line_emulator, customers
):
    emu = line_emulator.emu
    tokens = emulator_tokens(emu)
    via_balancer = LineWebhookClient(gateway_pair.webhook_url, SECRET, token_source=tokens)
    direct = [LineWebhookClient(g.webhook_url, SECRET, token_source=tokens) for g in gateway_pair.gateways]
    gateways_before = balancer_counts(gateway_pair.balancer)
    rasa_before = balancer_counts(rasa_pair.balancer)
    people = [customers.take(language) for language in ("ja", "en") * 3]  # six at once
    for c in people:
        emu.set_profile(c.line_user_id, c.display_name, c.language)
    sent: Dict[str, List[str]] = {c.line_user_id: [] for c in people}
    tokens_sent: Dict[str, Tuple[str, int]] = {}
    remedy_events: Dict[str, dict] = {}
    confirmations: Dict[str, str] = {}

    async def converse(customer) -> None:
        script = SCRIPTS[customer.language]
        user = customer.line_user_id
        text, tap, index = script.opening, False, 0
        while True:
            event = await (via_balancer.postback_event(user, text) if tap else via_balancer.text_event(user, text))
            tokens_sent[event["replyToken"]] = (user, index)
            sent[user].append(text)
            first = await via_balancer.post([event])
            assert first.status == 200 and json.loads(first.text)["accepted"] == 1
            # LINE thought the delivery failed: the same event again, to BOTH instances
            # (one of them is not the one the balancer chose), while it is being handled
            again = await asyncio.gather(*(client.redeliver([event]) for client in direct))
            assert [json.loads(r.text)["duplicates"] for r in again] == [1, 1]
            reply = await wait_for(
                lambda: reply_for(emu, event["replyToken"]), 90, what="the reply to a customer's message"
            )
            answer = Answer("reply", index, reply["json"]["messages"], reply["time"])
            if text == script.thanks:
                return
            if f'"remedy": "{script.remedy}"' in text:
                remedy_events[user] = event
                confirmations[user] = answer.texts()
            following = next_message(script, customer, answer)
            assert following is not None, f"unexpected answer: {answer.texts()[:200]}"
            text, tap = following
            index += 1

    try:
        await asyncio.gather(*(converse(c) for c in people))
        # a late redelivery of the remedy tap, to each instance, after it was applied
        for event in remedy_events.values():
            for client in direct:
                again = await client.redeliver([event])
                assert json.loads(again.text)["duplicates"] == 1
        await asyncio.sleep(2.0)  # time for a wrong second answer to show up
    finally:
        for client in [via_balancer] + direct:
            await client.close()

    users = set(sent)
    order = replies_by_token(emu, tokens_sent)
    for c in people:
        user = c.line_user_id
        # each message answered exactly once, by reply, in the customer's order
        assert order[user] == list(range(len(sent[user]))), order[user]
        # Rasa saw each message once, in order (one tracker in Redis for both servers); a
        # tap reaches it as the payload inside the gateway's signed postback data
        assert user_texts(rasa_pair, user) == [signed_payload(t) for t in sent[user]]
        # the remedy was applied once, and the customer was told its case number
        assert "C-" in confirmations[user]
    assert pushes_to(emu, users) == []  # no second answer went by push either
    remedies = customers.remedies_per_order([c.order_number for c in people])
    assert remedies == {c.order_number: 1 for c in people}
    # both instances of each tier did part of the work
    gateways_after = balancer_counts(gateway_pair.balancer)
    rasa_after = balancer_counts(rasa_pair.balancer)
    assert all(a > b for a, b in zip(gateways_after, gateways_before)), gateways_after
    assert all(a > b for a, b in zip(rasa_after, rasa_before)), rasa_after


@pytest.mark.asyncio
async def test_a_burst_alternating_between_gateways_keeps_each_customers_order(
    gateway_pair, rasa_pair, line_emulator, customers
):
    """Messages sent back to back, each to the other instance than the one before: the two
    gateways share one event journal and a per-user lease in Redis, so each customer's
    messages still reach Rasa, and are answered, one at a time in the order sent."""
    emu = line_emulator.emu
    tokens = emulator_tokens(emu)
    direct = [LineWebhookClient(g.webhook_url, SECRET, token_source=tokens) for g in gateway_pair.gateways]
    people = [customers.take("ja") for _ in range(8)]
    texts = ["こんにちは", "注文の状況を教えてください", "ありがとう"]
    events: Dict[str, List[dict]] = {c.line_user_id: [] for c in people}
    tokens_sent: Dict[str, Tuple[str, int]] = {}

    async def burst(slot: int, user: str) -> None:
        for index, text in enumerate(texts):
            event = await direct[0].text_event(user, text)
            tokens_sent[event["replyToken"]] = (user, index)
            events[user].append(event)
            target = (slot + index) % 2  # alternate instances, message by message
            result = await direct[target].post([event])
            assert result.status == 200 and json.loads(result.text)["accepted"] == 1
        for index, event in enumerate(events[user]):  # and every one redelivered to the other
            again = await direct[(slot + index + 1) % 2].redeliver([event])
            assert json.loads(again.text)["duplicates"] == 1

    try:
        await asyncio.gather(*(burst(i, c.line_user_id) for i, c in enumerate(people)))
        await wait_for(lambda: all(reply_for(emu, t) for t in tokens_sent), 180, what=f"{len(tokens_sent)} replies")
        await asyncio.sleep(2.0)
    finally:
        for client in direct:
            await client.close()

    order = replies_by_token(emu, tokens_sent)
    for c in people:
        assert order[c.line_user_id] == [0, 1, 2], order[c.line_user_id]
        assert user_texts(rasa_pair, c.line_user_id) == texts
    assert pushes_to(emu, set(events)) == []
