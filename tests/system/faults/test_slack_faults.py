"""Faults on the agents' side: the Slack API failing (429 ratelimited, then 500) while a
handoff is posted, and the gateway killed after acking an agent's thread reply and before
pushing it to LINE. Real gateway, Rasa, action server, redis-server; Slack and LINE
emulated.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from devkit.emulators.slack_client import SlackEventsClient
from tests.support.line_stack import HANDOFF_CHANNEL, SLACK_SECRET, reply_for, wait_for
from tests.system.faults.conftest import user_turns
from tests.system.line.test_slack_handoff import (  # noqa: F401  (fresh_conversations: autouse)
    AGENT,
    EMMA,
    case_cards,
    fresh_conversations,
    open_case,
    pushes_to,
)

APOLOGY = "could not process"


def case_record(redis_url, case_id):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        raw = r.get(f"gw:case:case:{case_id}")
        return json.loads(raw) if raw else None
    finally:
        r.close()


@pytest.mark.asyncio
async def test_slack_down_while_a_case_is_posted_it_is_posted_later_with_what_came_meanwhile(
    gateway, line_emulator, slack_emulator, rasa, line_client, redis_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    slack.fail_next("chat.postMessage", 429, count=2, retry_after=1)  # ratelimited, then down
    slack.fail_next("chat.postMessage", 500, count=10000)
    try:
        event, res = await line_client.send_text(EMMA, "I'd like to speak to a real person please")
        assert res.status == 200
        told = await wait_for(lambda: reply_for(emu, event["replyToken"]), 60, what="the answer")
        told_text = " ".join(m.get("text", "") for m in told["json"]["messages"])
        assert told_text and APOLOGY not in told_text  # told a person will answer, not sorry
        case_id = await wait_for(lambda: rasa.tracker(EMMA)["slots"].get("case_id"), 30, what="a case id")
        meanwhile = ["My order never arrived", "Hello? Is anyone there?"]
        for text in meanwhile:
            e, res = await line_client.send_text(EMMA, text)
            assert res.status == 200
        # kept with the case while Slack is down
        await wait_for(
            lambda: len(((case_record(redis_url, case_id) or {}).get("context") or {}).get("backlog") or []) == 2,
            30,
            what="the backlog",
        )
        assert case_cards(slack, case_id) == []
        assert [c for c in slack.calls_to("chat.postMessage") if c.get("error")]  # it was tried
    finally:
        slack.reset()  # Slack answers again
    card = await wait_for(lambda: (case_cards(slack, case_id) or [None])[0], 30, what="the card")
    await wait_for(
        lambda: all(t in json.dumps(slack.thread(HANDOFF_CHANNEL, card["ts"])) for t in meanwhile),
        30,
        what="the backlog in the thread",
    )
    await asyncio.sleep(2.0)
    assert len(case_cards(slack, case_id)) == 1  # posted once
    thread = json.dumps(slack.thread(HANDOFF_CHANNEL, card["ts"]))
    assert thread.index(meanwhile[0]) < thread.index(meanwhile[1])  # in the customer's order
    assert thread.count(meanwhile[0]) == 1 and thread.count(meanwhile[1]) == 1
    assert (case_record(redis_url, case_id)["context"].get("backlog") or []) == []
    # the bot stayed quiet while a person owns the case; the tracker has each message once
    turns = user_turns(rasa, EMMA)
    assert [t for t in turns if t in meanwhile] == meanwhile


@pytest.mark.asyncio
async def test_gateway_killed_after_acking_an_agent_reply_delivers_it_once_after_restart(
    gateway, line_emulator, slack_emulator, rasa, line_client, redis_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    case_id, card = await open_case(line_client, emu, slack, rasa, EMMA, "I'd like to speak to a real person please")
    reply = "Hello, this is Sato. I am sending a new order right now."
    # Its own client, not the `slack_client` fixture: it is closed before the gateway
    # restarts, so that no kept-alive connection to the killed process is reused.
    slack_client = SlackEventsClient(gateway.slack_url, SLACK_SECRET, api_emulator_url=slack_emulator.url)
    try:
        # LINE makes the push wait 20 s: the gateway is between Slack's ack and LINE
        emu.fail_next("/v2/bot/message/push", 503, times=1, headers={"Retry-After": "20"})
        status, _ = await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, reply)
        assert status == 200  # Slack got its ack: it will not send this event again
        await wait_for(
            lambda: [
                p for p in emu.requests_to("/v2/bot/message/push") if p["json"]["to"] == EMMA and p.get("status") == 503
            ],
            30,
            what="the push attempt",
        )
        gateway.stop(kill=True)
    finally:
        await slack_client.close()
        gateway.start()
    pushed = await wait_for(
        lambda: [p for p in pushes_to(emu, EMMA) if p["message"].get("text") == reply],
        60,
        what="the agent's reply after the restart",
    )
    await asyncio.sleep(2.0)
    assert len([p for p in pushes_to(emu, EMMA) if p["message"].get("text") == reply]) == 1
    assert "佐藤" in pushed[0]["message"]["sender"]["name"]  # under the agent's name
    case = case_record(redis_url, case_id)
    assert case["status"] == "claimed" and case["relayed"]["to_customer"] == 1
    # the agent sees it delivered
    await wait_for(
        lambda: any(
            r.get("name") == "white_check_mark"
            for m in slack.messages(channel=HANDOFF_CHANNEL)
            for r in m.get("reactions") or []
        ),
        20,
        what="the delivered mark",
    )
    # and the tracker holds the agent's turn once
    bot_turns = [e for e in rasa.tracker(EMMA)["events"] if e["event"] == "bot" and e.get("text") == reply]
    assert len(bot_turns) == 1
