"""LINE API emulator (auth, reply-token single use and expiry, limits, recording) and the
webhook client (LINE's body shape, signature, redelivery)."""

import json
import re

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devkit.emulators.line_api import LineApiEmulator
from devkit.emulators.line_client import (
    LineWebhookClient,
    emulator_tokens,
    http_tokens,
    new_ulid,
)
from gateway.line.signature import verify

TOKEN = "test-access-token"
SECRET = "test-channel-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USER = "U00000000000000000000000000000001"
TEXT = [{"type": "text", "text": "こんにちは"}]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest_asyncio.fixture
async def clock():
    return Clock()


@pytest_asyncio.fixture
async def emu(clock):
    return LineApiEmulator(TOKEN, reply_token_ttl_s=60, clock=clock)


@pytest_asyncio.fixture
async def api(emu):
    client = TestClient(TestServer(emu.app))
    await client.start_server()
    yield client
    await client.close()


async def reply(api, token, messages=TEXT, headers=AUTH):
    return await api.post("/v2/bot/message/reply", json={"replyToken": token, "messages": messages}, headers=headers)


# --- auth ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_requests_without_the_right_bearer_token_get_401(api, emu, headers):
    for method, path, body in [
        ("POST", "/v2/bot/message/reply", {"replyToken": emu.issue_reply_token(), "messages": TEXT}),
        ("POST", "/v2/bot/message/push", {"to": USER, "messages": TEXT}),
        ("GET", f"/v2/bot/profile/{USER}", None),
        ("GET", "/v2/bot/message/1/content", None),
        ("POST", "/v2/bot/chat/loading/start", {"chatId": USER}),
    ]:
        resp = await api.request(method, path, json=body, headers=headers)
        assert resp.status == 401, path
        assert "Authentication failed" in (await resp.json())["message"]
    assert emu.delivered == []


# --- reply tokens ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reply_token_is_single_use(api, emu):
    token = emu.issue_reply_token(USER)
    resp = await reply(api, token)
    assert resp.status == 200
    sent = (await resp.json())["sentMessages"]
    assert len(sent) == 1 and sent[0]["id"] and sent[0]["quoteToken"]
    again = await reply(api, token)
    assert again.status == 400
    assert await again.json() == {"message": "Invalid reply token"}
    assert [d["message"] for d in emu.messages_for(USER)] == TEXT
    assert emu.delivered[0]["via"] == "reply"


@pytest.mark.asyncio
async def test_unknown_reply_token_rejected(api):
    resp = await reply(api, "not-issued")
    assert resp.status == 400 and (await resp.json())["message"] == "Invalid reply token"


@pytest.mark.asyncio
async def test_reply_token_expires(api, emu, clock):
    emu.reply_token_ttl_s = 60
    fresh, stale = emu.issue_reply_token(USER), emu.issue_reply_token(USER)
    clock.now += 59.9
    assert (await reply(api, fresh)).status == 200
    clock.now += 0.1  # exactly 60 s after issue
    resp = await reply(api, stale)
    assert resp.status == 400 and (await resp.json())["message"] == "Invalid reply token"


@pytest.mark.asyncio
async def test_short_ttl_for_tests():
    emu = LineApiEmulator(TOKEN, reply_token_ttl_s=0.05)
    client = TestClient(TestServer(emu.app))
    await client.start_server()
    try:
        import asyncio

        token = emu.issue_reply_token(USER)
        await asyncio.sleep(0.1)
        assert (await reply(client, token)).status == 400
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_more_than_five_messages_rejected_without_spending_the_token(api, emu):
    token = emu.issue_reply_token(USER)
    resp = await reply(api, token, TEXT * 6)
    assert resp.status == 400
    body = await resp.json()
    assert body["details"][0]["property"] == "messages"
    assert (await reply(api, token, TEXT * 5)).status == 200
    assert len(emu.messages_for(USER)) == 5


@pytest.mark.asyncio
async def test_zero_messages_and_broken_limits_rejected(api, emu):
    token = emu.issue_reply_token(USER)
    assert (await reply(api, token, [])).status == 400
    too_long = [{"type": "text", "text": "a" * 5001}]
    assert (await reply(api, token, too_long)).status == 400
    qr = {
        "items": [
            {"type": "action", "action": {"type": "postback", "label": "x" * 21, "data": "/a", "displayText": "x"}}
        ]
    }
    resp = await reply(api, token, [{"type": "text", "text": "a", "quickReply": qr}])
    assert resp.status == 400
    assert "label" in (await resp.json())["details"][0]["property"]


# --- push, profile, content, loading -----------------------------------------------------


@pytest.mark.asyncio
async def test_push_and_retry_key(api, emu):
    resp = await api.post("/v2/bot/message/push", json={"to": USER, "messages": TEXT}, headers=AUTH)
    assert resp.status == 200 and len((await resp.json())["sentMessages"]) == 1
    resp = await api.post("/v2/bot/message/push", json={"to": USER, "messages": TEXT * 6}, headers=AUTH)
    assert resp.status == 400
    key = {"X-Line-Retry-Key": "123e4567-e89b-12d3-a456-426614174000", **AUTH}
    first = await api.post("/v2/bot/message/push", json={"to": USER, "messages": TEXT}, headers=key)
    dup = await api.post("/v2/bot/message/push", json={"to": USER, "messages": TEXT}, headers=key)
    assert first.status == 200 and dup.status == 409
    assert dup.headers["x-line-accepted-request-id"]
    assert len(emu.messages_for(USER)) == 2
    assert {d["via"] for d in emu.messages_for(USER)} == {"push"}


@pytest.mark.asyncio
async def test_profile(api, emu):
    emu.set_profile(USER, "デモ 太郎", "ja")
    resp = await api.get(f"/v2/bot/profile/{USER}", headers=AUTH)
    assert await resp.json() == {"userId": USER, "displayName": "デモ 太郎", "language": "ja"}
    other = await (await api.get("/v2/bot/profile/Uabc", headers=AUTH)).json()
    assert other["userId"] == "Uabc" and other["displayName"]
    emu.auto_profiles = False
    assert (await api.get("/v2/bot/profile/Uabc", headers=AUTH)).status == 404


@pytest.mark.asyncio
async def test_content(api, emu):
    emu.add_content("5001", b"\xff\xd8jpegbytes", "image/jpeg")
    resp = await api.get("/v2/bot/message/5001/content", headers=AUTH)
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert await resp.read() == b"\xff\xd8jpegbytes"
    assert (await api.get("/v2/bot/message/9/content", headers=AUTH)).status == 404


@pytest.mark.asyncio
async def test_loading_animation(api):
    ok = await api.post("/v2/bot/chat/loading/start", json={"chatId": USER, "loadingSeconds": 20}, headers=AUTH)
    assert ok.status == 202
    bad = await api.post("/v2/bot/chat/loading/start", json={"chatId": USER, "loadingSeconds": 7}, headers=AUTH)
    assert bad.status == 400


@pytest.mark.asyncio
async def test_injected_failures(api, emu):
    emu.fail_next("/v2/bot/message/push", 429, times=2, headers={"Retry-After": "1"})
    statuses = []
    for _ in range(3):
        r = await api.post("/v2/bot/message/push", json={"to": USER, "messages": TEXT}, headers=AUTH)
        statuses.append(r.status)
    assert statuses == [429, 429, 200]


# --- recording ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_every_request_is_recorded_and_inspectable(api, emu):
    token = emu.issue_reply_token(USER)
    await reply(api, token)
    await reply(api, token)
    await api.get(f"/v2/bot/profile/{USER}")  # unauthorised: recorded too
    everything = await (await api.get("/_emulator/requests")).json()
    assert [(r["path"], r["status"]) for r in everything] == [
        ("/v2/bot/message/reply", 200),
        ("/v2/bot/message/reply", 400),
        (f"/v2/bot/profile/{USER}", 401),
    ]
    assert everything[0]["json"]["messages"] == TEXT
    assert everything[0]["authorized"] and not everything[2]["authorized"]
    assert all("authorization" not in {k.lower() for k in r["headers"]} for r in everything)
    replies = await (await api.get("/_emulator/requests", params={"path": "/v2/bot/message/reply"})).json()
    assert len(replies) == 2
    seen = await (await api.get("/_emulator/messages", params={"to": USER})).json()
    assert [d["message"] for d in seen] == TEXT
    assert (await api.delete("/_emulator/requests")).status == 200
    assert await (await api.get("/_emulator/requests")).json() == []


# --- webhook client ----------------------------------------------------------------------


@pytest_asyncio.fixture
async def receiver():
    """A webhook endpoint that checks signatures like the gateway will."""
    got = []

    async def handle(request):
        raw = await request.read()
        ok = verify(raw, request.headers.get("X-Line-Signature"), SECRET)
        got.append((ok, raw, dict(request.headers)))
        return web.json_response({}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_post("/line/webhook", handle)
    server = TestServer(app)
    await server.start_server()
    yield server, got
    await server.close()


def test_ulid_shape():
    a, b = new_ulid(1_700_000_000_000), new_ulid(1_700_000_000_001)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", a)
    assert a[:10] < b[:10]  # time-ordered prefix


@pytest.mark.asyncio
async def test_client_builds_signed_webhooks_like_line(receiver, emu):
    server, got = receiver
    async with LineWebhookClient(
        str(server.make_url("/line/webhook")), SECRET, token_source=emulator_tokens(emu)
    ) as client:
        event, result = await client.send_text(USER, "別卵が入っていませんでした")
        assert result.status == 200
        pb = await client.postback_event(USER, '/choose_remedy{"remedy":"refund"}')
        fol, unf = await client.follow_event(USER), await client.unfollow_event(USER)
        assert (await client.post([pb, fol, unf])).status == 200

    ok, raw, headers = got[0]
    assert ok and headers["Content-Type"].startswith("application/json")
    body = json.loads(raw)
    assert set(body) == {"destination", "events"} and body["destination"].startswith("U")
    [e] = body["events"]
    assert e == event
    assert e["type"] == "message" and e["mode"] == "active"
    assert e["source"] == {"type": "user", "userId": USER}
    assert e["deliveryContext"] == {"isRedelivery": False}
    assert isinstance(e["timestamp"], int) and len(e["webhookEventId"]) == 26
    assert set(e["message"]) == {"id", "type", "quoteToken", "markAsReadToken", "text"}
    assert e["message"]["text"] == "別卵が入っていませんでした"
    assert "別卵".encode() in raw  # UTF-8, not \u escapes

    pb_e, fol_e, unf_e = json.loads(got[1][1])["events"]
    assert pb_e["postback"] == {"data": '/choose_remedy{"remedy":"refund"}'}
    assert fol_e["type"] == "follow" and fol_e["replyToken"]
    assert unf_e["type"] == "unfollow" and "replyToken" not in unf_e
    assert pb_e["timestamp"] < fol_e["timestamp"] < unf_e["timestamp"]

    # the token LINE put in the event works once at the emulator
    api = TestClient(TestServer(emu.app))
    await api.start_server()
    try:
        assert (await reply(api, e["replyToken"])).status == 200
        assert (await reply(api, e["replyToken"])).status == 400
    finally:
        await api.close()


@pytest.mark.asyncio
async def test_client_redelivery_keeps_id_and_token(receiver):
    server, got = receiver
    async with LineWebhookClient(str(server.make_url("/line/webhook")), SECRET) as client:
        event, _ = await client.send_text(USER, "hello")
        assert (await client.redeliver([event])).status == 200
    first, again = (json.loads(raw)["events"][0] for _, raw, _ in got)
    assert again["webhookEventId"] == first["webhookEventId"]
    assert again["replyToken"] == first["replyToken"]
    assert again["timestamp"] == first["timestamp"]
    assert again["deliveryContext"] == {"isRedelivery": True}
    assert first["deliveryContext"] == {"isRedelivery": False}  # original left unchanged


@pytest.mark.asyncio
async def test_client_forged_and_missing_signatures(receiver):
    server, got = receiver
    async with LineWebhookClient(str(server.make_url("/line/webhook")), SECRET) as client:
        ev = await client.text_event(USER, "x")
        assert (await client.post([ev], signature="Zm9yZ2Vk")).status == 401
        assert (await client.post([ev], sign_body=False)).status == 401
        assert "X-Line-Signature" not in got[-1][2]
    wrong = LineWebhookClient(str(server.make_url("/line/webhook")), "other-secret")
    try:
        assert (await wrong.post([ev])).status == 401
    finally:
        await wrong.close()


@pytest.mark.asyncio
async def test_http_token_source_from_a_separate_emulator(emu, api):
    source = http_tokens(str(api.make_url("")))
    token = await source(USER)
    assert (await reply(api, token)).status == 200
    assert emu.messages_for(USER)[0]["via"] == "reply"
