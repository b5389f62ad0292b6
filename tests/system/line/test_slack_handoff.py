"""Handoff to agents in Slack, through the real gateway, Rasa, action server and
redis-server, with the LINE and Slack platforms emulated (signed webhooks and Events API
requests; the Web API calls recorded).

A case: the customer's LINE conversation -> a Slack card + thread -> an agent claims,
replies (on LINE), approves or resolves (the bot takes over again).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
import redis

from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from devkit.emulators.slack_client import SlackEventsClient
from tests.support.line_stack import (
    DEMO_CUSTOMER,
    HANDOFF_CHANNEL,
    SECRET,
    SLACK_SECRET,
    quick_reply_data,
    reply_for,
    texts_of,
    wait_for,
)

AGENT, OTHER_AGENT, OUTSIDER = "U0AGENT001", "U0AGENT002", "U0OUTSIDER"
EMMA = "U00000000000000000000000000000002"


@pytest.fixture(autouse=True)
def fresh_conversations(rasa, redis_url):
    """Each test starts with the bot owning fresh conversations of the demo customers."""
    r = redis.Redis.from_url(redis_url)
    for user in (DEMO_CUSTOMER, EMMA):
        r.delete(f"gw:case:owner:{user}")
        rasa.restart_conversation(user)
    yield
    for user in (DEMO_CUSTOMER, EMMA):
        r.delete(f"gw:case:owner:{user}")
    r.close()


async def answer(emu, event, timeout=60.0):
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), timeout, what="the bot's reply")
    return r["json"]["messages"]


async def tap(client, emu, user, messages, label):
    event = await client.postback_event(user, quick_reply_data(messages, label))
    await client.post([event])
    return await answer(emu, event)


def case_cards(slack, case_id=None):
    cards = [m for m in slack.messages(channel=HANDOFF_CHANNEL) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    return [c for c in cards if case_id is None or case_id in json.dumps(c, ensure_ascii=False)]


def card_elements(card, prefix: str):
    """The card's buttons and menus whose action_id starts with `prefix`."""
    return [
        e
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if str(e.get("action_id", "")).startswith(prefix)
    ]


def card_text(card) -> str:
    return json.dumps(card.get("blocks") or [], ensure_ascii=False)


def pushes_to(emu, user):
    return [d for d in emu.messages_for(user) if d["via"] == "push"]


async def open_case(line_client, emu, slack, rasa, user, text):
    """The customer's message ends in a handoff; returns (case id, the Slack card)."""
    event, res = await line_client.send_text(user, text)
    assert res.status == 200
    await answer(emu, event)
    case_id = await wait_for(lambda: rasa.tracker(user)["slots"].get("case_id"), 30, what="a case id")
    card = await wait_for(lambda: (case_cards(slack, case_id) or [None])[0], 30, what="the Slack card")
    return case_id, card


async def opening_settled(slack, card_ts: str, quiet: float = 2.0, timeout: float = 60.0) -> None:
    """Waits until no Slack call has named the card for `quiet` seconds."""

    def naming() -> int:
        return sum(1 for c in list(slack.calls) if card_ts in json.dumps(c))

    deadline = time.monotonic() + timeout
    seen, since = naming(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"the case's opening was still posting after {timeout:.0f}s")
        await asyncio.sleep(0.1)
        now = naming()
        if now != seen:
            seen, since = now, time.monotonic()


@pytest.mark.asyncio
async def test_frustrated_customer_reaches_a_slack_thread_an_agent_answers_on_line_and_resolves(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client, orders_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    event, _ = await line_client.send_text(DEMO_CUSTOMER, "親子丼に別卵が付いていませんでした")
    msgs = await answer(emu, event)
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, "#1001")  # the egg: no item question
    assert "¥80" in texts_of(msgs)
    # every remedy refused (the "none of these" quick reply): a person takes over
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, "/deny")
    assert "担当者" in texts_of(msgs)
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"]["case_id"]

    card = await wait_for(lambda: (case_cards(slack, case_id) or [None])[0], 30, what="the card")
    text = card_text(card)
    for expected in (
        "#1001",
        "別卵",
        "¥80",
        "Refused",
        "Every remedy refused",
        "Unclaimed",
        "デモ 太郎",
        "case_claim",
        "case_resolve",
        # the frustration score with its reasons (every remedy refused is one)
        "Frustration / 不満度",
        "all_remedies_refused",
    ):
        assert expected in text, expected
    # the transcript follows in the thread, with the customer's own words
    thread = await wait_for(lambda: slack.thread(HANDOFF_CHANNEL, card["ts"])[1:], 10, what="transcript")
    assert "親子丼に別卵が付いていませんでした" in json.dumps(thread, ensure_ascii=False)

    # someone outside the handoff channel cannot claim it
    status, _ = await slack_client.press_button(
        "case_claim", case_id, user_id=OUTSIDER, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    assert status == 200
    await wait_for(
        lambda: [e for e in slack.ephemerals if "Only members" in (e.get("text") or "")],
        10,
        what="a private note to the outsider",
    )
    assert "Unclaimed" in card_text(case_cards(slack, case_id)[0])

    # an agent claims: the card shows who (once the case's opening is posted: the card, the
    # transcript and the frustration details are still being written to Slack till then)
    await opening_settled(slack, card["ts"])
    await slack_client.press_button(
        "case_claim", case_id, user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    await wait_for(
        lambda: f"<@{AGENT}>" in card_text(case_cards(slack, case_id)[0]), 30, what="the card to show the claim"
    )

    # the agent's thread reply reaches the customer on LINE, under the agent's name
    reply = "大変申し訳ございません。別卵を今から20分以内にお届けします。"
    status, _ = await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, reply)
    assert status == 200
    agent_ts = slack_client.last_event["ts"]
    pushed = await wait_for(
        lambda: [p for p in pushes_to(emu, DEMO_CUSTOMER) if p["message"].get("text") == reply], 15, what="the push"
    )
    assert "佐藤" in pushed[0]["message"]["sender"]["name"]
    # Slack retries the same event (no ack seen): the customer still gets it once
    await slack_client.retry_last(retry_num=1)
    await asyncio.sleep(1.0)
    assert len([p for p in pushes_to(emu, DEMO_CUSTOMER) if p["message"].get("text") == reply]) == 1
    # the agent sees it was delivered
    await wait_for(
        lambda: any(
            r.get("name") == "white_check_mark"
            for m in slack.messages(channel=HANDOFF_CHANNEL)
            if m["ts"] == agent_ts
            for r in m.get("reactions") or []
        ),
        10,
        what="the delivered mark",
    )
    # an internal note stays in Slack
    await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, "// 店舗に電話済み")
    await asyncio.sleep(1.0)
    assert not [p for p in pushes_to(emu, DEMO_CUSTOMER) if "店舗に電話済み" in p["message"].get("text", "")]

    # the customer's next message goes into the thread, not to the bot
    event, _ = await line_client.send_text(DEMO_CUSTOMER, "わかりました、待ってます")
    await wait_for(
        lambda: "待ってます" in json.dumps(slack.thread(HANDOFF_CHANNEL, card["ts"]), ensure_ascii=False),
        15,
        what="the relay",
    )
    assert reply_for(emu, event["replyToken"]) is None  # the bot said nothing
    # and the whole history, bot and human turns, is in Rasa's tracker
    events = rasa.tracker(DEMO_CUSTOMER)["events"]
    assert any(
        e["event"] == "bot" and e.get("text") == reply and (e.get("metadata") or {}).get("agent_name") for e in events
    )
    assert any(e["event"] == "user" and e.get("text") == "わかりました、待ってます" for e in events)

    # resolve: the bot has the conversation again and asks if it's solved
    before = len(pushes_to(emu, DEMO_CUSTOMER))
    await slack_client.press_button(
        "case_resolve", case_id, user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    pushed = await wait_for(lambda: pushes_to(emu, DEMO_CUSTOMER)[before:], 30, what="the hand-back")
    handed_back = [p["message"] for p in pushed]
    assert "解決" in texts_of(handed_back)
    await wait_for(lambda: "Resolved" in card_text(case_cards(slack, case_id)[0]), 10, what="resolved card")
    assert rasa.tracker(DEMO_CUSTOMER)["paused"] is False
    # the customer answers the satisfaction question; the bot answers again (by reply)
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, handed_back, "/affirm")
    assert "ありがとう" in texts_of(msgs)
    with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
        row = db.execute(
            "SELECT resolved_by, satisfaction FROM case_outcomes WHERE case_number = ?", (case_id,)
        ).fetchone()
    assert row == ("佐藤 花子", "satisfied")
    # a reply in the closed thread is not sent to the customer
    pushes = len(pushes_to(emu, DEMO_CUSTOMER))
    await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, "追伸です")
    await asyncio.sleep(1.0)
    assert len(pushes_to(emu, DEMO_CUSTOMER)) == pushes


@pytest.mark.asyncio
async def test_a_refund_above_an_agents_limit_needs_a_supervisor_and_is_applied_once(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client, orders_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    event, _ = await line_client.send_text(DEMO_CUSTOMER, "特上にぎり寿司が入っていませんでした")
    msgs = await answer(emu, event)
    for label in ("#1002", "特上にぎり寿司"):
        if rasa.tracker(DEMO_CUSTOMER)["paused"]:
            break
        msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, label)
    assert "承認" in texts_of(msgs)  # "this amount needs a team member's approval"
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"]["case_id"]
    card = await wait_for(lambda: (case_cards(slack, case_id) or [None])[0], 30, what="the card")
    approve = [e for e in card_elements(card, "case_approve") if e["value"].endswith("|refund_item")]
    assert approve and "¥4,800" in approve[0]["text"]["text"]

    def remedies():
        with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
            return db.execute("SELECT kind, amount FROM remedies WHERE idempotency_key = ?", (case_id,)).fetchall()

    def thread_texts():
        return [m.get("text") or "" for m in slack.messages(HANDOFF_CHANNEL) if m.get("thread_ts") == card["ts"]]

    before = len(pushes_to(emu, DEMO_CUSTOMER))
    # ¥4,800 is above this stack's agent limit (¥4,000): the agent's approval, pressed
    # twice, only waits for a supervisor; nothing is applied and the customer hears nothing
    for _ in range(2):
        await slack_client.press_button(
            approve[0]["action_id"], approve[0]["value"], user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
        )
    try:
        await wait_for(
            lambda: sum("a supervisor must approve" in t for t in thread_texts()) >= 2, 30, what="the supervisor notice"
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; the thread: {thread_texts()}") from None
    assert remedies() == [] and pushes_to(emu, DEMO_CUSTOMER)[before:] == []
    # the supervisor approves too: applied once, at the engine's amount
    for _ in range(2):  # a double click
        await slack_client.press_button(
            approve[0]["action_id"],
            approve[0]["value"],
            user_id=OTHER_AGENT,
            channel=HANDOFF_CHANNEL,
            message_ts=card["ts"],
        )
    pushed = await wait_for(lambda: pushes_to(emu, DEMO_CUSTOMER)[before:], 30, what="the confirmation")
    assert "¥4,800" in texts_of([p["message"] for p in pushed])
    await asyncio.sleep(2.0)
    with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
        approved_by = db.execute("SELECT approved_by FROM case_outcomes WHERE case_number = ?", (case_id,)).fetchone()
    assert remedies() == [("refund_item", 4800)]
    assert approved_by == ("佐藤 花子, Alex Kim",)
    # the case stays with the agent until resolved
    assert rasa.tracker(DEMO_CUSTOMER)["paused"] is True
    await slack_client.press_button(
        "case_resolve", case_id, user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    await wait_for(lambda: "Resolved" in card_text(case_cards(slack, case_id)[0]), 20, what="resolved")


@pytest.mark.asyncio
async def test_a_gateway_restart_in_the_middle_of_a_case_loses_nothing(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    case_id, card = await open_case(line_client, emu, slack, rasa, EMMA, "I'd like to speak to a real person please")
    await slack_client.press_button(
        "case_claim", case_id, user_id=OTHER_AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    await wait_for(
        lambda: f"<@{OTHER_AGENT}>" in card_text(case_cards(slack, case_id)[0]), 30, what="claim"
    )  # slow under load

    gateway.restart(kill=True)

    # the customer's message after the restart still goes to the same thread (LINE opens
    # new connections to the restarted gateway; so does a new client)
    async with LineWebhookClient(gateway.webhook_url, SECRET, token_source=emulator_tokens(emu)) as after:
        await after.send_text(EMMA, "Are you still there?")
        # a photo of the problem goes into the thread as a file
        photo = await after.image_event(EMMA)
        emu.add_content(photo["message"]["id"], b"\xff\xd8\xff\xe0 a photo of the bowl", "image/jpeg")
        await after.post([photo])
    await wait_for(
        lambda: "Are you still there?" in json.dumps(slack.thread(HANDOFF_CHANNEL, card["ts"])),
        20,
        what="the relay after the restart",
    )
    upload = await wait_for(
        lambda: [u for u in slack.uploads if u.get("thread_ts") == card["ts"]], 20, what="the photo in the thread"
    )
    assert upload[0]["size"] == len(b"\xff\xd8\xff\xe0 a photo of the bowl")
    # and the agent's reply still reaches the customer
    slack_client = SlackEventsClient(gateway.slack_url, SLACK_SECRET, api_emulator_url=slack_emulator.url)
    await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], OTHER_AGENT, "Yes, I'm here. Let me check.")
    pushed = await wait_for(
        lambda: [p for p in pushes_to(emu, EMMA) if p["message"].get("text") == "Yes, I'm here. Let me check."],
        20,
        what="the agent's reply",
    )
    assert "Alex" in pushed[0]["message"]["sender"]["name"]
    await slack_client.press_button(
        "case_resolve", case_id, user_id=OTHER_AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    pushed = await wait_for(
        lambda: [p for p in pushes_to(emu, EMMA) if "solve" in p["message"].get("text", "")],
        30,
        what="the English hand-back",
    )
    assert pushed
    await slack_client.close()


@pytest.mark.asyncio
async def test_forged_and_stale_slack_requests_are_refused_and_change_nothing(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    case_id, card = await open_case(line_client, emu, slack, rasa, EMMA, "I want to talk to a human")
    # The card is only the start of the case's opening: the transcript and Emma's recent
    # photos (one from an earlier test) follow it into the thread. Count from when it is done.
    await opening_settled(slack, card["ts"])
    calls = len(slack.calls)
    forged = await slack_client.press_button(
        "case_claim",
        case_id,
        user_id=AGENT,
        channel=HANDOFF_CHANNEL,
        message_ts=card["ts"],
        secret="not-the-signing-secret",
    )
    stale = await slack_client.press_button(
        "case_claim",
        case_id,
        user_id=AGENT,
        channel=HANDOFF_CHANNEL,
        message_ts=card["ts"],
        timestamp=int(time.time()) - 301,
    )
    forged_reply = await slack_client.thread_reply(
        HANDOFF_CHANNEL, card["ts"], AGENT, "forged", secret="not-the-signing-secret"
    )
    assert [forged[0], stale[0], forged_reply[0]] == [401, 401, 401]
    await asyncio.sleep(1.0)
    assert "Unclaimed" in card_text(case_cards(slack, case_id)[0])
    assert not [p for p in pushes_to(emu, EMMA) if p["message"].get("text") == "forged"]
    # Nothing was done to this case (only calls that name this case's card count: another
    # case's thread may still be busy).
    assert [
        c["method"] for c in slack.calls[calls:] if c["method"] != "auth.test" and card["ts"] in json.dumps(c)
    ] == []


@pytest.mark.asyncio
async def test_an_agent_applies_a_remedy_the_customer_refused_from_the_card_once(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client, orders_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    event, _ = await line_client.send_text(DEMO_CUSTOMER, "親子丼に別卵が付いていませんでした")
    msgs = await answer(emu, event)
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, "#1001")
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, "/deny")  # none of these: a person
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"]["case_id"]
    card = await wait_for(lambda: (case_cards(slack, case_id) or [None])[0], 30, what="the card")
    apply = [e for e in card_elements(card, "case_approve_offered") if e["value"].endswith("|send_item")]
    assert apply and "JST" in apply[0]["text"]["text"]
    await opening_settled(slack, card["ts"])
    before = len(pushes_to(emu, DEMO_CUSTOMER))
    # the agent talked the customer round in the thread and applies it: a double click
    for _ in range(2):
        await slack_client.press_button(
            apply[0]["action_id"], apply[0]["value"], user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
        )
    pushed = await wait_for(lambda: pushes_to(emu, DEMO_CUSTOMER)[before:], 30, what="the confirmation")
    assert "別卵" in texts_of([p["message"] for p in pushed])
    await asyncio.sleep(2.0)
    assert len(pushes_to(emu, DEMO_CUSTOMER)[before:]) == len(pushed)  # told once
    with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT kind FROM remedies WHERE idempotency_key = ?", (case_id,)).fetchall()
    assert rows == [("send_item",)]
    # the card shows it and offers nothing more to apply
    approved = await wait_for(
        lambda: [c for c in case_cards(slack, case_id) if "Approved" in card_text(c)], 20, what="the card"
    )
    updated = card_text(approved[0])
    assert "case_approve" not in updated and "<@" in updated
