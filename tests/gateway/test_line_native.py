"""LINE-native answers: a reply quotes the customer's message it is about (quoteToken),
and a customer's message is marked read once it has been answered, never before (the
mark-as-read API, for accounts with chat turned on). The real gateway app against the
LINE API emulator and the small Rasa stand-in of test_gateway_app."""

from __future__ import annotations

import asyncio

import pytest

from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from gateway.core.relay import quoted_reply
from tests.gateway.test_gateway_app import (  # noqa: F401  (fixtures used by name)
    EN_USER,
    SECRET,
    USER,
    emu,
    fake_bot,
    gw,
    make_gateway,
    replies,
    wait_until,
)
from tests.gateway.test_slack_desk import (  # noqa: F401  (fixtures used by name)
    AGENT,
    CHANNEL,
    open_posted_case,
    slack,
    slack_gateway,
)


def quotes(emu, user):
    return [d["message"].get("quoteToken") for d in emu.messages_for(user)]


@pytest.mark.asyncio
async def test_the_answer_to_a_complaint_quotes_it_and_a_small_talk_answer_does_not(gw, emu, fake_bot):
    hello, _ = await gw.client.send_text(USER, "こんにちは")
    assert await wait_until(lambda: len(emu.delivered) == 1)
    assert quotes(emu, USER) == [None]

    complaint, _ = await gw.client.send_text(USER, "remedies")
    assert await wait_until(lambda: len(emu.delivered) == 3)
    sent = emu.messages_for(USER)[1:]
    # the text above the card quotes the complaint; the flex card cannot quote (LINE)
    assert sent[0]["message"]["quoteToken"] == complaint["message"]["quoteToken"]
    assert sent[1]["message"]["type"] == "flex" and "quoteToken" not in sent[1]["message"]
    assert all(r["status"] == 200 for r in replies(emu))


@pytest.mark.asyncio
async def test_a_photo_is_thanked_quoting_the_photo(gw, emu):
    emu.add_content("880001", b"\xff\xd8jpegdata", "image/jpeg")
    event = await gw.client.image_event(EN_USER, message_id="880001")
    await gw.client.post([event])
    assert await wait_until(lambda: len(emu.delivered) == 1)
    assert quotes(emu, EN_USER) == [event["message"]["quoteToken"]]
    assert replies(emu)[0]["status"] == 200


@pytest.mark.asyncio
async def test_an_answer_that_comes_late_quotes_what_it_answers(gw, emu, fake_bot):
    fake_bot.up = False
    first, _ = await gw.client.send_text(USER, "first")
    second, _ = await gw.client.send_text(USER, "second")
    assert await wait_until(lambda: len(emu.delivered) == 2)  # the honest apologies, by reply
    assert quotes(emu, USER) == [None, None]
    fake_bot.up = True
    assert await wait_until(lambda: len(emu.delivered) == 4, timeout=5)
    late = emu.messages_for(USER)[2:]
    assert [d["via"] for d in late] == ["push", "push"]
    assert [d["message"]["quoteToken"] for d in late] == [
        first["message"]["quoteToken"],
        second["message"]["quoteToken"],
    ]


@pytest.mark.asyncio
async def test_a_message_is_marked_read_once_answered_not_before(gw, emu, fake_bot):
    fake_bot.up = False
    event, _ = await gw.client.send_text(USER, "まだ届きません")
    assert await wait_until(lambda: len(emu.delivered) == 1)  # the apology
    await asyncio.sleep(0.3)
    assert emu.reads == []  # kept for a retry: not answered yet, so not read
    fake_bot.up = True
    assert await wait_until(lambda: len(emu.delivered) == 2, timeout=5)
    assert await wait_until(lambda: emu.reads == [event["message"]["markAsReadToken"]])
    request = emu.requests_to("/v2/bot/chat/markAsRead")[0]
    assert request["status"] == 200 and request["json"] == {"markAsReadToken": event["message"]["markAsReadToken"]}


@pytest.mark.asyncio
async def test_with_chat_off_nothing_is_marked_read(make_gateway, emu, fake_bot):
    gw = await make_gateway(line_mark_as_read=False)
    await gw.client.send_text(USER, "こんにちは")
    assert await wait_until(lambda: len(emu.delivered) == 1)
    await asyncio.sleep(0.2)
    assert emu.requests_to("/v2/bot/chat/markAsRead") == []


@pytest.mark.asyncio
async def test_in_standby_the_gateway_neither_answers_nor_marks_read(gw, emu, fake_bot):
    event = await gw.client.text_event(USER, "こんにちは")
    event["mode"] = "standby"
    await gw.client.post([event])
    await asyncio.sleep(0.4)
    assert emu.delivered == [] and emu.requests_to("/v2/bot/chat/markAsRead") == []


@pytest.mark.asyncio
async def test_the_emulator_refuses_a_quote_on_a_message_that_cannot_quote(emu):
    from devkit.emulators.line_api import validate_messages

    flex = {"type": "flex", "altText": "x", "contents": {"type": "bubble"}, "quoteToken": "abc"}
    assert validate_messages([flex])[0]["property"] == "messages[0].quoteToken"
    assert validate_messages([{"type": "text", "text": "ok", "quoteToken": "abc"}]) == []


# --- a case with a person: read when claimed, quoted when the agent quotes -------------------


@pytest.mark.asyncio
async def test_a_customers_messages_to_a_case_are_read_when_an_agent_claims_it_and_quoted_when_the_agent_quotes(
    slack_gateway,  # noqa: F811
    slack,  # noqa: F811
    emu,  # noqa: F811
):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    line = LineWebhookClient(str(server.make_url("/line/webhook")), SECRET, token_source=emulator_tokens(emu))
    try:
        first, _ = await line.send_text(case.user_id, "卵が入っていませんでした")
        second, _ = await line.send_text(case.user_id, "あと味噌汁も冷めていました")
        for _ in range(100):  # both relayed to the case's thread
            if len((await cases.get(case.case_id)).quotes) == 2:
                break
            await asyncio.sleep(0.05)
        assert [q["token"] for q in (await cases.get(case.case_id)).quotes] == [
            first["message"]["quoteToken"],
            second["message"]["quoteToken"],
        ]
        await asyncio.sleep(0.2)
        assert emu.reads == []  # nobody has the case open yet: not read

        await client.press_button("case_claim", case.case_id, user_id=AGENT, channel=CHANNEL, message_ts=case.thread_ts)
        # the claim marks the latest message read (LINE reads the earlier ones with it)
        assert await wait_until(lambda: emu.reads == [second["message"]["markAsReadToken"]], timeout=5)

        # a Slack quote of the first message: LINE shows the reply quoting it
        await client.thread_reply(
            CHANNEL, case.thread_ts, AGENT, "&gt; 卵が入っていませんでした\nすぐに別卵をお届けします。"
        )
        assert await wait_until(lambda: emu.messages_for(case.user_id), timeout=5)
        sent = emu.messages_for(case.user_id)[0]["message"]
        assert sent["text"] == "すぐに別卵をお届けします。"
        assert sent["quoteToken"] == first["message"]["quoteToken"]

        # a message while the case is claimed is read on arrival
        third, _ = await line.send_text(case.user_id, "ありがとうございます")
        assert await wait_until(lambda: third["message"]["markAsReadToken"] in emu.reads, timeout=5)
    finally:
        await line.close()


def test_a_quote_that_matches_nothing_the_customer_said_goes_as_written():
    quotes = [{"text": "卵が入っていませんでした", "token": "q1"}]
    assert quoted_reply("> 卵が入って\nお届けします", quotes) == ("お届けします", "q1")
    assert quoted_reply("> 全然ちがう話\nお届けします", quotes) == ("> 全然ちがう話\nお届けします", None)
    assert quoted_reply("> 卵が入って", quotes) == ("> 卵が入って", None)  # nothing after the quote
    assert quoted_reply("お届けします", quotes) == ("お届けします", None)
