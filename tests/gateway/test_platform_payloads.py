"""What LINE and Slack really send, replayed (signed) against the real gateway app.

Payloads are written from the platforms' documentation and SDK fixtures (line-bot-sdk's
tests/v3/text/webhook.json; slack-bolt's scenario tests; the Events API and
interactivity references). The gateway runs over real HTTP with the LINE and Slack API
emulators (their recorded calls are what a user would see), its journal in a real
redis-server where it matters, and the small Rasa / action server stand-in of
test_gateway_app.py (here also taking appended tracker events, as Rasa's
POST /conversations/{id}/tracker/events does).

What must hold:
- every documented LINE event gets 200 and is never logged as malformed; one without a
  `source` (module, activated, botSuspended, PNP delivery, ...) is ignored, not stored;
- `"mode": "standby"`: nothing at all is sent to LINE (no loading, reply, push, apology)
  and the bot is not run, but the message is recorded (case thread or Rasa's tracker);
- a group / room member's profile comes from that chat's member endpoint;
- every verified Slack request gets 2xx (also those nothing here listens for, and
  genuine payloads with objects where strings might be expected); unverified: 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Callable, Dict, List
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from aiohttp import web

from devkit.emulators.line_client import LineWebhookClient, new_ulid
from devkit.emulators.slack_api import OUTSIDER
from gateway.core.events import DONE, RedisEventStore
from gateway.line.api import LineApi, LineApiError
from tests.gateway.test_gateway_app import (  # noqa: F401  (fixtures)
    RASA_TOKEN,
    SECRET,
    TOKEN,
    USER,
    FakeBot,
    emu,
    make_gateway,
    replies,
    serving,
    wait_until,
)
from tests.gateway.test_slack_desk import (  # noqa: F401  (fixtures)
    AGENT,
    CHANNEL,
    open_posted_case,
    slack,
    slack_gateway,
)

GROUP = "Ca56f94637cc4347f90a25382909b24b9"
ROOM = "Ra8dbf4673c4c812cd491258042226c99"
OTHER = "U91eeaf62d9ac1b3a0d54c1a4b6f8c2e7"
BOT_ID = "U" + "b" * 32
SEND_PATHS = ("/v2/bot/message/reply", "/v2/bot/message/push", "/v2/bot/chat/loading/start")


class TrackerBot(FakeBot):
    """FakeBot that also appends events to a tracker without running the bot."""

    def rasa_app(self) -> web.Application:
        app = super().rasa_app()

        async def append(request: web.Request) -> web.Response:
            if not self.up:
                return web.Response(status=502, text="down")
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            body = await request.json()
            sender = request.match_info["sender"]
            self.events.setdefault(sender, []).extend(body if isinstance(body, list) else [body])
            return web.json_response({"sender_id": sender, "events": self.events[sender]})

        app.router.add_post("/conversations/{sender}/tracker/events", append)
        return app

    def user_events(self, sender: str) -> List[Dict[str, Any]]:
        return [e for e in self.events.get(sender, []) if e.get("event") == "user"]


@pytest_asyncio.fixture
async def fake_bot():
    async for bot in serving(TrackerBot()):
        yield bot


# --- LINE: the documented webhook events -------------------------------------------------


def user_source(user: str = USER) -> Dict[str, Any]:
    return {"type": "user", "userId": user}


def base(
    emu: Any, etype: str, source: Any = "user", *, reply: bool = True, mode: str = "active", **parts: Any
) -> Dict[str, Any]:
    """An event as LINE sends it; source "user" is USER's 1:1 chat, None leaves it out."""
    ts = int(time.time() * 1000)
    event: Dict[str, Any] = {
        "type": etype,
        "mode": mode,
        "timestamp": ts,
        "webhookEventId": new_ulid(ts),
        "deliveryContext": {"isRedelivery": False},
    }
    if source == "user":
        source = user_source()
    if source is not None:
        event["source"] = source
    if reply:
        event["replyToken"] = emu.issue_reply_token(
            (source or {}).get("groupId") or (source or {}).get("roomId") or (source or {}).get("userId")
        )
    event.update(parts)
    return event


def message(emu: Any, content: Dict[str, Any], source: Any = "user", **kw: Any) -> Dict[str, Any]:
    return base(emu, "message", source, message={"id": str(uuid.uuid4().int)[:18], **content}, **kw)


group_member = {"type": "group", "groupId": GROUP, "userId": USER}
room_member = {"type": "room", "roomId": ROOM, "userId": USER}
provider = {
    "type": "external",
    "originalContentUrl": "https://example.com/a",
    "previewImageUrl": "https://example.com/a.jpg",
}

# name -> builder(emu); each shape as the Messaging API reference documents it
LINE_EVENTS: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "text": lambda e: message(e, {"type": "text", "text": "Hello, world", "quoteToken": "q"}),
    "text in a group": lambda e: message(e, {"type": "text", "text": "Hello", "quoteToken": "q"}, group_member),
    "text in a room": lambda e: message(e, {"type": "text", "text": "Hello", "quoteToken": "q"}, room_member),
    "image": lambda e: message(
        e,
        {
            "type": "image",
            "contentProvider": {"type": "line"},
            "imageSet": {"id": "E005D41A7288F41B655", "index": 2, "total": 2},
            "quoteToken": "q",
        },
    ),
    "image (external)": lambda e: message(
        e, {"type": "image", "contentProvider": provider, "quoteToken": "q"}, room_member
    ),
    "video": lambda e: message(e, {"type": "video", "duration": 60000, "contentProvider": provider, "quoteToken": "q"}),
    "audio": lambda e: message(e, {"type": "audio", "duration": 60000, "contentProvider": {"type": "line"}}),
    "file": lambda e: message(e, {"type": "file", "fileName": "file.txt", "fileSize": 2138}),
    "location": lambda e: message(
        e,
        {
            "type": "location",
            "title": "my location",
            "address": "Tokyo",
            "latitude": 35.659108,
            "longitude": 139.703728,
        },
    ),
    "sticker": lambda e: message(
        e,
        {
            "type": "sticker",
            "packageId": "1",
            "stickerId": "1",
            "stickerResourceType": "STATIC",
            "keywords": ["Love You", "Love"],
            "text": "Just sticker",
            "quoteToken": "q",
        },
    ),
    "follow": lambda e: base(e, "follow", follow={"isUnblocked": True}),
    "unfollow": lambda e: base(e, "unfollow", reply=False),
    "join": lambda e: base(e, "join", {"type": "group", "groupId": GROUP}),
    "leave": lambda e: base(e, "leave", {"type": "group", "groupId": GROUP}, reply=False),
    "memberJoined": lambda e: base(
        e, "memberJoined", {"type": "group", "groupId": GROUP}, joined={"members": [user_source(), user_source(OTHER)]}
    ),
    "memberLeft": lambda e: base(
        e, "memberLeft", {"type": "group", "groupId": GROUP}, reply=False, left={"members": [user_source(OTHER)]}
    ),
    "postback": lambda e: base(e, "postback", postback={"data": "action=buyItem&itemId=123"}),
    "postback (date)": lambda e: base(
        e, "postback", postback={"data": "action=date", "params": {"date": "2013-04-01"}}
    ),
    "postback (time)": lambda e: base(e, "postback", postback={"data": "action=time", "params": {"time": "10:00"}}),
    "postback (datetime)": lambda e: base(
        e, "postback", postback={"data": "action=datetime", "params": {"datetime": "2017-12-25T01:00"}}
    ),
    "postback (rich menu switch)": lambda e: base(
        e,
        "postback",
        postback={
            "data": "richmenu-changed-to-b",
            "params": {"newRichMenuAliasId": "richmenu-alias-b", "status": "SUCCESS"},
        },
    ),
    "videoPlayComplete": lambda e: base(e, "videoPlayComplete", videoPlayComplete={"trackingId": "track_id"}),
    "beacon": lambda e: base(e, "beacon", beacon={"hwid": "d41d8cd98f", "type": "enter", "dm": "1234567890abcdef"}),
    "accountLink": lambda e: base(e, "accountLink", link={"result": "ok", "nonce": "Vb771wDYtXuammLszK6h9A"}),
    "things": lambda e: base(e, "things", things={"deviceId": "t2c449c9d1", "type": "link"}),
    "unsend": lambda e: base(e, "unsend", group_member, reply=False, unsend={"messageId": "325708"}),
    "membership (joined)": lambda e: base(e, "membership", membership={"type": "joined", "membershipId": 3189}),
    "membership (renewed)": lambda e: base(e, "membership", membership={"type": "renewed", "membershipId": 3189}),
    "membership (left)": lambda e: base(
        e, "membership", reply=False, membership={"type": "left", "membershipId": 3189}
    ),
    "activated (with its chat)": lambda e: base(e, "activated", reply=False, chatControl={"expireAt": 1462629479860}),
    "unknown future type": lambda e: base(e, "undefined", undefinedField={"1": 1}),
    # no `source`: these concern the channel, not a chat
    "module (attached)": lambda e: base(
        e,
        "module",
        None,
        reply=False,
        module={"type": "attached", "botId": BOT_ID, "scopes": ["message:send", "message:receive"]},
    ),
    "module (detached)": lambda e: base(
        e, "module", None, reply=False, module={"type": "detached", "botId": BOT_ID, "reason": "bot_deleted"}
    ),
    "activated": lambda e: base(e, "activated", None, reply=False, chatControl={"expireAt": 1462629479860}),
    "deactivated": lambda e: base(e, "deactivated", None, reply=False),
    "botSuspended": lambda e: base(e, "botSuspended", None, reply=False),
    "botResumed": lambda e: base(e, "botResumed", None, reply=False),
    "delivery (PNP)": lambda e: base(
        e,
        "delivery",
        None,
        reply=False,
        delivery={"data": "61b8a5a8b9a4e0e1f8b2d3c4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4"},
    ),
    "unknown future type without a source": lambda e: base(e, "somethingNew", None, reply=False),
}
WITHOUT_SOURCE = [
    n
    for n, build in LINE_EVENTS.items()
    if n.startswith(("module", "deactivated", "bot", "delivery"))
    or n in ("activated", "unknown future type without a source")
]


async def wait_done(store: Any, event_id: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await store.status(event_id) == DONE:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(LINE_EVENTS))
async def test_every_documented_line_event_is_acked_and_never_malformed(make_gateway, emu, name, caplog):
    caplog.set_level(logging.INFO)
    gw = await make_gateway()
    event = LINE_EVENTS[name](emu)
    res = await gw.client.post([event])
    assert res.status == 200, res.text
    counts = json.loads(res.text)
    assert counts["skipped"] == 0
    assert "malformed" not in caplog.text
    if name in WITHOUT_SOURCE:
        assert counts == {"accepted": 0, "duplicates": 0, "skipped": 0, "ignored": 1}
        assert "without a chat" in caplog.text
        await asyncio.sleep(0.1)
        assert await gw.store.status(event["webhookEventId"]) is None  # nothing stored
        assert emu.requests == []
    else:
        assert counts["accepted"] == 1
        assert await wait_done(gw.store, event["webhookEventId"])
    assert "unexpected error" not in caplog.text


@pytest.mark.asyncio
async def test_all_documented_events_in_one_webhook_get_one_200(make_gateway, emu, caplog):
    gw = await make_gateway()
    events = [build(emu) for build in LINE_EVENTS.values()]
    res = await gw.client.post(events)
    assert res.status == 200
    counts = json.loads(res.text)
    assert counts["ignored"] == len(WITHOUT_SOURCE) and counts["skipped"] == 0
    assert counts["accepted"] == len(events) - len(WITHOUT_SOURCE)
    for event in events:
        if "source" in event:
            assert await wait_done(gw.store, event["webhookEventId"], timeout=10)
    assert "malformed" not in caplog.text


# --- LINE: standby -------------------------------------------------------------------------


def line_sends(emu: Any) -> List[Dict[str, Any]]:
    """Every call that would show the customer something (or the loading animation)."""
    return [r for r in emu.requests if r["path"] in SEND_PATHS]


STANDBY_EVENTS: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    # LINE sends no reply token in standby; one test below adds one anyway
    "text": lambda e: message(
        e, {"type": "text", "text": "まだ届いていません", "quoteToken": "q"}, reply=False, mode="standby"
    ),
    "postback": lambda e: base(
        e,
        "postback",
        reply=False,
        mode="standby",
        postback={"data": "action=datetime", "params": {"datetime": "2017-12-25T01:00"}},
    ),
    "sticker": lambda e: message(
        e,
        {"type": "sticker", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC"},
        reply=False,
        mode="standby",
    ),
    "image": lambda e: message(e, {"type": "image", "contentProvider": {"type": "line"}}, reply=False, mode="standby"),
    "follow": lambda e: base(e, "follow", reply=False, mode="standby", follow={"isUnblocked": False}),
}
RECORDED_AS = {"text": "まだ届いていません", "postback": "[button]", "sticker": "[sticker]", "image": "[image]"}


@pytest_asyncio.fixture
async def redis_gateway(make_gateway, redis_url):
    store = RedisEventStore.from_url(redis_url, prefix=f"test-standby:{uuid.uuid4().hex}:")
    return await make_gateway(store=store, redis_url=redis_url)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", sorted(STANDBY_EVENTS))
async def test_in_standby_nothing_is_sent_to_line_but_the_message_is_recorded(
    redis_gateway, emu, fake_bot, kind, caplog
):
    caplog.set_level(logging.INFO)
    gw = redis_gateway
    event = STANDBY_EVENTS[kind](emu)
    res = await gw.client.post([event])
    assert res.status == 200 and json.loads(res.text)["accepted"] == 1
    assert await wait_done(gw.store, event["webhookEventId"])
    await asyncio.sleep(0.2)
    assert line_sends(emu) == [] and emu.delivered == []
    assert fake_bot.got == []  # the bot did not run
    assert "standby" in caplog.text
    recorded = fake_bot.user_events(USER)
    if kind in RECORDED_AS:
        assert [e["text"] for e in recorded] == [RECORDED_AS[kind]]
        assert recorded[0]["metadata"]["line_event_id"] == event["webhookEventId"]
        assert recorded[0]["metadata"]["line_mode"] == "standby"
    else:
        assert recorded == []


@pytest.mark.asyncio
async def test_standby_uses_no_reply_token_even_when_rasa_is_down_and_records_once(make_gateway, emu, fake_bot):
    gw = await make_gateway()
    fake_bot.up = False
    event = message(emu, {"type": "text", "text": "後で記録", "quoteToken": "q"}, mode="standby")
    assert event["replyToken"]  # an apology would normally use it
    assert (await gw.client.post([event])).status == 200
    await asyncio.sleep(0.6)  # tried, kept pending, retry loop waiting for Rasa
    assert await gw.store.status(event["webhookEventId"]) != DONE
    assert line_sends(emu) == []
    fake_bot.up = True
    assert await wait_done(gw.store, event["webhookEventId"], timeout=10)
    assert [e["text"] for e in fake_bot.user_events(USER)] == ["後で記録"]
    assert line_sends(emu) == [] and fake_bot.got == []


@pytest.mark.asyncio
async def test_an_active_message_after_a_standby_one_is_answered_normally(make_gateway, emu, fake_bot):
    gw = await make_gateway()
    standby = message(emu, {"type": "text", "text": "standby", "quoteToken": "q"}, reply=False, mode="standby")
    active = await gw.client.text_event(USER, "active again")
    assert (await gw.client.post([standby, active])).status == 200
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert [g[1] for g in fake_bot.got] == ["active again"]
    assert [d["message"]["text"] for d in emu.messages_for(USER)] == ["echo: active again"]


@pytest.mark.asyncio
async def test_in_standby_a_message_during_a_case_goes_to_the_thread_only(slack_gateway, slack, emu):
    server, _, cases = slack_gateway
    case = await open_posted_case(server, cases)  # sample_case: customer "U1"
    client = LineWebhookClient(str(server.make_url("/line/webhook")), SECRET)
    try:
        event = message(
            emu,
            {"type": "text", "text": "写真も送りました", "quoteToken": "q"},
            {"type": "user", "userId": case.user_id},
            reply=False,
            mode="standby",
        )
        assert (await client.post([event])).status == 200
    finally:
        await client.close()
    assert await wait_until(
        lambda: "写真も送りました" in json.dumps(slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False)
    )
    await asyncio.sleep(0.1)
    assert line_sends(emu) == []


# --- LINE: whose profile -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "source, path",
    [
        (group_member, f"/v2/bot/group/{GROUP}/member/{USER}"),
        (room_member, f"/v2/bot/room/{ROOM}/member/{USER}"),
    ],
)
async def test_a_group_or_room_members_profile_comes_from_that_chats_member_endpoint(
    make_gateway, emu, fake_bot, source, path
):
    emu.add_member(source.get("groupId") or source["roomId"], USER, "グループの太郎")
    gw = await make_gateway()
    await gw.client.post([message(emu, {"type": "text", "text": "hi", "quoteToken": "q"}, source)])
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert [r["status"] for r in emu.requests_to(path)] == [200]
    assert emu.requests_to(f"/v2/bot/profile/{USER}") == []  # friends only
    assert fake_bot.got[0][2]["display_name"] == "グループの太郎"
    assert emu.requests_to("/v2/bot/chat/loading/start") == []  # 1:1 chats only


@pytest.mark.asyncio
async def test_the_emulator_serves_member_profiles_like_line(emu):
    emu.add_member(GROUP, USER, "グループの太郎", picture_url="https://example.com/p.jpg")
    api = LineApi(TOKEN, emu.base_url, emu.base_url)
    wrong = LineApi("wrong-token", emu.base_url, emu.base_url, max_attempts=1)
    try:
        member = await api.profile(USER, group_id=GROUP)
        assert member == {
            "displayName": "グループの太郎",
            "userId": USER,
            "pictureUrl": "https://example.com/p.jpg",
        }  # no language
        assert (await api.profile(OTHER, room_id=ROOM))["userId"] == OTHER  # auto profile
        emu.auto_profiles = False
        assert await api.profile(OTHER, group_id=GROUP) is None  # not a member: 404
        assert await api.profile(USER, room_id=GROUP) is None
        with pytest.raises(LineApiError) as info:
            await wrong.profile(USER, group_id=GROUP)
        assert info.value.status == 401
    finally:
        await api.close()
        await wrong.close()
    statuses = [r["status"] for r in emu.requests if "/member/" in r["path"]]
    assert statuses == [200, 200, 404, 404, 401]


# --- Slack: every verified request is acknowledged -----------------------------------------


def interactive(payload: Dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()


TEAM = {"id": "T0000000001", "domain": "emulated"}
SLACK_USER = {"id": "U0OTHER001", "username": "someone", "name": "someone", "team_id": "T0000000001"}

SLACK_EVENTS: Dict[str, Dict[str, Any]] = {
    "app_mention": {
        "type": "app_mention",
        "user": "U061F7AUR",
        "text": "<@U0BOT00001> hi",
        "ts": "1515449522.000016",
        "channel": CHANNEL,
        "event_ts": "1515449522.000016",
    },
    "reaction_added": {
        "type": "reaction_added",
        "user": "U024BE7LH",
        "reaction": "thumbsup",
        "item_user": "U0G9QF9C6",
        "item": {"type": "message", "channel": CHANNEL, "ts": "1360782400.498405"},
        "event_ts": "1360782804.083113",
    },
    "tokens_revoked": {"type": "tokens_revoked", "tokens": {"oauth": ["UXXXXXXXX"], "bot": ["UXXXXXXXX"]}},
    "channel_created": {
        "type": "channel_created",
        "channel": {"id": "C024BE91L", "name": "fun", "created": 1360782804, "creator": "U024BE7LH"},
    },
    "user_change": {
        "type": "user_change",
        "user": {
            "id": "U0AGENT001",
            "team_id": "T0000000001",
            "name": "sato",
            "profile": {"display_name": "佐藤 花子"},
        },
        "cache_ts": 1360782804,
        "event_ts": "1360782804.000100",
    },
    "message_changed in the handoff channel": {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": CHANNEL,
        "ts": "1358878755.000001",
        "event_ts": "1358878755.000001",
        "message": {"type": "message", "user": "U0AGENT001", "text": "edited", "ts": "1358878749.000002"},
    },
    "message in another channel": {
        "type": "message",
        "channel": "C0OTHER001",
        "user": "U0AGENT001",
        "text": "hello",
        "ts": "1355517523.000005",
        "channel_type": "channel",
    },
}

SLACK_BODIES: Dict[str, Dict[str, Any]] = {
    "app_rate_limited": {
        "token": "emulated-verification-token",
        "type": "app_rate_limited",
        "team_id": "T0000000001",
        "minute_rate_limited": 1518467820,
        "api_app_id": "A0000000001",
    },
}

SLACK_INTERACTIONS: Dict[str, Dict[str, Any]] = {
    "view_submission": {
        "type": "view_submission",
        "team": TEAM,
        "user": SLACK_USER,
        "api_app_id": "A0000000001",
        "token": "t",
        "trigger_id": "111.222.valid",
        "view": {
            "id": "V111",
            "team_id": "T0000000001",
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "view-id",
            "state": {"values": {}},
            "hash": "1596530361.3wRYuk3R",
            "title": {"type": "plain_text", "text": "My App"},
            "app_id": "A0000000001",
            "bot_id": "B0BOT00001",
        },
        "response_urls": [],
    },
    "shortcut": {
        "type": "shortcut",
        "token": "t",
        "action_ts": "1581106241.371594",
        "team": TEAM,
        "user": SLACK_USER,
        "callback_id": "shortcut_create_task",
        "trigger_id": "944799105734.773906753841.38b5894552bdd4a780554ee59d1f3638",
    },
    "message_action": {
        "type": "message_action",
        "token": "t",
        "action_ts": "1581106241.371594",
        "team": TEAM,
        "user": SLACK_USER,
        "channel": {"id": CHANNEL, "name": "handoff"},
        "callback_id": "add_note",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "message_ts": "1548261231.000200",
        "response_url": "https://hooks.slack.com/app/x",
        "message": {"type": "message", "user": "U0AGENT001", "ts": "1548261231.000200", "text": "a message"},
    },
    "block_actions of another app's button": {
        "type": "block_actions",
        "team": TEAM,
        "user": SLACK_USER,
        "api_app_id": "A0000000001",
        "token": "t",
        "trigger_id": "1.2.3",
        "container": {
            "type": "message",
            "message_ts": "1548261231.000200",
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "channel": {"id": CHANNEL, "name": "handoff"},
        "message": {"type": "message", "ts": "1548261231.000200", "text": ""},
        "response_url": "https://hooks.slack.com/actions/T/1/x",
        "actions": [
            {
                "action_id": "other_app_vote",
                "block_id": "poll",
                "value": "yes",
                "type": "button",
                "action_ts": "1548426417.840180",
            }
        ],
    },
    "legacy interactive_message (no action_id)": {
        "type": "interactive_message",
        "actions": [{"name": "channel_list", "type": "select", "selected_options": [{"value": "C111"}]}],
        "callback_id": "pick_channel_for_fun",
        "team": TEAM,
        "channel": {"id": "C222", "name": "triage-random"},
        "user": {"id": "U111", "name": "gbelson"},
        "action_ts": "1520966872.245369",
        "message_ts": "1520965348.000538",
        "attachment_id": "1",
        "token": "t",
        "original_message": {
            "text": "",
            "bot_id": "B111",
            "type": "message",
            "subtype": "bot_message",
            "ts": "1520965348.000538",
        },
        "response_url": "https://hooks.slack.com/actions/T111/111/xxxx",
        "trigger_id": "111.222.valid",
    },
}


async def post_slack(client: Any, kind: str, name: str, **kw: Any):
    if kind == "event":
        return await client.post_event(SLACK_EVENTS[name], **kw)
    if kind == "body":
        return await client.post_body(json.dumps(SLACK_BODIES[name]).encode(), "application/json", **kw)
    return await client.post_body(interactive(SLACK_INTERACTIONS[name]), "application/x-www-form-urlencoded", **kw)


ALL_SLACK = (
    [("event", n) for n in SLACK_EVENTS]
    + [("body", n) for n in SLACK_BODIES]
    + [("interaction", n) for n in SLACK_INTERACTIONS]
)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind, name", ALL_SLACK, ids=[n for _, n in ALL_SLACK])
async def test_every_verified_slack_request_gets_2xx_and_changes_nothing(slack_gateway, slack, kind, name, caplog):
    caplog.set_level(logging.DEBUG, logger="gateway.slack.app")
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    thread_before = len(slack.thread(CHANNEL, case.thread_ts))
    posts_before = len(slack.calls_to("chat.postMessage")) + len(slack.ephemerals)
    status, body = await post_slack(client, kind, name)
    assert 200 <= status < 300, body
    assert "not a Slack payload" not in caplog.text and "refused" not in caplog.text
    await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (await cases.get(case.case_id)).status == "open"
    assert len(slack.thread(CHANNEL, case.thread_ts)) == thread_before
    assert len(slack.calls_to("chat.postMessage")) + len(slack.ephemerals) == posts_before
    if name not in ("message in another channel", "message_changed in the handoff channel"):
        assert "nothing here handles it" in caplog.text  # ignored, with a debug log


@pytest.mark.asyncio
@pytest.mark.parametrize("kind, name", ALL_SLACK, ids=[n for _, n in ALL_SLACK])
async def test_the_same_requests_unverified_get_401(slack_gateway, kind, name):
    _, client, _ = slack_gateway
    status, _ = await post_slack(client, kind, name, secret="not-the-signing-secret")
    assert status == 401
    status, _ = await post_slack(client, kind, name, timestamp=int(time.time()) - 301)
    assert status == 401


@pytest.mark.asyncio
async def test_url_verification_still_answers_the_challenge(slack_gateway):
    _, client, _ = slack_gateway
    status, body = await client.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert status == 200
    assert json.loads(body) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.asyncio
async def test_a_signed_body_that_is_no_slack_payload_is_acked_and_ignored(slack_gateway, caplog):
    _, client, _ = slack_gateway
    for body, content_type in (
        (b"not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"payload=%7B", "application/x-www-form-urlencoded"),
    ):
        status, _ = await client.post_body(body, content_type)
        assert status == 200
    assert "Slack request ignored" in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize("action_id, value", [("case_approve_0", "K7|refund_item"), ("case_resolve", "K7")])
async def test_our_buttons_still_reach_their_listeners(slack_gateway, slack, action_id, value):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    status, _ = await client.press_button(
        action_id, value, user_id=OUTSIDER, channel=CHANNEL, message_ts=case.thread_ts
    )
    assert status == 200
    assert await wait_until(lambda: slack.ephemerals)
    assert "Only members" in json.dumps(slack.ephemerals[-1], ensure_ascii=False)
    assert (await cases.get(case.case_id)).status == "open"


@pytest.mark.asyncio
async def test_an_agent_thread_reply_is_still_relayed_to_the_customer(slack_gateway, emu):
    server, client, cases = slack_gateway
    case = await open_posted_case(server, cases)
    status, _ = await client.thread_reply(CHANNEL, case.thread_ts, AGENT, "返金しました")
    assert status == 200
    assert await wait_until(
        lambda: [m["message"].get("text") for m in emu.messages_for(case.user_id)] == ["返金しました"]
    )
