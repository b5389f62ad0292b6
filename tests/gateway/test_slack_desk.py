"""The Slack side of handoffs against the local Slack Web API emulator (real HTTP, bot
token checked): the case card and thread, photos, who may act, failures kept as
AgentDeskError; and the gateway's POST /slack/events (bolt) with signed requests."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from devkit.emulators.slack_api import SlackApiEmulator
from devkit.emulators.slack_client import SlackEventsClient
from gateway.app import GATEWAY, create_app
from gateway.core.cases import Case, MemoryCaseStore
from gateway.core.events import MemoryEventStore
from gateway.core.handoff import AgentDeskError
from gateway.slack.cards import case_card, transcript_messages
from gateway.slack.desk import SlackDesk, make_web_client
from tests.gateway.test_gateway_app import emu, fake_bot, settings_for  # noqa: F401  (fixtures)

TOKEN, SIGNING = "xoxb-unit-test", "unit-signing-secret"
CHANNEL, AGENT, OUTSIDER = "C0HANDOFF1", "U0AGENT001", "U0OUTSIDER"


def sample_case(**changes) -> Case:
    context = {
        "case_id": "K7",
        "reason": "all_remedies_refused",
        "problem": "missing_item",
        "summary": "all_remedies_refused | missing_item #1001: 別卵 ¥80 | refused send_item, refund_item",
        "created_at": "2026-11-25T10:00:00+00:00",
        "customer": {"display_name": "デモ 太郎", "customer_id": 1, "language": "ja", "line_user_id": "U1"},
        "order": {"number": "1001", "shop": "とり政 渋谷店", "total": 1510, "status": "delivered"},
        "items": [
            {"name_ja": "親子丼", "name_en": "Oyakodon", "unit_price": 980, "quantity": 1, "claimed": False},
            {"name_ja": "別卵", "name_en": "Extra egg", "unit_price": 80, "quantity": 1, "claimed": True},
        ],
        "remedies_offered": [
            {"kind": "send_item", "amount": 0, "eta": "2026-11-25T10:40:00+00:00"},
            {"kind": "refund_item", "amount": 80},
        ],
        "remedies_refused": ["send_item", "refund_item"],
        "remedies_needing_approval": [{"kind": "refund_item", "amount": 4800}],
        "frustration": {
            "score": 1.4,
            "threshold": 1.0,
            "reasons": [{"signal": "all_remedies_refused", "weight": 0.6, "detail": ""}],
        },
        "transcript": [
            {"role": "customer", "text": "親子丼に別卵が付いていませんでした <b>"},
            {"role": "bot", "text": "どのご注文ですか？"},
        ],
    }
    case = Case(case_id="K7", user_id="U1", context=context)
    for k, v in changes.items():
        setattr(case, k, v)
    return case


@pytest_asyncio.fixture
async def slack():
    emulator = SlackApiEmulator(TOKEN)
    url = await emulator.start()
    emulator.url = url
    yield emulator
    await emulator.stop()


@pytest.fixture
def desk(slack):
    return SlackDesk(make_web_client(TOKEN, slack.url), CHANNEL, oncall_mention="<!subteam^S0ONCALL>")


# --- cards ---------------------------------------------------------------------------------


def test_card_leads_with_the_summary_and_holds_who_what_and_the_buttons():
    card = case_card(sample_case())
    text = json.dumps(card["blocks"], ensure_ascii=False)
    assert card["blocks"][0]["type"] == "header" and "Every remedy refused" in card["blocks"][0]["text"]["text"]
    assert "別卵 ¥80" in card["blocks"][1]["text"]["text"]
    for expected in (
        "デモ 太郎",
        "#1001",
        "¥1,510",
        "Refused / 辞退: send the item, refund the item",
        "¥4,800",
        "Frustration",
        "Unclaimed",
        "case_claim",
        "case_resolve",
    ):
        assert expected in text, expected
    actions = [b for b in card["blocks"] if b["type"] == "actions"][0]["elements"]
    approve = [a for a in actions if a["action_id"].startswith("case_approve") and "_offered" not in a["action_id"]]
    assert approve[0]["value"] == "K7|refund_item" and approve[0]["confirm"]
    # what the engine offered (and the customer refused) an agent can apply from the card
    apply = [a["text"]["text"] for a in actions if a["action_id"].startswith("case_approve_offered")]
    assert apply == ["Apply send the item (by 11-25 19:40 JST)", "Apply refund the item ¥80"]
    assert all(len(a["text"]["text"]) <= 75 for a in actions)


def test_claimed_and_resolved_cards_change_their_buttons():
    claimed = json.dumps(case_card(sample_case(status="claimed", agent_id=AGENT))["blocks"])
    assert f"<@{AGENT}>" in claimed and "case_claim" not in claimed and "case_resolve" in claimed
    done = case_card(sample_case(status="resolved", resolved_by="佐藤 花子"))
    assert not [b for b in done["blocks"] if b["type"] == "actions"]
    approved = json.dumps(
        case_card(sample_case(approved=[{"remedy": "refund_item", "by": "佐藤"}]))["blocks"], ensure_ascii=False
    )
    assert "case_approve" not in approved and "Approved" in approved


def test_transcript_is_escaped_and_split_to_fit_slack_limits():
    case = sample_case()
    case.context["transcript"] = [{"role": "customer", "text": "あ" * 500} for _ in range(40)]
    messages = transcript_messages(case)
    sections = [b["text"]["text"] for m in messages for b in m["blocks"]]
    assert all(len(s) <= 3000 for s in sections) and len(sections) > 1
    assert "&lt;b&gt;" in transcript_messages(sample_case())[0]["blocks"][0]["text"]["text"]


# --- the desk against the Slack API emulator ------------------------------------------------


@pytest.mark.asyncio
async def test_post_case_puts_the_card_in_the_channel_and_the_transcript_in_its_thread(slack, desk):
    channel, ts = await desk.post_case(sample_case())
    assert channel == CHANNEL
    card = [m for m in slack.messages(channel=CHANNEL) if m["ts"] == ts][0]
    assert "<!subteam^S0ONCALL>" in card["text"]  # the on-duty group is told at once
    thread = slack.thread(CHANNEL, ts)
    assert "親子丼に別卵が付いていませんでした" in json.dumps(thread[1:], ensure_ascii=False)


@pytest.mark.asyncio
async def test_update_reply_photo_and_delivered_mark(slack, desk, tmp_path):
    case = sample_case()
    case.channel, case.thread_ts = await desk.post_case(case)
    case.status, case.agent_id = "claimed", AGENT
    await desk.update_card(case)
    card = [m for m in slack.messages(channel=CHANNEL) if m["ts"] == case.thread_ts][0]
    assert f"<@{AGENT}>" in json.dumps(card["blocks"])
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"\xff\xd8fake-jpeg")
    await desk.post_photo(case, {"path": str(photo)})
    assert slack.uploads[-1]["thread_ts"] == case.thread_ts and slack.uploads[-1]["size"] == len(b"\xff\xd8fake-jpeg")
    ts = slack.add_user_message(CHANNEL, AGENT, "hello", thread_ts=case.thread_ts)
    await desk.mark_delivered(case, ts, True)
    reacted = [m for m in slack.messages(channel=CHANNEL) if m["ts"] == ts][0]
    assert [r["name"] for r in reacted["reactions"]] == ["white_check_mark"]


@pytest.mark.asyncio
async def test_members_and_names_come_from_slack(desk):
    assert await desk.is_member(AGENT)
    assert not await desk.is_member(OUTSIDER)
    assert await desk.agent_name(AGENT) == "佐藤 花子"


@pytest.mark.asyncio
async def test_slack_failures_become_agent_desk_errors_and_rate_limits_are_retried(slack, desk):
    slack.fail_next("chat.postMessage", status=429, count=1, retry_after=1)
    _, ts = await desk.post_case(sample_case())  # retried after Retry-After, then posted
    assert ts
    slack.fail_next("chat.postMessage", status=500, count=5)
    with pytest.raises(AgentDeskError):
        await desk.post_case(sample_case())
    bad = SlackDesk(make_web_client("xoxb-wrong", slack.url), CHANNEL)
    with pytest.raises(AgentDeskError, match="invalid_auth"):
        await bad.post_case(sample_case())


# --- POST /slack/events through the gateway (bolt) ------------------------------------------


@pytest_asyncio.fixture
async def slack_gateway(emu, fake_bot, slack, tmp_path):  # noqa: F811
    cases = MemoryCaseStore()
    settings = settings_for(
        emu,
        fake_bot,
        tmp_path,
        slack_bot_token=TOKEN,
        slack_signing_secret=SIGNING,
        slack_api_base_url=slack.url,
        slack_handoff_channel=CHANNEL,
        case_announce_interval_s=0.2,
    )
    server = TestServer(create_app(settings, store=MemoryEventStore(), cases=cases))
    await server.start_server()
    client = SlackEventsClient(str(server.make_url("/slack/events")), SIGNING, api_emulator_url=slack.url)
    yield server, client, cases
    await client.close()
    await server.close()


async def open_posted_case(server, cases) -> Case:
    gateway = server.app[GATEWAY]
    case, _ = await cases.open(sample_case())
    return await gateway.handoff.announce(case)


@pytest.mark.asyncio
async def test_unsigned_forged_and_stale_requests_get_401_and_do_nothing(slack_gateway, slack):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    calls = len(slack.calls)
    forged = await client.press_button(
        "case_claim", case.case_id, user_id=AGENT, channel=CHANNEL, message_ts=case.thread_ts, secret="wrong"
    )
    stale = await client.press_button(
        "case_claim",
        case.case_id,
        user_id=AGENT,
        channel=CHANNEL,
        message_ts=case.thread_ts,
        timestamp=int(time.time()) - 301,
    )
    assert (forged[0], stale[0]) == (401, 401)
    await asyncio.sleep(0.3)
    assert (await cases.get(case.case_id)).status == "open"
    assert [c for c in slack.calls[calls:] if c["method"] != "auth.test"] == []


@pytest.mark.asyncio
async def test_url_verification_is_answered(slack_gateway):
    _, client, _ = slack_gateway
    status, body = await client.url_verification("challenge-123")
    assert status == 200 and "challenge-123" in body


@pytest.mark.asyncio
async def test_only_channel_members_can_claim(slack_gateway, slack):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    await client.press_button("case_claim", case.case_id, user_id=OUTSIDER, channel=CHANNEL, message_ts=case.thread_ts)
    for _ in range(50):
        if slack.ephemerals:
            break
        await asyncio.sleep(0.05)
    assert "Only members" in json.dumps(slack.ephemerals[-1], ensure_ascii=False)
    assert (await cases.get(case.case_id)).status == "open"
    status, _ = await client.press_button(
        "case_claim", case.case_id, user_id=AGENT, channel=CHANNEL, message_ts=case.thread_ts
    )
    assert status == 200
    for _ in range(50):
        if (await cases.get(case.case_id)).status == "claimed":
            break
        await asyncio.sleep(0.05)
    claimed = await cases.get(case.case_id)
    assert claimed.status == "claimed" and claimed.agent_name == "佐藤 花子"
    for _ in range(50):
        if "佐藤 花子 claimed" in json.dumps(slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the claim was not announced in the thread")


@pytest.mark.asyncio
async def test_a_case_whose_slack_post_failed_is_posted_by_the_announcer(slack_gateway, slack):
    server, _, cases = slack_gateway
    slack.fail_next("chat.postMessage", status=500, count=10)
    case, _ = await cases.open(sample_case())
    case = await server.app[GATEWAY].handoff.announce(case)
    assert case.thread_ts is None  # kept, not lost
    await cases.update(case.case_id, lambda c: c.context.setdefault("backlog", []).append({"text": "まだですか"}))
    for _ in range(100):  # the announcer loop retries every 0.2 s
        case = await cases.get(case.case_id)
        if case.thread_ts:
            break
        await asyncio.sleep(0.1)
    assert case.thread_ts, "the announcer did not post the case"
    assert "まだですか" in json.dumps(slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False)


@pytest.mark.asyncio
async def test_an_unclaimed_case_is_announced_again_with_the_on_duty_mention(emu, fake_bot, slack, tmp_path):  # noqa: F811
    cases = MemoryCaseStore()
    settings = settings_for(
        emu,
        fake_bot,
        tmp_path,
        slack_bot_token=TOKEN,
        slack_signing_secret=SIGNING,
        slack_api_base_url=slack.url,
        slack_handoff_channel=CHANNEL,
        case_announce_interval_s=0.1,
        slack_reannounce_after_s=0.5,
        slack_oncall_mention="<!subteam^S0ONCALL>",
    )
    server = TestServer(create_app(settings, store=MemoryEventStore(), cases=cases))
    await server.start_server()
    try:
        case = await open_posted_case(server, cases)
        for _ in range(60):
            thread = json.dumps(slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False)
            if "Still unclaimed" in thread:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the unclaimed case was not announced again")
        again = [m for m in slack.thread(CHANNEL, case.thread_ts) if "Still unclaimed" in (m.get("text") or "")]
        assert "<!subteam^S0ONCALL>" in again[0]["text"]
        assert any(
            c["method"] == "chat.postMessage" and str(c["args"].get("reply_broadcast")).lower() == "true"
            for c in slack.calls
        )
        # once claimed, it is not announced again
        await cases.claim(case.case_id, AGENT, "佐藤 花子", time.time())
        count = len(again)
        await asyncio.sleep(1.0)
        assert (
            len([m for m in slack.thread(CHANNEL, case.thread_ts) if "Still unclaimed" in (m.get("text") or "")])
            == count
        )
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_a_claim_pressed_while_the_transcript_is_posting_shows_on_the_card(slack_gateway, slack):
    # An agent can press Claim as soon as the card appears, before the transcript under it
    # is done and the thread is recorded: the claim must still show on the card.
    server, _, cases = slack_gateway
    handoff = server.app[GATEWAY].handoff
    case, _ = await cases.open(sample_case())
    await handoff.claim(case.case_id, AGENT, "佐藤 花子")
    case = await handoff.announce(case)
    card = next(m for m in slack.messages(channel=CHANNEL) if m["ts"] == case.thread_ts)
    blocks = json.dumps(card.get("blocks"), ensure_ascii=False)
    assert f"<@{AGENT}>" in blocks and "case_claim" not in blocks
    assert "佐藤 花子 claimed" in json.dumps(slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False)


def test_card_times_are_in_the_shops_zone_with_the_zone_named():
    offered = [{"kind": "send_item", "amount": 80, "eta": "2026-12-01T09:04:00+00:00"}]
    card = json.dumps(
        case_card(
            sample_case(
                context={
                    **sample_case().context,
                    "remedies_offered": offered,
                    "created_at": "2026-12-01T08:30:00+00:00",
                }
            )
        )["blocks"],
        ensure_ascii=False,
    )
    assert "send the item ¥80 (by 12-01 18:04 JST)" in card
    assert "opened 12-01 17:30 JST" in card


@pytest.mark.asyncio
async def test_a_case_announced_by_its_turn_and_by_the_announcer_at_once_gets_one_card(slack_gateway, slack):
    server, _, cases = slack_gateway
    gateway = server.app[GATEWAY]
    case, _ = await cases.open(sample_case())
    # the turn that opened the case and the announcer's loop, both seeing no thread yet
    await asyncio.gather(gateway.handoff.announce(case), gateway.handoff.announce(case))
    cards = [m for m in slack.messages(channel=CHANNEL) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    assert len(cards) == 1
    assert (await cases.get(case.case_id)).thread_ts == cards[0]["ts"]
