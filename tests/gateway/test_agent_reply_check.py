"""The reply book in the reply path, through the real gateway app against the Slack and LINE
emulators: a flagged reply is held back and only its agent is warned (chat.postEphemeral in
the case's thread) with a better draft in the customer's language; the same text sent again
reaches the customer unchanged; a reply with a next step goes out at once; internal notes
are neither sent nor checked; Slack's retries and a resume after a crash warn once."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from devkit.emulators.slack_api import AGENT_2, OUTSIDER
from gateway.app import GATEWAY
from gateway.core.cases import REPLY_WARNING_TTL_S, RedisCaseStore
from gateway.core.handoff import AgentDeskError
from gateway.core.replies import text_digest
from gateway.slack.desk import UnconfiguredDesk
from tests.gateway.test_gateway_app import emu, fake_bot, wait_until  # noqa: F401  (fixtures)
from tests.gateway.test_slack_desk import (  # noqa: F401  (fixtures)
    AGENT,
    CHANNEL,
    desk,
    open_posted_case,
    sample_case,
    slack,
    slack_gateway,
)


def sent_to(emu, user):  # noqa: F811
    return [m["message"].get("text") for m in emu.messages_for(user)]


def warnings_for(slack, user=AGENT):  # noqa: F811
    return [e for e in slack.ephemerals if e["user"] == user]


async def settle():
    await asyncio.sleep(0.3)  # what would have been sent has been by now


@pytest.mark.asyncio
async def test_a_bare_refusal_is_held_and_its_agent_warned_then_sent_unchanged_the_second_time(
    slack_gateway,  # noqa: F811
    slack,  # noqa: F811
    emu,  # noqa: F811
):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    status, _ = await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "それはできません")
    assert status == 200
    assert await wait_until(lambda: warnings_for(slack))
    await settle()
    assert sent_to(emu, case.user_id) == []  # nothing reached the customer
    warning = warnings_for(slack)[0]
    assert warning["channel"] == CHANNEL and warning["thread_ts"] == case.thread_ts
    text = warning["text"]
    assert "「できません」" in text and "Send it again to send it unchanged" in text
    # the better draft, in the customer's language (ja) with their name
    assert "デモ 太郎様" in text and "代わりに" in text
    # nobody else sees it: no public message in the thread carries the warning
    assert "Send it again" not in json.dumps(slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False)
    async with aiohttp.ClientSession() as http:  # queryable from outside the test, too
        async with http.get(f"{slack.root_url}/_emulator/ephemerals") as resp:
            assert any(e["text"] == text for e in await resp.json())

    status, _ = await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "それは できません")  # same, spaced
    assert status == 200
    assert await wait_until(lambda: sent_to(emu, case.user_id) == ["それは できません"])
    await settle()
    assert len(warnings_for(slack)) == 1  # not warned again


@pytest.mark.asyncio
async def test_a_reply_with_a_next_step_goes_out_at_once(slack_gateway, slack, emu):  # noqa: F811
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    reply = "申し訳ございません、返金はできませんが、代わりにクーポンをお送りいたします。"
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, reply)
    assert await wait_until(lambda: sent_to(emu, case.user_id) == [reply])
    assert warnings_for(slack) == []


@pytest.mark.asyncio
async def test_an_internal_note_is_never_sent_nor_checked(slack_gateway, slack, emu):  # noqa: F811
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    for note in ("// 返金はできません、当事者間で解決してもらう", "メモ：できません"):
        status, _ = await client.thread_reply(CHANNEL, case.thread_ts, AGENT, note)
        assert status == 200
    await settle()
    await settle()
    assert sent_to(emu, case.user_id) == [] and warnings_for(slack) == []


@pytest.mark.asyncio
async def test_a_slack_retry_of_a_warned_message_does_not_warn_twice_nor_send(slack_gateway, slack, emu):  # noqa: F811
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "それはできません")
    assert await wait_until(lambda: warnings_for(slack))
    for n in (1, 2):
        status, _ = await client.retry_last(retry_num=n)
        assert status == 200
    await settle()
    assert len(warnings_for(slack)) == 1 and sent_to(emu, case.user_id) == []
    # the journal knows the message too (a retry the app's dedupe would not catch)
    handoff = server.app[GATEWAY].handoff
    ts = client.last_event["ts"]
    again = await handoff.agent_reply(CHANNEL, case.thread_ts, ts, AGENT, "佐藤 花子", "それはできません")
    assert again == "duplicate"
    # resumed after a crash (the journal entry never marked done): held, not warned again
    resumed = await handoff.relay._agent_reply(CHANNEL, case.thread_ts, ts, AGENT, "佐藤 花子", "それはできません")
    assert resumed == "warned"
    await settle()
    assert len(warnings_for(slack)) == 1 and sent_to(emu, case.user_id) == []


@pytest.mark.asyncio
async def test_blame_shifting_is_held_even_with_a_next_step_and_an_edited_reply_is_checked_afresh(
    slack_gateway,  # noqa: F811
    slack,  # noqa: F811
    emu,  # noqa: F811
):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "配達員に直接ご連絡ください。返金はいたします。")
    assert await wait_until(lambda: len(warnings_for(slack)) == 1)
    assert "弊社が責任をもって対応いたします" in warnings_for(slack)[0]["text"]
    # rewritten, still curt: a new text, checked (and warned about) again
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "店舗に直接お問い合わせください。")
    assert await wait_until(lambda: len(warnings_for(slack)) == 2)
    # rewritten well: goes out
    better = "ご不便をおかけし申し訳ございません。店舗への確認は弊社で行い、本日中にご連絡いたします。"
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, better)
    assert await wait_until(lambda: sent_to(emu, case.user_id) == [better])
    assert len(warnings_for(slack)) == 2


@pytest.mark.asyncio
async def test_each_agent_is_warned_once_and_an_english_customer_gets_an_english_draft(
    slack_gateway,  # noqa: F811
    slack,  # noqa: F811
    emu,  # noqa: F811
):
    server, client, cases = slack_gateway
    english = sample_case()
    english.context["customer"] = {**english.context["customer"], "language": "en", "display_name": "Emma"}
    case, _ = await cases.open(english)
    case = await server.app[GATEWAY].handoff.announce(case)
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "Sorry, we can't do that.")
    assert await wait_until(lambda: warnings_for(slack))
    text = warnings_for(slack)[0]["text"]
    assert "Emma, I'm sorry we can't do exactly that. What we can do instead is ___" in text
    assert text.index("This reply says no") < text.index("代わりにできること")  # their language first
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT_2, "Sorry, we can't do that.")
    assert await wait_until(lambda: warnings_for(slack, AGENT_2))
    await settle()
    assert sent_to(emu, case.user_id) == []


@pytest.mark.asyncio
async def test_the_warning_is_kept_in_redis_for_a_day(redis_url):
    store = RedisCaseStore.from_url(redis_url)
    store._p = "gw:test-reply-warned:"
    try:
        digest = text_digest("それはできません")
        assert await store.reply_warning("K1", AGENT, digest) is None
        await store.remember_reply_warning("K1", AGENT, digest, "1700000000.000100")
        assert await store.reply_warning("K1", AGENT, digest) == "1700000000.000100"
        assert await store.reply_warning("K1", AGENT_2, digest) is None
        assert await store.reply_warning("K2", AGENT, digest) is None
        ttl = await store._r.ttl(f"gw:test-reply-warned:reply_warned:K1:{AGENT}:{digest}")
        assert REPLY_WARNING_TTL_S - 5 <= ttl <= REPLY_WARNING_TTL_S
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_warn_agent_is_a_private_note_in_the_thread_for_channel_members_only(slack, desk):  # noqa: F811
    case = sample_case()
    case.channel, case.thread_ts = await desk.post_case(case)
    await desk.warn_agent(case, AGENT, "「できません」 <b> & co")
    assert slack.ephemerals[-1]["text"] == "「できません」 &lt;b&gt; &amp; co"  # shown as written
    assert slack.ephemerals[-1]["thread_ts"] == case.thread_ts
    with pytest.raises(AgentDeskError, match="user_not_in_channel"):
        await desk.warn_agent(case, OUTSIDER, "x")
    with pytest.raises(AgentDeskError):
        await UnconfiguredDesk().warn_agent(case, AGENT, "x")


@pytest.mark.asyncio
async def test_a_reply_whose_warning_cannot_be_shown_is_sent_as_written(slack_gateway, slack, emu):  # noqa: F811
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    slack.fail_next("chat.postEphemeral", status=500, count=10)
    await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "それはできません")
    assert await wait_until(lambda: sent_to(emu, case.user_id) == ["それはできません"])
