"""LINE's account link on the gateway's side and in the LINE emulator: the bot's
`{"account_link": {}}` payload becomes a button to the shop's login page with a fresh link
token; LINE's accountLink event triggers the bot with the nonce (ok) or gets a polite
text (failed); the emulator's link tokens and accountLink page behave as LINE documents."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from devkit.emulators.line_api import LineApiEmulator
from devkit.emulators.line_client import sign
from gateway.core.events import DONE
from tests.gateway.test_gateway_app import (  # noqa: F401  (fixtures)
    EN_USER,
    RASA_TOKEN,
    SECRET,
    TOKEN,
    USER,
    FakeBot,
    emu,
    gw,
    make_gateway,
    replies,
    serving,
    wait_until,
)

LOGIN = "https://shop.example/account-link"
NONCE = "eyJjIjoxN30.c2lnbmVkLWJ5LXRoZS1zaG9w"  # what the shop signed (opaque here)
LINKED = "山田 花子様のアカウントと連携しました。次回からは注文番号なしでご注文をお調べできます。"


class LinkBot(FakeBot):
    """FakeBot plus Rasa's tracker events and trigger_intent, as the gateway uses them for
    the accountLink event."""

    def __init__(self):
        super().__init__()
        self.appended = []  # (sender, events) appended to a tracker
        self.triggered = []  # (sender, intent) run by trigger_intent
        self.trigger_answers = {}  # intent -> the bot's messages for it

    def rasa_app(self):
        app = super().rasa_app()

        async def append(request):
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            self.appended.append((request.match_info["sender"], await request.json()))
            return web.json_response({})

        async def trigger(request):
            if not self.up:
                return web.Response(status=502, text="down")
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            name = (await request.json())["name"]
            self.triggered.append((request.match_info["sender"], name))
            return web.json_response({"messages": self.trigger_answers.get(name, [])})

        app.router.add_post("/conversations/{sender}/tracker/events", append)
        app.router.add_post("/conversations/{sender}/trigger_intent", trigger)
        return app


@pytest_asyncio.fixture
async def fake_bot():
    async for bot in serving(LinkBot()):
        yield bot


def flex_buttons(messages):
    return [
        c["action"]
        for m in messages
        if m["type"] == "flex"
        for c in m["contents"].get("footer", {}).get("contents", [])
        if c.get("type") == "button"
    ]


@pytest_asyncio.fixture
async def linking(make_gateway):
    return await make_gateway(account_link_login_url=LOGIN)


# --- the offer: a URI button with a fresh link token ------------------------------------------


@pytest.mark.asyncio
async def test_the_account_link_payload_becomes_a_uri_button_with_a_fresh_link_token(linking, emu, fake_bot):
    fake_bot.answers["注文番号がわからない"] = [
        {"text": "注文番号を教えていただけますか？", "buttons": [{"title": "番号がわからない", "payload": "/inform"}]},
        {"custom": {"account_link": {}}},
    ]
    await linking.client.send_text(USER, "注文番号がわからない")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    messages = replies(emu)[0]["json"]["messages"]
    assert messages[0]["text"] == "注文番号を教えていただけますか？"
    [button] = flex_buttons(messages)
    assert button["type"] == "uri" and button["label"] == "ログインして連携する"
    url = urlsplit(button["uri"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == LOGIN
    [token] = parse_qs(url.query)["linkToken"]
    # issued for this customer by LINE (the emulator) for this very answer
    issued = emu.requests_to(f"/v2/bot/user/{USER}/linkToken")
    assert len(issued) == 1 and issued[0]["status"] == 200
    assert token in emu._link_tokens and emu._link_tokens[token][1] == USER
    # the quick reply still comes on the last message
    assert messages[-1]["quickReply"]["items"][0]["action"]["label"] == "番号がわからない"


@pytest.mark.asyncio
async def test_the_offer_is_in_the_customers_language(linking, emu, fake_bot):
    fake_bot.answers["link"] = [{"text": "Here you go."}, {"custom": {"account_link": {}}}]
    await linking.client.send_text(EN_USER, "link")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    [button] = flex_buttons(replies(emu)[0]["json"]["messages"])
    assert button["label"] == "Log in and link"


@pytest.mark.asyncio
@pytest.mark.parametrize("why", ["no token", "no login page"])
async def test_without_a_link_token_or_a_login_page_the_offer_is_left_out_and_the_rest_goes(
    make_gateway, emu, fake_bot, why
):
    gw = await make_gateway(account_link_login_url=None if why == "no login page" else LOGIN)
    if why == "no token":
        emu.fail_next(f"/v2/bot/user/{USER}/linkToken", 400, message="bad request")
    fake_bot.answers["number?"] = [{"text": "注文番号を教えていただけますか？"}, {"custom": {"account_link": {}}}]
    event, _ = await gw.client.send_text(USER, "number?")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    messages = replies(emu)[0]["json"]["messages"]
    assert [m["type"] for m in messages] == ["text"] and messages[0]["text"] == "注文番号を教えていただけますか？"
    assert await gw.store.status(event["webhookEventId"]) == DONE


# --- the accountLink event ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_ok_account_link_triggers_the_bot_with_the_nonce_and_replies_with_the_reply_token(
    linking, emu, fake_bot, caplog
):
    caplog.set_level("DEBUG")
    fake_bot.trigger_answers["EXTERNAL_account_linked"] = [{"recipient_id": USER, "text": LINKED}]
    event = await linking.client.account_link_event(USER, NONCE)
    res = await linking.client.post([event])
    assert res.status == 200
    assert await wait_until(lambda: len(replies(emu)) == 1)
    reply = replies(emu)[0]
    assert reply["json"]["replyToken"] == event["replyToken"]
    assert [m["text"] for m in reply["json"]["messages"]] == [LINKED]
    # the nonce goes in as a slot (and any open form ends), then the intent is triggered
    assert fake_bot.appended == [
        (
            USER,
            [
                {"event": "active_loop", "name": None},
                {"event": "slot", "name": "requested_slot", "value": None},
                {"event": "slot", "name": "account_link_nonce", "value": NONCE},
            ],
        )
    ]
    assert fake_bot.triggered == [(USER, "EXTERNAL_account_linked")]
    assert fake_bot.got == []  # nothing went to Rasa as a customer's message
    assert await linking.store.status(event["webhookEventId"]) == DONE
    # a redelivery of the event is the same event: not triggered again
    again = await linking.client.redeliver([event])
    assert json.loads(again.text)["duplicates"] == 1
    await asyncio.sleep(0.3)
    assert len(fake_bot.triggered) == 1 and len(replies(emu)) == 1
    assert NONCE not in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize("user, expected", [(USER, "連携を完了できませんでした"), (EN_USER, "could not complete")])
async def test_a_failed_account_link_gets_a_polite_text_and_the_bot_is_not_run(linking, emu, fake_bot, user, expected):
    event = await linking.client.account_link_event(user, NONCE, result="failed")
    await linking.client.post([event])
    assert await wait_until(lambda: len(replies(emu)) == 1)
    reply = replies(emu)[0]["json"]
    assert reply["replyToken"] == event["replyToken"] and expected in reply["messages"][0]["text"]
    assert fake_bot.triggered == [] and fake_bot.appended == []


@pytest.mark.asyncio
async def test_rasa_down_keeps_the_account_link_for_a_retry(linking, emu, fake_bot):
    fake_bot.trigger_answers["EXTERNAL_account_linked"] = [{"recipient_id": USER, "text": LINKED}]
    fake_bot.up = False
    event = await linking.client.account_link_event(USER, NONCE)
    await linking.client.post([event])
    await asyncio.sleep(0.4)
    fake_bot.up = True
    assert await wait_until(lambda: LINKED in [d["message"].get("text") for d in emu.delivered], timeout=8)
    assert fake_bot.triggered[-1] == (USER, "EXTERNAL_account_linked")


# --- the whole loop through the emulator's accountLink page ------------------------------------


@pytest.mark.asyncio
async def test_the_emulators_account_link_page_sends_the_signed_event_to_the_gateway(linking, emu, fake_bot):
    emu.webhook_url, emu.channel_secret = linking.url, SECRET
    fake_bot.answers["link"] = [{"custom": {"account_link": {}}}]
    fake_bot.trigger_answers["EXTERNAL_account_linked"] = [{"recipient_id": USER, "text": LINKED}]
    await linking.client.send_text(USER, "link")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    [button] = flex_buttons(replies(emu)[0]["json"]["messages"])
    [token] = parse_qs(urlsplit(button["uri"]).query)["linkToken"]
    # the shop's login page verified the customer and redirects here
    async with aiohttp.ClientSession() as browser:
        page = f"{emu.base_url}/dialog/bot/accountLink"
        async with browser.get(page, params={"linkToken": token, "nonce": NONCE}) as resp:
            assert resp.status == 200 and "LINE" in await resp.text()
        assert await wait_until(lambda: len(replies(emu)) == 2)
        assert fake_bot.appended[-1][1][-1] == {"event": "slot", "name": "account_link_nonce", "value": NONCE}
        assert replies(emu)[1]["json"]["messages"][0]["text"] == LINKED
        # the token is single use: a second visit links nothing
        async with browser.get(page, params={"linkToken": token, "nonce": NONCE}) as resp:
            assert resp.status == 400
    await asyncio.sleep(0.2)
    assert len(fake_bot.triggered) == 1 and len(emu.account_links) == 1


# --- the emulator's rules ----------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest_asyncio.fixture
async def link_emu():
    """An emulator on a clock of its own, sending accountLink events to a recording webhook."""
    got = []

    async def webhook(request):
        body = await request.read()
        got.append((body, request.headers.get("X-Line-Signature")))
        return web.json_response({})

    hook_app = web.Application()
    hook_app.router.add_post("/line/webhook", webhook)
    hook = TestServer(hook_app)
    await hook.start_server()
    clock = Clock()
    emulator = LineApiEmulator(
        TOKEN, clock=clock, webhook_url=str(hook.make_url("/line/webhook")), channel_secret=SECRET
    )
    server = TestServer(emulator.app)
    await server.start_server()
    emulator.base_url = str(server.make_url("")).rstrip("/")
    emulator.got, emulator.clock = got, clock
    async with aiohttp.ClientSession() as session:
        emulator.session = session
        yield emulator
    await server.close()
    await hook.close()


async def issue(emu, user=USER, token=TOKEN):
    async with emu.session.post(
        f"{emu.base_url}/v2/bot/user/{user}/linkToken", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        return resp.status, await resp.json()


async def visit(emu, token, nonce=NONCE):
    async with emu.session.get(
        f"{emu.base_url}/dialog/bot/accountLink", params={"linkToken": token, "nonce": nonce}
    ) as resp:
        return resp.status


def sent_events(emu):
    out = []
    for body, signature in emu.got:
        assert signature == sign(body, SECRET)  # signed as LINE signs webhooks
        out.extend(json.loads(body)["events"])
    return out


@pytest.mark.asyncio
async def test_link_tokens_need_the_channel_access_token(link_emu):
    status, body = await issue(link_emu, token="not-the-token")
    assert status == 401 and "linkToken" not in body
    status, body = await issue(link_emu)
    assert status == 200 and isinstance(body["linkToken"], str) and body["linkToken"]


@pytest.mark.asyncio
async def test_a_valid_token_sends_the_ok_event_once_with_the_nonce(link_emu):
    _, body = await issue(link_emu)
    assert await visit(link_emu, body["linkToken"]) == 200
    [event] = sent_events(link_emu)
    assert event["type"] == "accountLink" and event["source"] == {"type": "user", "userId": USER}
    assert event["link"] == {"result": "ok", "nonce": NONCE} and event["replyToken"]
    assert await visit(link_emu, body["linkToken"]) == 400  # single use
    assert len(sent_events(link_emu)) == 1


@pytest.mark.asyncio
async def test_unknown_and_expired_tokens_get_an_error_page_and_no_event(link_emu):
    assert await visit(link_emu, "never-issued") == 400
    _, body = await issue(link_emu)
    link_emu.clock.now += 601  # valid for 10 minutes
    assert await visit(link_emu, body["linkToken"]) == 400
    _, fresh = await issue(link_emu)
    link_emu.clock.now += 599
    assert await visit(link_emu, fresh["linkToken"]) == 200
    assert [e["link"]["result"] for e in sent_events(link_emu)] == ["ok"]


@pytest.mark.asyncio
@pytest.mark.parametrize("nonce", ["short", "x" * 256])
async def test_a_nonce_outside_10_to_255_characters_sends_a_failed_event(link_emu, nonce):
    _, body = await issue(link_emu)
    assert await visit(link_emu, body["linkToken"], nonce) == 400
    [event] = sent_events(link_emu)
    assert event["link"]["result"] == "failed"
