"""Slack Web API emulator (driven by slack_sdk's AsyncWebClient over real HTTP) and the
Events API / interactivity client (Slack's envelope, v0 signatures, retries)."""

import hashlib
import json
import time

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.request.internals import parse_body
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from devkit.emulators.slack_api import SlackApiEmulator
from devkit.emulators.slack_client import SlackEventsClient

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"
CHANNEL = "C0HANDOFF1"
AGENT = "U0AGENT001"
BOT = "U0BOT00001"


@pytest_asyncio.fixture
async def emu():
    emulator = SlackApiEmulator(TOKEN)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest_asyncio.fixture
async def slack(emu):
    client = AsyncWebClient(token=TOKEN, base_url=emu.base_url)
    yield client
    if client.session is not None:
        await client.session.close()


class Receiver:
    """The app side: verifies signatures like slack_bolt and parses bodies like it."""

    def __init__(self):
        self.verifier = SignatureVerifier(SECRET)
        self.requests = []
        self.url = None
        self._runner = None

    async def handle(self, request):
        raw = await request.read()
        body = raw.decode("utf-8")
        self.requests.append(
            {
                "headers": dict(request.headers),
                "raw": raw,
                "valid": self.verifier.is_valid_request(raw, dict(request.headers)),
                "payload": parse_body(body, request.content_type),
                "content_type": request.content_type,
            }
        )
        payload = self.requests[-1]["payload"]
        if payload.get("type") == "url_verification":
            return web.json_response({"challenge": payload["challenge"]})
        return web.Response(text="")

    async def start(self):
        app = web.Application()
        app.router.add_post("/slack/events", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/slack/events"

    async def stop(self):
        await self._runner.cleanup()


@pytest_asyncio.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest_asyncio.fixture
async def events(receiver, emu):
    client = SlackEventsClient(receiver.url, SECRET, api_emulator_url=emu.base_url)
    yield client
    await client.close()


async def error_of(coro):
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value.response


# --- Web API: auth and routing ---------------------------------------------------------


@pytest.mark.asyncio
async def test_auth_test_identifies_the_bot(slack):
    resp = await slack.auth_test()
    assert resp["ok"] and resp["user_id"] == BOT and resp["bot_id"] == "B0BOT00001"
    assert resp["team_id"] == "T0000000001"


@pytest.mark.asyncio
async def test_missing_token_is_not_authed_and_wrong_token_invalid_auth(emu):
    anonymous = AsyncWebClient(token=None, base_url=emu.base_url)
    resp = await error_of(anonymous.chat_postMessage(channel=CHANNEL, text="hi"))
    assert (resp.status_code, resp["error"]) == (200, "not_authed")
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emu.base_url)
    resp = await error_of(wrong.chat_postMessage(channel=CHANNEL, text="hi"))
    assert (resp.status_code, resp["error"]) == (200, "invalid_auth")
    assert emu.messages() == []
    assert [c["error"] for c in emu.calls] == ["not_authed", "invalid_auth"]


@pytest.mark.asyncio
async def test_unknown_method_is_404(slack, emu):
    resp = await error_of(slack.api_call("chat.teleport", json={"channel": CHANNEL}))
    assert (resp.status_code, resp["error"]) == (404, "unknown_method")


@pytest.mark.asyncio
async def test_form_encoded_and_get_arguments_are_read_like_json(slack, emu):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*form*"}}]
    resp = await slack.api_call(
        "chat.postMessage", data={"channel": CHANNEL, "text": "via form", "blocks": json.dumps(blocks)}
    )
    assert resp["message"]["blocks"] == blocks
    info = await slack.api_call("conversations.info", http_verb="GET", params={"channel": CHANNEL})
    assert info["channel"]["id"] == CHANNEL and info["channel"]["is_member"] is True
    assert emu.messages(CHANNEL)[0]["text"] == "via form"


# --- Web API: messages and threads -----------------------------------------------------


@pytest.mark.asyncio
async def test_thread_replies_are_found_in_order(slack, emu):
    parent = await slack.chat_postMessage(channel=CHANNEL, text="新しいお問い合わせ")
    r1 = await slack.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="お客様: 卵が入っていません")
    agent_ts = emu.add_user_message(CHANNEL, AGENT, "確認します", thread_ts=parent["ts"])
    r2 = await slack.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="お客様: ありがとう")
    assert parent["ts"] < r1["ts"] < agent_ts < r2["ts"]
    assert r1["message"]["thread_ts"] == parent["ts"]

    thread = emu.thread(CHANNEL, parent["ts"])
    assert [m["ts"] for m in thread] == [parent["ts"], r1["ts"], agent_ts, r2["ts"]]
    assert thread[2]["user"] == AGENT and "bot_id" not in thread[2]
    assert thread[1]["bot_id"] == "B0BOT00001"

    api = await slack.conversations_replies(channel=CHANNEL, ts=parent["ts"])
    assert [m["ts"] for m in api["messages"]] == [m["ts"] for m in thread]
    assert api["messages"][0]["reply_count"] == 3


@pytest.mark.asyncio
async def test_post_errors_like_slack(slack, emu):
    parent = await slack.chat_postMessage(channel=CHANNEL, text="parent")
    reply = await slack.chat_postMessage(channel=CHANNEL, thread_ts=parent["ts"], text="r")
    cases = [
        (dict(channel="C0NOPE0000", text="x"), "channel_not_found"),
        (dict(channel=CHANNEL), "no_text"),
        (dict(channel=CHANNEL, text="x", thread_ts="1.000001"), "thread_not_found"),
        (dict(channel=CHANNEL, text="x", thread_ts=reply["ts"]), "thread_not_found"),
        (
            dict(
                channel=CHANNEL,
                blocks=[
                    {
                        "type": "actions",
                        "elements": [
                            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}
                        ],
                    }
                ],
            ),
            "invalid_blocks",
        ),
    ]
    for kwargs, error in cases:
        resp = await error_of(slack.chat_postMessage(**kwargs))
        assert resp["error"] == error, kwargs
    assert len(emu.messages()) == 2


@pytest.mark.asyncio
async def test_chat_update_changes_the_stored_message(slack, emu):
    posted = await slack.chat_postMessage(
        channel=CHANNEL, text="対応待ち", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "対応待ち"}}]
    )
    resp = await slack.chat_update(channel=CHANNEL, ts=posted["ts"], text="佐藤さんが対応中", blocks=[])
    assert resp["ts"] == posted["ts"] and resp["text"] == "佐藤さんが対応中"
    [msg] = emu.messages(CHANNEL)
    assert msg["text"] == "佐藤さんが対応中" and msg["blocks"] is None and "edited" in msg
    resp = await error_of(slack.chat_update(channel=CHANNEL, ts="1.000001", text="x"))
    assert resp["error"] == "message_not_found"
    human = emu.add_user_message(CHANNEL, AGENT, "mine")
    resp = await error_of(slack.chat_update(channel=CHANNEL, ts=human, text="x"))
    assert resp["error"] == "cant_update_message"


@pytest.mark.asyncio
async def test_ephemeral_only_to_channel_members(slack, emu):
    resp = await slack.chat_postEphemeral(channel=CHANNEL, user=AGENT, text="only you")
    assert resp["message_ts"]
    assert emu.ephemerals[0]["user"] == AGENT and emu.messages() == []
    resp = await error_of(slack.chat_postEphemeral(channel=CHANNEL, user="U0OUTSIDER", text="x"))
    assert resp["error"] == "user_not_in_channel"


@pytest.mark.asyncio
async def test_reactions_add_and_duplicates(slack, emu):
    posted = await slack.chat_postMessage(channel=CHANNEL, text="done")
    await slack.reactions_add(channel=CHANNEL, timestamp=posted["ts"], name="white_check_mark")
    resp = await error_of(slack.reactions_add(channel=CHANNEL, timestamp=posted["ts"], name="white_check_mark"))
    assert resp["error"] == "already_reacted"
    resp = await error_of(slack.reactions_add(channel=CHANNEL, timestamp="1.000001", name="eyes"))
    assert resp["error"] == "message_not_found"
    assert emu.messages()[0]["reactions"] == [{"name": "white_check_mark", "users": [BOT], "count": 1}]


# --- Web API: users and members --------------------------------------------------------


@pytest.mark.asyncio
async def test_members_paginate_with_cursor(slack):
    first = await slack.conversations_members(channel=CHANNEL, limit=1)
    assert first["members"] == ["U0AGENT001"]
    cursor = first["response_metadata"]["next_cursor"]
    assert cursor
    second = await slack.conversations_members(channel=CHANNEL, limit=1, cursor=cursor)
    assert second["members"] == ["U0AGENT002"]
    assert second["response_metadata"]["next_cursor"] == ""
    resp = await error_of(slack.conversations_members(channel=CHANNEL, cursor="garbage!"))
    assert resp["error"] == "invalid_cursor"


@pytest.mark.asyncio
async def test_users_info(slack):
    sato = await slack.users_info(user=AGENT)
    assert sato["user"]["real_name"] == "佐藤 花子" and sato["user"]["is_bot"] is False
    assert sato["user"]["profile"]["display_name"]
    outsider = await slack.users_info(user="U0OUTSIDER")
    assert outsider["user"]["real_name"] == "外部 太郎"
    members = await slack.conversations_members(channel=CHANNEL)
    assert "U0OUTSIDER" not in members["members"]
    resp = await error_of(slack.users_info(user="U0NOBODY00"))
    assert resp["error"] == "user_not_found"


# --- Web API: files ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_files_upload_v2_into_a_thread(slack, emu):
    parent = await slack.chat_postMessage(channel=CHANNEL, text="case")
    data = b"\xff\xd8\xff\xe0 fake jpeg bytes"
    resp = await slack.files_upload_v2(
        channel=CHANNEL, thread_ts=parent["ts"], content=data, filename="photo.jpg", initial_comment="お客様の写真"
    )
    assert resp["file"]["name"] == "photo.jpg" and resp["file"]["size"] == len(data)
    [upload] = emu.uploads
    assert upload["channel"] == CHANNEL and upload["thread_ts"] == parent["ts"]
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    thread = emu.thread(CHANNEL, parent["ts"])
    assert thread[-1]["files"][0]["id"] == upload["file_id"]
    assert thread[-1]["text"] == "お客様の写真"
    methods = [c["method"] for c in emu.calls]
    assert methods[-3:] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


@pytest.mark.asyncio
async def test_complete_upload_needs_the_bytes(slack):
    url = await slack.files_getUploadURLExternal(filename="a.jpg", length=3)
    resp = await error_of(
        slack.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "a"}], channel_id=CHANNEL)
    )
    assert resp["error"] == "file_not_found"


# --- fault injection ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rate_limit_surfaces_as_429_with_retry_after(slack, emu):
    emu.fail_next("chat.postMessage", status=429, retry_after=7)
    resp = await error_of(slack.chat_postMessage(channel=CHANNEL, text="x"))
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert resp["error"] == "ratelimited"
    await slack.chat_postMessage(channel=CHANNEL, text="x")  # only the next call failed
    assert [c["status"] for c in emu.calls] == [429, 200]
    assert len(emu.messages()) == 1


@pytest.mark.asyncio
async def test_rate_limit_is_retried_by_a_retry_handler(emu):
    client = AsyncWebClient(
        token=TOKEN, base_url=emu.base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    )
    emu.fail_next("chat.postMessage", status=429, retry_after=0, count=1)
    resp = await client.chat_postMessage(channel=CHANNEL, text="eventually")
    assert resp["ok"]
    assert [c["status"] for c in emu.calls_to("chat.postMessage")] == [429, 200]
    assert len(emu.messages()) == 1


@pytest.mark.asyncio
async def test_server_errors_and_ok_false_injection(slack, emu):
    emu.fail_next("users.info", status=503, count=2)
    for _ in range(2):
        resp = await error_of(slack.users_info(user=AGENT))
        assert resp.status_code == 503
    emu.fail_next("chat.update", error="ratelimited")
    resp = await error_of(slack.chat_update(channel=CHANNEL, ts="1.1", text="x"))
    assert (resp.status_code, resp["error"]) == (200, "ratelimited")
    assert (await slack.users_info(user=AGENT))["ok"]
    assert [c["status"] for c in emu.calls] == [503, 503, 200, 200]


# --- HTTP introspection (emulator in another process) -------------------------------------


@pytest.mark.asyncio
async def test_http_introspection_routes(slack, emu):
    root = emu.root_url
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{root}/_emulator/fail", json={"method": "chat.postMessage", "status": 500}) as r:
            assert r.status == 200
        await error_of(slack.chat_postMessage(channel=CHANNEL, text="lost"))
        posted = await slack.chat_postMessage(channel=CHANNEL, text="kept")
        async with http.post(
            f"{root}/_emulator/user_message",
            json={"channel": CHANNEL, "user": AGENT, "text": "reply", "thread_ts": posted["ts"]},
        ) as r:
            reply_ts = (await r.json())["ts"]
        async with http.get(f"{root}/_emulator/calls") as r:
            assert [c["status"] for c in await r.json()] == [500, 200]
        async with http.get(f"{root}/_emulator/messages", params={"channel": CHANNEL, "thread_ts": posted["ts"]}) as r:
            assert [m["ts"] for m in await r.json()] == [posted["ts"], reply_ts]
        async with http.post(
            f"{root}/_emulator/user_message",
            json={"channel": CHANNEL, "user": AGENT, "text": "x", "thread_ts": "1.000001"},
        ) as r:
            assert r.status == 404
        async with http.post(f"{root}/_emulator/reset") as r:
            assert r.status == 200
        async with http.get(f"{root}/_emulator/messages") as r:
            assert await r.json() == []
    assert emu.calls == []


# --- Events API client -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_event_is_signed_and_wrapped_like_slack(events, receiver):
    event = {
        "type": "app_mention",
        "user": AGENT,
        "text": "hi",
        "ts": "1.000001",
        "channel": CHANNEL,
        "event_ts": "1.000001",
    }
    status, _ = await events.post_event(event)
    assert status == 200
    [req] = receiver.requests
    assert req["valid"] and req["content_type"] == "application/json"
    env = req["payload"]
    assert env["type"] == "event_callback" and env["event"] == event
    assert env["event_id"].startswith("Ev") and env["team_id"] == "T0000000001"
    assert env["api_app_id"] == "A0000000001"
    assert env["authorizations"][0] == {
        "enterprise_id": None,
        "team_id": "T0000000001",
        "user_id": BOT,
        "is_bot": True,
        "is_enterprise_install": False,
    }
    assert "X-Slack-Retry-Num" not in req["headers"]


@pytest.mark.asyncio
async def test_stale_or_forged_requests_fail_verification(events, receiver):
    event = {"type": "message", "channel": CHANNEL, "user": AGENT, "text": "x", "ts": "1.1"}
    await events.post_event(event, timestamp=int(time.time()) - 301)
    await events.post_event(event, secret="not-the-secret")
    await events.post_event(event, signature="v0=" + "0" * 64)
    assert [r["valid"] for r in receiver.requests] == [False, False, False]
    await events.post_event(event, timestamp=int(time.time()) - 200)
    assert receiver.requests[-1]["valid"]


@pytest.mark.asyncio
async def test_retries_repeat_the_event_id_with_retry_headers(events, receiver):
    event = {"type": "message", "channel": CHANNEL, "user": AGENT, "text": "x", "ts": "1.1"}
    await events.post_event(event)
    await events.post_event(event, retry_num=1, retry_reason="http_timeout")
    await events.retry_last(2)
    first, second, third = receiver.requests
    assert first["payload"]["event_id"] == second["payload"]["event_id"] == third["payload"]["event_id"]
    assert first["raw"] == second["raw"]  # the very same body, newly signed
    assert second["headers"]["X-Slack-Retry-Num"] == "1"
    assert second["headers"]["X-Slack-Retry-Reason"] == "http_timeout"
    assert third["headers"]["X-Slack-Retry-Num"] == "2"
    assert all(r["valid"] for r in receiver.requests)


@pytest.mark.asyncio
async def test_thread_reply_is_stored_then_delivered(slack, emu, events, receiver):
    parent = await slack.chat_postMessage(channel=CHANNEL, text="case")
    status, _ = await events.thread_reply(CHANNEL, parent["ts"], AGENT, "お待たせしました")
    assert status == 200
    event = receiver.requests[0]["payload"]["event"]
    assert event["type"] == "message" and event["thread_ts"] == parent["ts"]
    assert event["user"] == AGENT and event["channel_type"] == "channel"
    assert event["client_msg_id"] and event["blocks"][0]["type"] == "rich_text"
    assert event["parent_user_id"] == BOT
    thread = emu.thread(CHANNEL, parent["ts"])
    assert thread[-1]["ts"] == event["ts"] and thread[-1]["text"] == "お待たせしました"
    with pytest.raises(RuntimeError):
        await events.thread_reply(CHANNEL, "1.000001", AGENT, "no such thread")


@pytest.mark.asyncio
async def test_url_verification(events, receiver):
    status, text = await events.url_verification("chal-123")
    assert status == 200 and json.loads(text) == {"challenge": "chal-123"}
    assert receiver.requests[0]["valid"]


# --- interactivity ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_button_press_is_a_signed_form_payload(slack, emu, events, receiver):
    posted = await slack.chat_postMessage(channel=CHANNEL, text="case 42")
    status, _ = await events.press_button(
        "take_case",
        "42",
        user_id=AGENT,
        channel=CHANNEL,
        message_ts=posted["ts"],
        message=posted["message"],
        user_name="sato",
    )
    assert status == 200
    [req] = receiver.requests
    assert req["valid"] and req["content_type"] == "application/x-www-form-urlencoded"
    assert req["raw"].startswith(b"payload=")
    payload = req["payload"]
    assert payload["type"] == "block_actions" and payload["user"]["id"] == AGENT
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == posted["ts"]
    [action] = payload["actions"]
    assert (action["action_id"], action["value"], action["block_id"]) == ("take_case", "42", "case_actions")

    # the app answers on response_url: the emulator applies it to the original message
    async with aiohttp.ClientSession() as http:
        async with http.post(payload["response_url"], json={"replace_original": True, "text": "佐藤さんが対応中"}) as r:
            assert r.status == 200
    assert emu.messages(CHANNEL)[0]["text"] == "佐藤さんが対応中"
    assert emu.responses[0]["body"]["text"] == "佐藤さんが対応中"


@pytest.mark.asyncio
async def test_forged_button_press_fails_verification(events, receiver):
    await events.press_button("take_case", "1", user_id=AGENT, channel=CHANNEL, message_ts="1.1", secret="forged")
    assert receiver.requests[0]["valid"] is False


# --- echo of the bot's own messages --------------------------------------------------------


@pytest.mark.asyncio
async def test_bot_posts_are_echoed_as_signed_message_events(receiver):
    emulator = SlackApiEmulator(TOKEN, events_url=receiver.url, signing_secret=SECRET, echo_bot_messages=True)
    await emulator.start()
    try:
        client = AsyncWebClient(token=TOKEN, base_url=emulator.base_url)
        posted = await client.chat_postMessage(channel=CHANNEL, text="from the bot")
        await emulator.drain()
        [req] = receiver.requests
        event = req["payload"]["event"]
        assert req["valid"] and event["type"] == "message"
        assert event["bot_id"] == "B0BOT00001" and event["user"] == BOT
        assert event["ts"] == posted["ts"]
        assert emulator.events[0]["status"] == 200
    finally:
        await emulator.stop()


# --- as a separate process ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_runs_as_a_process_with_env_token(tmp_path):
    import asyncio
    import os
    import socket
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "PYTHONPATH": str(root)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devkit.emulators.slack_api",
        "--port",
        str(port),
        cwd=str(root),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        client = AsyncWebClient(token=TOKEN, base_url=f"http://127.0.0.1:{port}/api/")
        for _ in range(100):
            try:
                resp = await client.auth_test()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        assert resp["user_id"] == BOT
        await client.chat_postMessage(channel=CHANNEL, text="over the wire")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/_emulator/messages") as r:
                assert [m["text"] for m in await r.json()] == ["over the wire"]
    finally:
        proc.terminate()
        await proc.wait()


# --- views.open and modals --------------------------------------------------------------------

MODAL = {
    "type": "modal",
    "callback_id": "case_goodwill",
    "private_metadata": "K7",
    "title": {"type": "plain_text", "text": "Goodwill / お詫び"},
    "submit": {"type": "plain_text", "text": "Give"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "kind",
            "label": {"type": "plain_text", "text": "Kind"},
            "element": {
                "type": "static_select",
                "action_id": "k",
                "options": [{"text": {"type": "plain_text", "text": "store credit"}, "value": "store_credit"}],
            },
        },
        {
            "type": "input",
            "block_id": "amount",
            "label": {"type": "plain_text", "text": "Amount"},
            "element": {"type": "number_input", "action_id": "a", "is_decimal_allowed": False, "min_value": "1"},
        },
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "multiline": True, "initial_value": "late"},
        },
    ],
}


@pytest.mark.asyncio
async def test_views_open_takes_an_issued_trigger_id_once(slack, emu):
    trigger = emu.issue_trigger(AGENT)
    opened = await slack.views_open(trigger_id=trigger, view=MODAL)
    view = opened["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "case_goodwill"
    assert view["private_metadata"] == "K7" and view["state"] == {"values": {}} and view["hash"]
    reason = view["blocks"][2]
    assert reason["block_id"] and reason["element"]["action_id"]  # Slack fills in the ids
    assert emu.open_views()[0]["user"] == AGENT and emu.view(view["id"])["title"]["text"] == "Goodwill / お詫び"
    assert (await error_of(slack.views_open(trigger_id=trigger, view=MODAL)))["error"] == "exchanged_trigger_id"
    unknown = "12345.98765.abcd2358fdea"
    assert (await error_of(slack.views_open(trigger_id=unknown, view=MODAL)))["error"] == "invalid_trigger_id"
    assert (await error_of(slack.views_open(trigger_id="not-a-trigger", view=MODAL)))["error"] == "invalid_trigger_id"
    missing = await error_of(slack.api_call("views.open", json={"view": MODAL}))
    assert missing["error"] == "invalid_arguments" and "trigger_id" in missing["response_metadata"]["messages"][0]
    assert len(emu.open_views()) == 1


@pytest.mark.asyncio
async def test_a_trigger_id_expires_after_three_seconds():
    now = [1_800_000_000.0]
    emulator = SlackApiEmulator(TOKEN, clock=lambda: now[0])
    await emulator.start()
    client = AsyncWebClient(token=TOKEN, base_url=emulator.base_url)
    try:
        fresh = emulator.issue_trigger(AGENT)
        now[0] += 2.9
        assert (await client.views_open(trigger_id=fresh, view=MODAL))["ok"]
        old = emulator.issue_trigger(AGENT)
        now[0] += 3.1
        assert (await error_of(client.views_open(trigger_id=old, view=MODAL)))["error"] == "expired_trigger_id"
    finally:
        if client.session is not None:
            await client.session.close()
        await emulator.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "change, pointer",
    [
        ({"type": "home"}, "/view/type"),
        ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
        ({"submit": {"type": "plain_text", "text": "y" * 25}}, "/view/submit/text"),
        ({"close": {"type": "mrkdwn", "text": "Cancel"}}, "/view/close"),
        ({"submit": None}, "/view/submit"),
        ({"private_metadata": "z" * 3001}, "/view/private_metadata"),
        ({"callback_id": "c" * 256}, "/view/callback_id"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({"blocks": [dict(MODAL["blocks"][1], element={"type": "number_input", "action_id": "a"})]}, "element"),
    ],
)
async def test_views_open_validates_the_view_like_slack(slack, emu, change, pointer):
    view = {k: v for k, v in {**MODAL, **change}.items() if v is not None}
    response = await error_of(slack.views_open(trigger_id=emu.issue_trigger(AGENT), view=view))
    assert response["error"] == "invalid_arguments"
    assert any(pointer in m for m in response["response_metadata"]["messages"]), response
    assert emu.open_views() == []


@pytest.mark.asyncio
async def test_the_clients_trigger_ids_open_views_and_a_submission_is_slacks_payload(slack, emu, events, receiver):
    posted = await slack.chat_postMessage(channel=CHANNEL, text="case K7")
    await events.press_button("case_goodwill", "K7", user_id=AGENT, channel=CHANNEL, message_ts=posted["ts"])
    trigger = receiver.requests[-1]["payload"]["trigger_id"]
    view = (await slack.views_open(trigger_id=trigger, view=MODAL))["view"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.root_url}/_emulator/views") as r:
            assert [v["id"] for v in await r.json()] == [view["id"]]
    reason_block = view["blocks"][2]["block_id"]
    status, answer = await events.submit_view(
        view["id"], AGENT, {"kind": "store_credit", "amount": 500}, user_name="sato"
    )
    assert (status, answer) == (200, None)
    req = receiver.requests[-1]
    assert req["valid"] and req["raw"].startswith(b"payload=")
    payload = req["payload"]
    assert payload["type"] == "view_submission" and payload["response_urls"] == []
    assert payload["user"] == {"id": AGENT, "username": "sato", "name": "sato", "team_id": "T0000000001"}
    assert payload["team"]["id"] == "T0000000001" and payload["api_app_id"] and payload["token"]
    assert payload["trigger_id"] != trigger
    sent = payload["view"]
    for key in (
        "id",
        "team_id",
        "type",
        "blocks",
        "private_metadata",
        "callback_id",
        "hash",
        "title",
        "submit",
        "close",
    ):
        assert sent[key] == view[key], key
    values = sent["state"]["values"]
    assert values["kind"]["k"] == {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": "store credit"}, "value": "store_credit"},
    }
    assert values["amount"]["a"] == {"type": "number_input", "value": "500"}
    reason_action = view["blocks"][2]["element"]["action_id"]
    assert values[reason_block][reason_action] == {"type": "plain_text_input", "value": "late"}  # as prefilled
    assert emu.open_views()[0]["closed"]  # an empty ack closes the modal


@pytest.mark.asyncio
async def test_select_menus_send_their_choice_like_slack(slack, emu, events, receiver):
    posted = await slack.chat_postMessage(channel=CHANNEL, text="case K7")
    await events.select_user(
        "case_reassign", "U0AGENT002", user_id=AGENT, channel=CHANNEL, message_ts=posted["ts"], block_id="tools"
    )
    [action] = receiver.requests[-1]["payload"]["actions"]
    assert (action["type"], action["action_id"], action["block_id"]) == ("users_select", "case_reassign", "tools")
    assert action["selected_user"] == "U0AGENT002" and action["action_ts"]
    await events.select_option(
        "case_suggest_reply", "K7|ask", text="Ask for a photo", user_id=AGENT, channel=CHANNEL, message_ts=posted["ts"]
    )
    [action] = receiver.requests[-1]["payload"]["actions"]
    assert action["type"] == "static_select"
    assert action["selected_option"] == {
        "text": {"type": "plain_text", "text": "Ask for a photo", "emoji": True},
        "value": "K7|ask",
    }
    # each click's trigger_id is known to the emulator, so views.open takes it
    assert (await slack.views_open(trigger_id=receiver.requests[-1]["payload"]["trigger_id"], view=MODAL))["ok"]


@pytest.mark.asyncio
async def test_chat_get_permalink(slack):
    parent = await slack.chat_postMessage(channel=CHANNEL, text="card")
    reply = await slack.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=parent["ts"])
    link = (await slack.chat_getPermalink(channel=CHANNEL, message_ts=parent["ts"]))["permalink"]
    assert link.endswith(f"/archives/{CHANNEL}/p{parent['ts'].replace('.', '')}")
    link = (await slack.chat_getPermalink(channel=CHANNEL, message_ts=reply["ts"]))["permalink"]
    assert f"?thread_ts={parent['ts']}&cid={CHANNEL}" in link
    assert (await error_of(slack.chat_getPermalink(channel=CHANNEL, message_ts="1.000001")))[
        "error"
    ] == "message_not_found"
