"""Rasa REST client against a tiny local aiohttp server standing in for Rasa."""

import asyncio
import socket

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.core.rasa_client import (
    RasaClient,
    RasaError,
    RasaRejected,
    RasaUnavailable,
)

TOKEN = "s3cret-rasa-token"


@pytest_asyncio.fixture
async def fake_rasa():
    state = {"mode": "ok", "got": []}

    async def webhook(request):
        state["got"].append((dict(request.query), await request.json()))
        if request.query.get("token") != TOKEN:
            return web.json_response({"message": "unauthorised"}, status=401)
        mode = state["mode"]
        if mode == "slow":
            await asyncio.sleep(2)
        if mode == "500":
            return web.Response(status=500, text="boom")
        if mode == "html":
            return web.Response(text="<html>", content_type="text/html")
        if mode == "dict":
            return web.json_response({"not": "a list"})
        body = await request.json()
        return web.json_response(
            [
                {"recipient_id": body["sender"], "text": "別卵が届いていないのですね。"},
                {
                    "recipient_id": body["sender"],
                    "text": "どうしますか？",
                    "buttons": [{"title": "返金", "payload": "/refund"}],
                },
            ]
        )

    async def root(request):
        return web.Response(text="Hello from Rasa: 3.6.21")

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    app.router.add_get("/", root)
    server = TestServer(app)
    await server.start_server()
    yield server, state
    await server.close()


def base(server):
    return str(server.make_url("")).rstrip("/")


@pytest.mark.asyncio
async def test_send_posts_sender_message_metadata(fake_rasa):
    server, state = fake_rasa
    client = RasaClient(base(server), TOKEN)
    try:
        meta = {"line_user_id": "U1", "language": "ja", "display_name": "デモ 太郎"}
        out = await client.send("U1", "卵が入ってない", meta)
        assert [m["text"] for m in out] == ["別卵が届いていないのですね。", "どうしますか？"]
        query, body = state["got"][0]
        assert query == {"token": TOKEN}
        assert body == {"sender": "U1", "message": "卵が入ってない", "metadata": meta}
        assert await client.healthy()
    finally:
        await client.close()


async def expect(client, exc_type):
    with pytest.raises(exc_type) as info:
        await client.send("U1", "卵が入ってない", {"display_name": "デモ 太郎"})
    text = str(info.value)
    # nothing secret or personal in the error (it may reach logs and Sentry)
    for secret in (TOKEN, "token=", "卵", "デモ", "http"):
        assert secret not in text
    # no chained aiohttp error (its text can carry the URL with ?token=)
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    return info.value


@pytest.mark.asyncio
async def test_5xx_is_unavailable(fake_rasa):
    server, state = fake_rasa
    state["mode"] = "500"
    client = RasaClient(base(server), TOKEN)
    try:
        await expect(client, RasaUnavailable)
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_timeout_is_unavailable(fake_rasa):
    server, state = fake_rasa
    state["mode"] = "slow"
    client = RasaClient(base(server), TOKEN, timeout_s=0.3)
    try:
        await expect(client, RasaUnavailable)
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_nothing_listening_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = RasaClient(f"http://127.0.0.1:{port}", TOKEN, connect_timeout_s=1)
    try:
        err = await expect(client, RasaUnavailable)
        assert isinstance(err, RasaError)
        assert not await client.healthy()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_wrong_token_is_rejected_not_unavailable(fake_rasa):
    server, _ = fake_rasa
    client = RasaClient(base(server), "wrong")
    try:
        await expect(client, RasaRejected)
    finally:
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["html", "dict"])
async def test_non_rest_answers_are_rejected(fake_rasa, mode):
    server, state = fake_rasa
    state["mode"] = mode
    client = RasaClient(base(server), TOKEN)
    try:
        await expect(client, RasaRejected)
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_from_env(monkeypatch, fake_rasa):
    server, state = fake_rasa
    monkeypatch.setenv("RASA_URL", base(server) + "/")
    monkeypatch.setenv("RASA_TOKEN", TOKEN)
    client = RasaClient.from_env()
    try:
        out = await client.send("U2", "hello")
        assert len(out) == 2
        assert "metadata" not in state["got"][-1][1]
    finally:
        await client.close()
