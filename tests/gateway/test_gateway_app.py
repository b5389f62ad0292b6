"""The gateway app (connectors/gateway) against the LINE API emulator and small local
stand-ins for Rasa and the action server: signature first, ack then process, dedupe,
per-user order, reply vs push, retries, apology and resume when Rasa is down."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from devkit.emulators.line_api import LineApiEmulator
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from gateway.app import GATEWAY, create_app, parse_event
from gateway.config import Settings, action_health_url
from gateway.core.events import DONE, PENDING, MemoryEventStore
from gateway.line.api import LineApi

TOKEN = "test-access-token"
SECRET = "test-channel-secret"
RASA_TOKEN = "rasa-test-token"
USER = "U00000000000000000000000000000001"
EN_USER = "U00000000000000000000000000000002"


async def wait_until(cond, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(step)
    return cond()


class FakeBot:
    """Rasa's REST channel + /status + the tracker, and the action server's /health, in one app."""

    def __init__(self):
        self.up = True
        self.action_up = True
        self.got = []  # (sender, message, metadata)
        self.events = {}  # sender -> tracker events, as Rasa keeps them
        self.delay = lambda: 0.0
        self.answers = {}  # message -> the bot's messages for it (without recipient_id)

    def rasa_app(self):
        app = web.Application()

        async def root(request):
            if not self.up:
                return web.Response(status=503)
            return web.Response(text="Hello from Rasa: 3.6.21")

        async def status(request):
            if not self.up:
                return web.Response(status=503)
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            return web.json_response({"model_file": "x"})

        async def webhook(request):
            if not self.up:
                return web.Response(status=502, text="down")
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            body = await request.json()
            await asyncio.sleep(self.delay())
            self.got.append((body["sender"], body["message"], body.get("metadata")))
            msg = body["message"]
            out = [{"recipient_id": body["sender"], "text": f"echo: {msg}"}]
            if msg == "buttons":
                out.append(
                    {
                        "recipient_id": body["sender"],
                        "text": "どちらですか？",
                        "buttons": [{"title": "#1001 親子丼", "payload": '/inform{"order_id": "1001"}'}],
                    }
                )
            if msg == "many":
                # text/image alternating: nothing to merge, 7 messages
                out = [
                    {"recipient_id": body["sender"], "text": f"part {i}", "image": f"https://example.com/{i}.png"}
                    for i in range(3)
                ]
                out.append({"recipient_id": body["sender"], "text": "end"})
            if msg == "silent":
                out = []
            if msg in self.answers:
                out = [{"recipient_id": body["sender"], **m} for m in self.answers[msg]]
            if msg == "remedies":  # the answer to a complaint: the remedies, as a card
                card = {
                    "title": "別卵",
                    "alt_text": "1. 別卵を今からお届け",
                    "options": [
                        {
                            "label": "今からお届け",
                            "detail": "別卵を今からお届け",
                            "payload": "/inform",
                            "recommended": True,
                        }
                    ],
                }
                out = [
                    {"recipient_id": body["sender"], "text": "ご迷惑をおかけしました。"},
                    {"recipient_id": body["sender"], "custom": {"remedy_card": card}},
                ]
            self.events.setdefault(body["sender"], []).extend(
                [{"event": "user", "text": msg, "metadata": body.get("metadata") or {}}]
                + [
                    {
                        "event": "bot",
                        "text": m.get("text"),
                        "data": {k: v for k, v in m.items() if k not in ("recipient_id", "text")},
                    }
                    for m in out
                ]
            )
            return web.json_response(out)

        async def tracker(request):
            if not self.up:
                return web.Response(status=502, text="down")
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            sender = request.match_info["sender"]
            return web.json_response({"sender_id": sender, "events": self.events.get(sender, [])})

        app.router.add_get("/", root)
        app.router.add_get("/status", status)
        app.router.add_post("/webhooks/rest/webhook", webhook)

        app.router.add_get("/conversations/{sender}/tracker", tracker)
        return app

    def action_app(self):
        app = web.Application()

        async def health(request):
            if not self.action_up:
                return web.Response(status=503)
            return web.json_response({"status": "ok"})

        app.router.add_get("/health", health)
        return app


@pytest_asyncio.fixture
async def emu():
    emulator = LineApiEmulator(TOKEN)
    emulator.set_profile(USER, "デモ 太郎", "ja")
    emulator.set_profile(EN_USER, "Emma", "en-US")
    server = TestServer(emulator.app)
    await server.start_server()
    emulator.base_url = str(server.make_url("")).rstrip("/")
    yield emulator
    await server.close()


async def serving(bot: "FakeBot"):
    """Serves `bot`'s Rasa and action server stand-ins on local ports while the caller uses it."""
    rasa = TestServer(bot.rasa_app())
    actions = TestServer(bot.action_app())
    await rasa.start_server()
    await actions.start_server()
    bot.rasa_url = str(rasa.make_url("")).rstrip("/")
    bot.action_url = str(actions.make_url("/webhook"))
    yield bot
    await rasa.close()
    await actions.close()


@pytest_asyncio.fixture
async def fake_bot():
    async for bot in serving(FakeBot()):
        yield bot


class GatewayUnderTest:
    def __init__(self, server, store, emu):
        self.server = server
        self.store = store
        self.url = str(server.make_url("/line/webhook"))
        self.client = LineWebhookClient(self.url, SECRET, token_source=emulator_tokens(emu))

    @property
    def gateway(self):
        return self.server.app[GATEWAY]


def settings_for(emu, fake_bot, tmp_path, **overrides) -> Settings:
    s = Settings(
        channel_secret=SECRET,
        channel_access_token=TOKEN,
        line_api_base_url=emu.base_url,
        line_data_api_base_url=emu.base_url,
        rasa_url=fake_bot.rasa_url,
        rasa_token=RASA_TOKEN,
        action_server_health_url=action_health_url(fake_bot.action_url),
        attachments_dir=Path(tmp_path) / "attachments",
        retry_min_s=0.1,
        retry_max_s=0.3,
    )
    for k, v in overrides.items():
        setattr(s, k, v)
    return s


@pytest_asyncio.fixture
async def make_gateway(emu, fake_bot, tmp_path):
    started = []

    async def make(store=None, **overrides):
        store = store or MemoryEventStore()
        server = TestServer(create_app(settings_for(emu, fake_bot, tmp_path, **overrides), store=store))
        await server.start_server()
        gw = GatewayUnderTest(server, store, emu)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.client.close()
        await gw.server.close()


@pytest_asyncio.fixture
async def gw(make_gateway):
    return await make_gateway()


def replies(emu):
    return emu.requests_to("/v2/bot/message/reply")


def delivered_texts(emu, user):
    return [d["message"].get("text") for d in emu.messages_for(user)]


# --- webhook: signature, shape, dedupe ------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "garbage!"])
async def test_missing_or_wrong_signature_is_refused_and_nothing_is_stored(gw, emu, fake_bot, signature, caplog):
    event = await gw.client.text_event(USER, "秘密の本文")
    if signature is None:
        res = await gw.client.post([event], sign_body=False)
    else:
        res = await gw.client.post([event], signature=signature)
    assert res.status == 401
    await asyncio.sleep(0.2)
    assert await gw.store.pending() == []
    assert await gw.store.status(event["webhookEventId"]) is None
    assert emu.requests == [] and fake_bot.got == []
    assert "LINE webhook refused" in caplog.text
    assert "秘密の本文" not in caplog.text


@pytest.mark.asyncio
async def test_a_body_signed_for_another_secret_is_refused(gw, emu):
    other = LineWebhookClient(gw.url, "another-secret")
    try:
        res = await other.post([await other.text_event(USER, "hi")])
    finally:
        await other.close()
    assert res.status == 401
    assert await gw.store.pending() == []


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"destination": "Uxx"}', b'{"events": {"type": "message"}}'])
async def test_signed_json_that_is_not_a_line_webhook_gets_400(gw, body, caplog):
    res = await gw.client.post_body(body)
    assert res.status == 400
    assert "LINE webhook refused" in caplog.text


@pytest.mark.asyncio
async def test_empty_events_list_is_the_console_verification_and_gets_200(gw, emu):
    res = await gw.client.post([])
    assert res.status == 200
    assert emu.requests == []


@pytest.mark.asyncio
async def test_a_malformed_event_is_skipped_and_the_others_processed(gw, emu, fake_bot, caplog):
    good = await gw.client.text_event(USER, "こんにちは")
    res = await gw.client.post([{"type": "message", "source": {"userId": USER}}, "junk", good])
    assert res.status == 200
    assert json.loads(res.text) == {"accepted": 1, "duplicates": 0, "skipped": 2, "ignored": 0}
    assert "skipping a malformed LINE event" in caplog.text
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert [g[1] for g in fake_bot.got] == ["こんにちは"]


def test_parse_event_requires_id_type_timestamp_and_source():
    ok = {
        "type": "follow",
        "timestamp": 1,
        "webhookEventId": "X",
        "source": {"type": "group", "groupId": "C" + "0" * 32},
    }
    assert parse_event(ok)[0] == ("X", "C" + "0" * 32, 1)
    for broken in (
        {**ok, "timestamp": "1"},
        {**ok, "webhookEventId": ""},
        {**ok, "source": {}},
        {k: v for k, v in ok.items() if k != "type"},
    ):
        assert parse_event(broken)[0] is None


@pytest.mark.asyncio
async def test_ack_comes_before_processing(gw, emu, fake_bot):
    fake_bot.delay = lambda: 0.5
    event, res = await gw.client.send_text(USER, "ゆっくり")
    assert res.status == 200 and res.elapsed_s < 0.3
    assert await gw.store.status(event["webhookEventId"]) == PENDING
    assert await wait_until(lambda: len(replies(emu)) == 1)
    # marked done a moment after the reply went out
    for _ in range(250):
        if await gw.store.status(event["webhookEventId"]) == DONE:
            break
        await asyncio.sleep(0.02)
    assert await gw.store.status(event["webhookEventId"]) == DONE


@pytest.mark.asyncio
async def test_a_redelivered_event_is_answered_once(gw, emu, fake_bot):
    event, res = await gw.client.send_text(USER, "一回だけ")
    assert res.status == 200
    again = await gw.client.redeliver([event])
    assert again.status == 200 and json.loads(again.text)["duplicates"] == 1
    await wait_until(lambda: len(replies(emu)) >= 1)
    await asyncio.sleep(0.3)
    again = await gw.client.redeliver([event])  # also after it was done
    assert json.loads(again.text)["duplicates"] == 1
    await asyncio.sleep(0.2)
    assert [g[1] for g in fake_bot.got] == ["一回だけ"]
    assert len(emu.delivered) == 1


# --- processing -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_text_goes_to_rasa_with_profile_metadata_and_is_answered_by_reply(gw, emu, fake_bot):
    event, _ = await gw.client.send_text(USER, "buttons")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    sender, message, metadata = fake_bot.got[0]
    assert (sender, message) == (USER, "buttons")
    assert metadata == {
        "line_user_id": USER,
        "display_name": "デモ 太郎",
        "language": "ja",
        "line_event_id": event["webhookEventId"],
    }
    paths = [r["path"] for r in emu.requests]
    assert paths[0] in ("/v2/bot/chat/loading/start", f"/v2/bot/profile/{USER}")
    loading = emu.requests_to("/v2/bot/chat/loading/start")[0]
    assert loading["json"]["chatId"] == USER and loading["status"] == 202
    assert paths.index("/v2/bot/chat/loading/start") < paths.index("/v2/bot/message/reply")
    reply = replies(emu)[0]
    assert reply["status"] == 200 and reply["json"]["replyToken"] == event["replyToken"]
    msgs = reply["json"]["messages"]
    assert msgs[0]["text"] == "echo: buttons"
    item = msgs[-1]["quickReply"]["items"][0]["action"]
    # the button's payload, signed for this customer (tests/gateway/test_customer_input.py)
    assert item == {
        "type": "postback",
        "label": "#1001 親子丼",
        "data": gw.gateway.postbacks.sign('/inform{"order_id": "1001"}', USER),
        "displayText": "#1001 親子丼",
    }
    assert await gw.store.status(event["webhookEventId"]) == DONE


@pytest.mark.asyncio
async def test_english_profile_language_and_cached_profile(gw, emu, fake_bot):
    for text in ("hello", "again"):
        await gw.client.send_text(EN_USER, text)
    assert await wait_until(lambda: len(replies(emu)) == 2)
    assert [g[2]["language"] for g in fake_bot.got] == ["en", "en"]
    assert len(emu.requests_to(f"/v2/bot/profile/{EN_USER}")) == 1


@pytest.mark.asyncio
async def test_postback_data_is_the_message_sent_to_rasa(gw, emu, fake_bot):
    data = gw.gateway.postbacks.sign('/inform{"order_id": "1001"}', USER)
    event = await gw.client.postback_event(USER, data)
    await gw.client.post([event])
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert fake_bot.got[0][1] == '/inform{"order_id": "1001"}'


@pytest.mark.asyncio
async def test_more_than_five_messages_reply_five_and_push_the_rest(gw, emu, fake_bot):
    await gw.client.send_text(USER, "many")
    assert await wait_until(lambda: len(emu.requests_to("/v2/bot/message/push")) == 1)
    assert len(replies(emu)[0]["json"]["messages"]) == 5
    push = emu.requests_to("/v2/bot/message/push")[0]
    assert push["json"]["to"] == USER and len(push["json"]["messages"]) == 2
    assert push["headers"].get("X-Line-Retry-Key")


@pytest.mark.asyncio
async def test_follow_greets_in_the_profile_language_and_unfollow_is_only_recorded(gw, emu, fake_bot):
    await gw.client.post([await gw.client.follow_event(EN_USER)])
    await gw.client.post([await gw.client.follow_event(USER)])
    unfollow = await gw.client.unfollow_event(USER)
    await gw.client.post([unfollow])
    assert await wait_until(lambda: len(replies(emu)) == 2)
    assert "Thanks for adding us" in delivered_texts(emu, EN_USER)[0]
    assert "友だち追加" in delivered_texts(emu, USER)[0]
    assert await wait_until(lambda: True)
    await asyncio.sleep(0.1)
    assert await gw.store.status(unfollow["webhookEventId"]) == DONE
    assert fake_bot.got == [] and len(emu.delivered) == 2


@pytest.mark.asyncio
async def test_image_is_fetched_saved_and_thanked(gw, emu, tmp_path):
    emu.add_content("777001", b"\xff\xd8jpegdata", "image/jpeg")
    event = await gw.client.image_event(USER, message_id="777001")
    await gw.client.post([event])
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert "受け取りました" in delivered_texts(emu, USER)[0]
    assert "received your photo" not in delivered_texts(emu, USER)[0]  # one language: the customer's
    emu.add_content("777002", b"\xff\xd8jpegdata", "image/jpeg")
    await gw.client.post([await gw.client.image_event(EN_USER, message_id="777002")])
    assert await wait_until(lambda: len(replies(emu)) == 2)
    assert delivered_texts(emu, EN_USER)[0] == "Thank you, we received your photo and will look at it."
    saved = tmp_path / "attachments" / "777001.jpg"
    assert saved.read_bytes() == b"\xff\xd8jpegdata"
    meta = json.loads((tmp_path / "attachments" / "777001.jpg.json").read_text())
    assert meta["event_id"] == event["webhookEventId"]
    records = await gw.gateway.attachments.for_user(USER)
    assert records[0]["path"] == str(saved)


@pytest.mark.asyncio
async def test_sticker_gets_a_polite_request_for_words(gw, emu, fake_bot):
    await gw.client.post([await gw.client.sticker_event(USER)])
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert "文章で教えて" in delivered_texts(emu, USER)[0]
    assert fake_bot.got == []


@pytest.mark.asyncio
async def test_rejected_reply_token_falls_back_to_push(gw, emu):
    event = await gw.client.text_event(USER, "こんにちは")
    event["replyToken"] = "0" * 32  # never issued: LINE answers "Invalid reply token"
    await gw.client.post([event])
    assert await wait_until(lambda: len(emu.requests_to("/v2/bot/message/push")) == 1)
    assert replies(emu)[0]["status"] == 400
    assert [d["via"] for d in emu.messages_for(USER)] == ["push"]


@pytest.mark.asyncio
async def test_an_old_reply_token_is_not_tried_the_answer_is_pushed(gw, emu):
    event = await gw.client.text_event(USER, "遅れて届いた")
    event["timestamp"] -= 55_000
    await gw.client.post([event])
    assert await wait_until(lambda: len(emu.requests_to("/v2/bot/message/push")) == 1)
    assert replies(emu) == []


@pytest.mark.asyncio
async def test_line_429_and_500_are_retried_and_a_push_keeps_its_retry_key(gw, emu):
    emu.fail_next("/v2/bot/message/reply", 500, times=1)
    await gw.client.send_text(USER, "one")
    assert await wait_until(lambda: len(emu.delivered) == 1, timeout=5)
    assert [r["status"] for r in replies(emu)] == [500, 200]

    emu.fail_next("/v2/bot/message/push", 429, times=2, headers={"Retry-After": "0"})
    event = await gw.client.text_event(USER, "two")
    event["replyToken"] = "f" * 32
    await gw.client.post([event])
    assert await wait_until(lambda: len(emu.delivered) == 2, timeout=5)
    pushes = emu.requests_to("/v2/bot/message/push")
    assert [p["status"] for p in pushes] == [429, 429, 200]
    assert len({p["headers"]["X-Line-Retry-Key"] for p in pushes}) == 1


@pytest.mark.asyncio
async def test_a_push_retried_with_the_same_key_is_delivered_once(emu):
    api = LineApi(TOKEN, emu.base_url, emu.base_url)
    try:
        msg = [{"type": "text", "text": "hi"}]
        await api.push(USER, msg, retry_key="11111111-2222-3333-4444-555555555555")
        out = await api.push(USER, msg, retry_key="11111111-2222-3333-4444-555555555555")
    finally:
        await api.close()
    assert "accepted_request_id" in out
    assert len(emu.messages_for(USER)) == 1


@pytest.mark.asyncio
async def test_line_down_longer_than_the_retries_keeps_the_event_and_answers_once_later(gw, emu, fake_bot):
    # The client gives up after two attempts; the event stays pending and the answer is
    # delivered once LINE answers again, without asking Rasa a second time.
    gw.gateway.line.max_attempts = 2
    gw.gateway.line.backoff_base_s = 0.01
    emu.fail_next("/v2/bot/message/", 503, times=4)
    event, _ = await gw.client.send_text(USER, "lost?")
    assert await wait_until(lambda: len(emu.requests_to("/v2/bot/message/push")) >= 2)
    assert emu.delivered == []
    assert await wait_until(lambda: len(emu.delivered) == 1, timeout=10)
    await asyncio.sleep(0.5)
    assert delivered_texts(emu, USER) == ["echo: lost?"]
    assert [g[1] for g in fake_bot.got] == ["lost?"]
    assert await gw.store.status(event["webhookEventId"]) == DONE


@pytest.mark.asyncio
async def test_rasa_down_apologises_keeps_the_messages_and_answers_in_order_later(gw, emu, fake_bot):
    fake_bot.up = False
    first, _ = await gw.client.send_text(USER, "first")
    second, _ = await gw.client.send_text(USER, "second")
    assert await wait_until(lambda: len(emu.delivered) == 2)
    assert all("処理できませんでした" in t for t in delivered_texts(emu, USER))
    assert [d["via"] for d in emu.delivered] == ["reply", "reply"]
    await asyncio.sleep(0.5)  # the retry loop waits: Rasa is not healthy
    assert [e.event_id for e in await gw.store.pending()] == [first["webhookEventId"], second["webhookEventId"]]
    assert fake_bot.got == []

    fake_bot.up = True
    assert await wait_until(lambda: len(emu.delivered) == 4, timeout=5)
    assert [g[1] for g in fake_bot.got] == ["first", "second"]
    assert delivered_texts(emu, USER)[2:] == ["echo: first", "echo: second"]
    assert [d["via"] for d in emu.delivered[2:]] == ["push", "push"]
    assert await gw.store.pending() == []


@pytest.mark.asyncio
async def test_action_server_down_is_treated_like_rasa_down(gw, emu, fake_bot):
    fake_bot.action_up = False
    await gw.client.send_text(EN_USER, "where is my order")
    assert await wait_until(lambda: len(emu.delivered) == 1)
    assert "could not process that just now" in delivered_texts(emu, EN_USER)[0]
    assert fake_bot.got == [] and len(await gw.store.pending()) == 1
    fake_bot.action_up = True
    assert await wait_until(lambda: len(emu.delivered) == 2, timeout=5)
    assert delivered_texts(emu, EN_USER)[1] == "echo: where is my order"


@pytest.mark.asyncio
async def test_pending_events_are_resumed_on_startup(make_gateway, emu, fake_bot):
    store = MemoryEventStore()
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": USER},
        "webhookEventId": "01RESUME",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": emu.issue_reply_token(USER),
        "message": {"id": "1", "type": "text", "text": "before the crash"},
    }
    await store.record("01RESUME", USER, event["timestamp"], event)
    await make_gateway(store=store)
    assert await wait_until(lambda: len(emu.delivered) == 1)
    assert fake_bot.got[0][1] == "before the crash"
    assert await store.status("01RESUME") == DONE


@pytest.mark.asyncio
async def test_many_users_at_once_each_in_order(gw, emu, fake_bot):
    rng = random.Random(5)
    fake_bot.delay = lambda: rng.random() * 0.03
    users = [f"U{i:032x}" for i in range(20)]

    async def chat(user):
        for n in range(3):
            await gw.client.send_text(user, f"{user}-{n}")

    await asyncio.gather(*(chat(u) for u in users))
    assert await wait_until(lambda: len(emu.delivered) == 60, timeout=10)
    seen = defaultdict(list)
    for sender, message, _ in fake_bot.got:
        seen[sender].append(message)
    for u in users:
        assert seen[u] == [f"{u}-{n}" for n in range(3)]
        assert delivered_texts(emu, u) == [f"echo: {u}-{n}" for n in range(3)]


@pytest.mark.asyncio
async def test_healthz(gw, fake_bot):
    import aiohttp

    url = str(gw.server.make_url("/healthz"))
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200
            assert await r.json() == {"status": "ok", "rasa": True, "action_server": True}
        fake_bot.action_up = False
        async with s.get(url) as r:
            assert r.status == 503 and (await r.json())["action_server"] is False
        fake_bot.action_up, fake_bot.up = True, False
        async with s.get(url) as r:
            assert r.status == 503 and (await r.json())["rasa"] is False


@pytest.mark.asyncio
async def test_with_rasa_down_the_gateway_is_still_ready_for_webhooks(gw, fake_bot):
    # A load balancer probes /readyz: the gateway acks and keeps events while Rasa is down,
    # so it must keep getting LINE's webhooks; /healthz tells whether the bot answers.
    import aiohttp

    fake_bot.up = False
    async with aiohttp.ClientSession() as s:
        async with s.get(str(gw.server.make_url("/healthz"))) as r:
            assert r.status == 503
        async with s.get(str(gw.server.make_url("/readyz"))) as r:
            assert r.status == 200 and await r.json() == {"status": "ok", "event_store": True}
        async with s.get(str(gw.server.make_url("/livez"))) as r:
            assert r.status == 200


@pytest.mark.asyncio
async def test_redis_store_and_lease(make_gateway, emu, fake_bot, redis_url):
    import uuid

    from gateway.core.events import RedisEventStore

    store = RedisEventStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    gw = await make_gateway(store=store, redis_url=redis_url)
    event, _ = await gw.client.send_text(USER, "redis")
    again = await gw.client.redeliver([event])
    assert json.loads(again.text)["duplicates"] == 1
    assert await wait_until(lambda: len(emu.delivered) == 1)
    await asyncio.sleep(0.1)
    assert await store.status(event["webhookEventId"]) == DONE


def test_settings_from_env_derive_the_action_health_url_and_hide_secrets():
    s = Settings.from_env(
        {
            "LINE_CHANNEL_SECRET": "sec",
            "LINE_CHANNEL_ACCESS_TOKEN": "tok",
            "ACTION_SERVER_URL": "http://127.0.0.1:5055/webhook",
            "RASA_TOKEN": "rtok",
            "PORT": "9000",
        }
    )
    assert s.action_server_health_url == "http://127.0.0.1:5055/health"
    assert s.port == 9000 and s.line_api_base_url == "https://api.line.me"
    assert "rtok" not in repr(s) and "sec'" not in repr(s) and "tok'" not in repr(s)
    with pytest.raises(SystemExit):
        Settings.from_env({})


@pytest.mark.asyncio
async def test_terminal_chat_shows_replies_and_taps_a_quick_reply_by_number(gw, emu, fake_bot, capsys):
    from devkit.emulators.terminal_chat import TerminalChat

    base = str(gw.server.make_url("")).rstrip("/")
    chat = TerminalChat(base, emu.base_url, SECRET, USER)
    poller = asyncio.create_task(chat.poll())
    try:
        assert await chat.send("buttons")
        assert await wait_until(lambda: chat.quick_replies, timeout=5)
        assert await chat.send("1")
        assert await wait_until(lambda: len(fake_bot.got) == 2, timeout=5)
        assert await wait_until(lambda: chat.seen == 3, timeout=5)
        assert not await chat.send("/quit")
    finally:
        poller.cancel()
        await chat.session.close()
    out = capsys.readouterr().out
    assert "bot> echo: buttons" in out and "[1] #1001 親子丼" in out
    assert fake_bot.got[1][1] == '/inform{"order_id": "1001"}'
