"""Agents act from the Slack card, through the real gateway, Rasa, action server, orders
database and redis-server (LINE and Slack emulated): a combination of remedies, a goodwill
gesture with its limits, and the check on an agent's reply before it reaches the customer.

Every money move goes the one way: the gateway signs who decided what, the action server
verifies it and re-decides with the policy engine from the orders database, and the
repository applies it once whatever the clicks or Slack's retries.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from tests.support.line_stack import DEMO_CUSTOMER, HANDOFF_CHANNEL, texts_of, wait_for
from tests.system.line.test_slack_handoff import (  # noqa: F401  (the autouse fixture)
    AGENT,
    EMMA,
    OTHER_AGENT,
    OUTSIDER,
    answer,
    card_elements,
    card_text,
    case_cards,
    fresh_conversations,
    open_case,
    opening_settled,
    pushes_to,
    tap,
)


@pytest.fixture(autouse=True)
def no_earlier_remedies(orders_url):
    """The demo customers' earlier cases in this session are not this test's history (a
    fourth remedy in 30 days would send the case to a person as "too many claims")."""
    with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in ("remedies", "goodwill_gestures"):
            if table in tables:
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
    yield


def rows(orders_url, sql, *args):
    with sqlite3.connect(orders_url.removeprefix("sqlite:///")) as db:
        return db.execute(sql, args).fetchall()


def thread_texts(slack, card):
    return [m.get("text") or "" for m in slack.messages(HANDOFF_CHANNEL) if m.get("thread_ts") == card["ts"]]


@pytest.mark.asyncio
async def test_a_customer_who_refused_everything_gets_the_agents_combination_once_with_both_amounts(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client, orders_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    event, _ = await line_client.send_text(DEMO_CUSTOMER, "親子丼に別卵が付いていませんでした")
    msgs = await answer(emu, event)
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, "#1001")
    msgs = await tap(line_client, emu, DEMO_CUSTOMER, msgs, "/deny")  # none of these: a person
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"]["case_id"]
    card = await wait_for(lambda: (case_cards(slack, case_id) or [None])[0], 30, what="the card")
    combo = [
        e for e in card_elements(card, "case_approve_combo") if e["value"].endswith("|send_item+refund_delivery_fee")
    ]
    assert combo, card_text(card)
    assert "¥300" in combo[0]["text"]["text"]  # the delivery fee, priced by the engine
    await opening_settled(slack, card["ts"])
    before = len(pushes_to(emu, DEMO_CUSTOMER))
    # a double click, and the very same signed request again (as a retry would send it)
    payload = slack_client.block_actions_payload(
        combo[0]["action_id"], combo[0]["value"], user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    for _ in range(2):
        await slack_client.post_interaction(payload)
    await slack_client.press_button(
        combo[0]["action_id"], combo[0]["value"], user_id=AGENT, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
    )
    pushed = await wait_for(lambda: pushes_to(emu, DEMO_CUSTOMER)[before:], 30, what="the confirmation")
    await asyncio.sleep(2.0)
    told = [p["message"] for p in pushes_to(emu, DEMO_CUSTOMER)[before:]]
    assert len(told) == len(pushed) == 1, told  # one confirmation, with both parts
    assert "別卵" in texts_of(told) and "¥300" in texts_of(told)
    assert sorted(
        rows(orders_url, "SELECT kind, amount FROM remedies WHERE idempotency_key LIKE ?", f"{case_id}%")
    ) == [("refund_delivery_fee", 300), ("send_item", 0)]
    updated = await wait_for(
        lambda: [c for c in case_cards(slack, case_id) if "Approved" in card_text(c) or "Applied" in card_text(c)],
        20,
        what="the card showing it",
    )
    assert "case_approve" not in card_text(updated[0])  # nothing more to apply


@pytest.mark.asyncio
async def test_goodwill_above_an_agents_limit_waits_for_a_supervisor_and_an_outsider_cannot_give_it(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client, orders_url
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    case_id, card = await open_case(line_client, emu, slack, rasa, EMMA, "I want to talk to a human")
    await opening_settled(slack, card["ts"])
    goodwill = card_elements(card, "case_goodwill")
    assert goodwill, card_text(card)

    async def open_modal(user):
        opened = len(slack.open_views())
        await slack_client.press_button(
            goodwill[0]["action_id"], goodwill[0]["value"], user_id=user, channel=HANDOFF_CHANNEL, message_ts=card["ts"]
        )
        views = await wait_for(lambda: slack.open_views()[opened:], 20, what="the Goodwill modal")
        return views[-1]

    view = await open_modal(AGENT)
    assert view["view"]["callback_id"] == "case_goodwill" and view["user"] == AGENT
    # a bad amount keeps the modal open with the error under the field
    status, answer_ = await slack_client.submit_view(
        view["id"], AGENT, {"goodwill_kind": "store_credit", "goodwill_amount": "0", "goodwill_reason": "sorry"}
    )
    assert status == 200 and answer_["response_action"] == "errors" and "goodwill_amount" in answer_["errors"]
    # someone outside the handoff channel submitting the same modal gives nothing
    before = len(pushes_to(emu, EMMA))
    status, answer_ = await slack_client.submit_view(
        view["id"], OUTSIDER, {"goodwill_kind": "store_credit", "goodwill_amount": "500", "goodwill_reason": "x"}
    )
    assert status == 200 and (answer_ or {}).get("response_action") == "errors"
    # ¥5,000 is above an agent's own goodwill limit (¥2,000): only the thread hears of it
    reason = "Third late order this month; the customer waited an hour."
    status, answer_ = await slack_client.submit_view(
        view["id"], AGENT, {"goodwill_kind": "store_credit", "goodwill_amount": "5000", "goodwill_reason": reason}
    )
    assert status == 200 and not answer_
    await wait_for(lambda: any("supervisor" in t for t in thread_texts(slack, card)), 30, what="the supervisor notice")
    await asyncio.sleep(1.0)
    assert pushes_to(emu, EMMA)[before:] == []
    assert rows(orders_url, "SELECT * FROM goodwill_gestures") == []
    # the supervisor approves it from the card: given once, with the agent's reason kept
    pending = await wait_for(
        lambda: [e for c in case_cards(slack, case_id) for e in card_elements(c, "case_goodwill_approve")],
        20,
        what="the pending goodwill on the card",
    )
    assert "¥5,000" in pending[0]["text"]["text"]
    for _ in range(2):  # a double click
        await slack_client.press_button(
            pending[0]["action_id"],
            pending[0]["value"],
            user_id=OTHER_AGENT,
            channel=HANDOFF_CHANNEL,
            message_ts=card["ts"],
        )
    pushed = await wait_for(lambda: pushes_to(emu, EMMA)[before:], 30, what="the customer's confirmation")
    await asyncio.sleep(2.0)
    assert len(pushes_to(emu, EMMA)[before:]) == len(pushed)
    assert "¥5,000" in texts_of([p["message"] for p in pushed])
    given = rows(
        orders_url,
        "SELECT kind, amount, reason, approvers FROM goodwill_gestures WHERE idempotency_key = ?",
        f"{case_id}:goodwill",
    )
    assert [g[:3] for g in given] == [("store_credit", 5000, reason)]
    assert {a["name"] for a in json.loads(given[0][3])} == {"佐藤 花子", "Alex Kim"}  # who approved, kept


@pytest.mark.asyncio
async def test_a_bare_refusal_is_held_with_a_better_draft_and_a_note_never_reaches_the_customer(
    gateway, line_emulator, slack_emulator, rasa, line_client, slack_client
):
    emu, slack = line_emulator.emu, slack_emulator.emu
    case_id, card = await open_case(line_client, emu, slack, rasa, DEMO_CUSTOMER, "人と話したいです")
    await opening_settled(slack, card["ts"])
    before = len(pushes_to(emu, DEMO_CUSTOMER))
    warned = len([e for e in slack.ephemerals if e["user"] == AGENT])
    await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, "// 確認中、返金は不可")
    await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, "それはできません")
    warnings = await wait_for(
        lambda: [e for e in slack.ephemerals if e["user"] == AGENT][warned:], 20, what="the private warning"
    )
    assert "できません" in json.dumps(warnings[0], ensure_ascii=False)
    await asyncio.sleep(1.0)
    assert pushes_to(emu, DEMO_CUSTOMER)[before:] == []  # neither the note nor the refusal
    # sent again, unchanged: it goes out as written
    await slack_client.thread_reply(HANDOFF_CHANNEL, card["ts"], AGENT, "それはできません")
    pushed = await wait_for(lambda: pushes_to(emu, DEMO_CUSTOMER)[before:], 20, what="the second send")
    assert [p["message"]["text"] for p in pushed] == ["それはできません"]
    assert "返金は不可" not in texts_of([p["message"] for p in pushes_to(emu, DEMO_CUSTOMER)])
