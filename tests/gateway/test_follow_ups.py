"""Follow-ups at the promised time (gateway/follow_ups.py) over a real redis-server, the LINE
API emulator and a small stand-in for Rasa's API: asked once after the time (never
before), once across two gateways and across a restart, skipped when a person has the
conversation, stopped by the monthly push budget; the bot's payload never reaches LINE."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp import web

from gateway.core.cases import Case, RedisCaseStore
from gateway.core.rasa_client import RasaClient
from gateway.customer_input import PostbackSigner
from gateway.follow_ups import (
    FollowUps,
    RedisFollowUpStore,
    make_clock,
    month_of,
    without_follow_ups,
)
from gateway.line.api import LineApi
from tests.gateway.test_gateway_app import (  # noqa: F401  (fixtures)
    RASA_TOKEN,
    TOKEN,
    USER,
    FakeBot,
    emu,
    make_gateway,
    serving,
    wait_until,
)

OTHER = "U00000000000000000000000000000003"
QUESTION = "18:04ごろお届け予定だった別卵は届きましたか？"
DUE = 1_800_000_000.0  # the promised time (epoch seconds)
AFTER = 600.0


class FollowUpBot(FakeBot):
    """FakeBot plus Rasa's tracker events and trigger_intent: EXTERNAL_follow_up_due is
    answered with the question while the case's follow_up_case slot is set."""

    def __init__(self):
        super().__init__()
        self.appended = []  # (sender, events)
        self.triggered = []  # (sender, intent)
        self.slot = {}  # sender -> follow_up_case
        self.silent = set()  # cases the bot asks nothing about (answered already)
        self.in_form = set()  # senders in the middle of a form (a new claim)

    def rasa_app(self):
        app = super().rasa_app()

        @web.middleware
        async def tracker_state(request, handler):
            sender = request.match_info.get("sender")
            if request.method == "GET" and request.path.endswith("/tracker") and sender in self.in_form:
                return web.json_response({"sender_id": sender, "events": [], "active_loop": {"name": "claim_form"}})
            return await handler(request)

        app.middlewares.append(tracker_state)

        async def append(request):
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            sender, events = request.match_info["sender"], await request.json()
            self.appended.append((sender, events))
            for e in events:
                if e.get("name") == "follow_up_case":
                    self.slot[sender] = e["value"]
            return web.json_response({})

        async def trigger(request):
            if not self.up:
                return web.Response(status=502, text="down")
            if request.query.get("token") != RASA_TOKEN:
                return web.json_response({}, status=401)
            sender, name = request.match_info["sender"], (await request.json())["name"]
            self.triggered.append((sender, name))
            if name != "EXTERNAL_follow_up_due" or self.slot.get(sender) in self.silent:
                return web.json_response({"messages": []})
            buttons = [
                {"title": "はい、届きました", "payload": "/affirm"},
                {"title": "いいえ、まだです", "payload": "/deny"},
            ]
            return web.json_response({"messages": [{"recipient_id": sender, "text": QUESTION, "buttons": buttons}]})

        app.router.add_post("/conversations/{sender}/tracker/events", append)
        app.router.add_post("/conversations/{sender}/trigger_intent", trigger)
        return app


@pytest_asyncio.fixture
async def fake_bot():
    async for bot in serving(FollowUpBot()):
        yield bot


@pytest_asyncio.fixture
async def redis_clean(redis_url):
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await r.flushdb()
    yield redis_url
    await r.aclose()


class Gateways:
    """Follow-up schedulers as separate gateways would have them: each its own Redis
    connections, LINE and Rasa clients; the same redis-server."""

    def __init__(self, redis_url, emu, fake_bot):
        self.redis_url, self.emu, self.bot = redis_url, emu, fake_bot
        self.started = []
        self.signer = PostbackSigner(b"follow-up-test-signing-key-0123456789")

    def new(self, **kwargs) -> FollowUps:
        follow_ups = FollowUps(
            RedisFollowUpStore.from_url(self.redis_url),
            RasaClient(self.bot.rasa_url, RASA_TOKEN),
            LineApi(TOKEN, self.emu.base_url, self.emu.base_url),
            RedisCaseStore.from_url(self.redis_url),
            self.signer,
            after_s=AFTER,
            **kwargs,
        )
        self.started.append(follow_ups)
        return follow_ups

    async def close(self):
        for f in self.started:
            for closer in (f.store.close, f.rasa.close, f.line.close, f.cases.close):
                await closer()


@pytest_asyncio.fixture
async def gateways(redis_clean, emu, fake_bot):
    g = Gateways(redis_clean, emu, fake_bot)
    yield g
    await g.close()


def egg_answer(case_id: str, due: float = DUE):
    """The bot's confirmation of "別卵を今からお届け" with its follow-up payload."""
    return [
        {"recipient_id": USER, "text": "別卵を今から手配しました。18:04ごろお届けします。"},
        {"recipient_id": USER, "custom": {"follow_up": {"case_id": case_id, "due_at": due, "language": "ja"}}},
    ]


def pushes(emu, user=USER):
    return [r for r in emu.requests_to("/v2/bot/message/push") if (r.get("json") or {}).get("to") == user]


def accepted_pushes(emu, user=USER):
    return [r for r in pushes(emu, user) if r.get("status") == 200]


def new_case() -> str:
    return f"C-20261202-{uuid.uuid4().hex[:4].upper()}"


@pytest.mark.asyncio
async def test_the_follow_up_is_asked_once_after_the_promised_time_never_before(gateways, emu, fake_bot):
    gw = gateways.new()
    case = new_case()
    rest = await gw.schedule_from(egg_answer(case), USER)
    assert rest == egg_answer(case)[:1]  # the payload is taken out of what goes to LINE
    assert (await gw.store.scheduled())[case] == DUE + AFTER

    assert await gw.run_due(DUE + AFTER - 1) == {}  # the promised time passed, not the margin
    assert fake_bot.triggered == [] and pushes(emu) == []

    assert await gw.run_due(DUE + AFTER + 1) == {"asked": 1}
    # the slot names the case before the bot is run on the reserved intent
    assert fake_bot.appended == [(USER, [{"event": "slot", "name": "follow_up_case", "value": case}])]
    assert fake_bot.triggered == [(USER, "EXTERNAL_follow_up_due")]
    [push] = accepted_pushes(emu)
    [message] = push["json"]["messages"]
    assert message["text"] == QUESTION
    labels = [i["action"]["label"] for i in message["quickReply"]["items"]]
    assert labels == ["はい、届きました", "いいえ、まだです"]
    # the buttons are signed for this customer, as every postback the gateway sends
    assert all(gateways.signer.verify(i["action"]["data"], USER).payload for i in message["quickReply"]["items"])

    assert await gw.run_due(DUE + AFTER + 3600) == {}  # once
    assert len(pushes(emu)) == 1
    assert await gw.store.counts(month_of(DUE + AFTER + 1)) == {"pushed": 1, "skipped": 0}


@pytest.mark.asyncio
async def test_the_same_answer_delivered_again_schedules_nothing_more(gateways, emu):
    gw = gateways.new()
    case = new_case()
    await gw.schedule_from(egg_answer(case), USER)
    await gw.schedule_from(egg_answer(case, DUE + 999), USER)  # a retried turn: the first stays
    assert (await gw.store.scheduled())[case] == DUE + AFTER
    await gw.run_due(DUE + AFTER + 1)
    await gw.schedule_from(egg_answer(case), USER)  # even after it was asked
    assert case not in await gw.store.scheduled()
    assert await gw.run_due(DUE + AFTER + 3600) == {}
    assert len(pushes(emu)) == 1


@pytest.mark.asyncio
async def test_two_gateways_ask_once(gateways, emu, fake_bot):
    first, second = gateways.new(), gateways.new()
    cases = [new_case() for _ in range(6)]
    for case in cases:
        await first.schedule_from(egg_answer(case), USER)
    now = DUE + AFTER + 1
    results = await asyncio.gather(*(g.run_due(now) for g in (first, second, first, second)))
    assert sum(r.get("asked", 0) for r in results) == len(cases)
    assert len(fake_bot.triggered) == len(cases)
    assert len(pushes(emu)) == len(cases)  # each case's question pushed once, by one of them
    assert await first.store.scheduled() == {}


@pytest.mark.asyncio
async def test_a_follow_up_survives_a_gateway_restart(gateways, emu, fake_bot):
    case = new_case()
    before = gateways.new()
    await before.schedule_from(egg_answer(case), USER)
    await before.store.close()  # the gateway is gone; only Redis remembers
    after = gateways.new()
    assert await after.run_due(DUE + AFTER + 1) == {"asked": 1}
    assert len(accepted_pushes(emu)) == 1


@pytest.mark.asyncio
async def test_a_gateway_killed_after_pushing_loses_nothing_and_shows_nothing_twice(gateways, emu, fake_bot):
    case = new_case()
    crashed = gateways.new(claim_lease_s=60)
    await crashed.schedule_from(egg_answer(case), USER)

    async def killed(case_id):  # dies between LINE's 200 and marking the follow-up done
        raise ConnectionError("gateway killed")

    crashed.store.finish = killed
    now = DUE + AFTER + 1
    with pytest.raises(ConnectionError):
        await crashed.run_due(now)
    assert len(accepted_pushes(emu)) == 1

    survivor = gateways.new(claim_lease_s=60)
    assert await survivor.run_due(now + 30) == {}  # the dead gateway's claim still holds
    # the claim ran out: taken again, the bot run again, the push repeated with the same
    # X-Line-Retry-Key, which LINE refuses as already accepted (409): shown once
    assert await survivor.run_due(now + 61) == {"asked": 1}
    assert len(pushes(emu)) == 2 and len(accepted_pushes(emu)) == 1
    assert await survivor.run_due(now + 600) == {}


@pytest.mark.asyncio
async def test_nothing_is_pushed_while_a_person_has_the_conversation(gateways, emu, fake_bot):
    gw = gateways.new()
    case = new_case()
    await gw.schedule_from(egg_answer(case), USER)
    await gw.cases.open(Case(case_id=case, user_id=USER, context={"case_id": case}))  # waiting for an agent
    assert await gw.run_due(DUE + AFTER + 1) == {"person": 1}
    assert fake_bot.triggered == [] and pushes(emu) == []


@pytest.mark.asyncio
async def test_the_monthly_push_budget_stops_follow_ups_when_spent(gateways, emu, fake_bot):
    gw = gateways.new(budget=1)
    first, second = new_case(), new_case()
    await gw.schedule_from(egg_answer(first), USER)
    await gw.schedule_from(egg_answer(second, DUE + 60), OTHER)
    assert await gw.run_due(DUE + AFTER + 1) == {"asked": 1}
    assert await gw.run_due(DUE + AFTER + 61) == {"over_budget": 1}
    assert len(pushes(emu, USER)) == 1 and pushes(emu, OTHER) == []
    assert [s for s, _ in fake_bot.triggered] == [USER]  # the bot is not even asked
    assert await gw.store.counts(month_of(DUE)) == {"pushed": 1, "skipped": 1}
    assert await gw.store.scheduled() == {}  # skipped, not kept for later


@pytest.mark.asyncio
async def test_a_bot_with_nothing_to_ask_spends_no_push(gateways, emu, fake_bot):
    gw = gateways.new(budget=5)
    case = new_case()
    fake_bot.silent.add(case)  # answered already, or a person has the case in the bot's records
    await gw.schedule_from(egg_answer(case), USER)
    assert await gw.run_due(DUE + AFTER + 1) == {"nothing_asked": 1}
    assert pushes(emu) == []
    assert await gw.store.counts(month_of(DUE)) == {"pushed": 0, "skipped": 0}


@pytest.mark.asyncio
async def test_rasa_down_keeps_the_follow_up_for_after_the_lease(gateways, emu, fake_bot):
    gw = gateways.new(claim_lease_s=30)
    case = new_case()
    await gw.schedule_from(egg_answer(case), USER)
    fake_bot.up = False
    now = DUE + AFTER + 1
    assert await gw.run_due(now) == {"retry": 1}
    assert await gw.run_due(now + 10) == {}  # still claimed
    fake_bot.up = True
    assert await gw.run_due(now + 31) == {"asked": 1}
    assert len(accepted_pushes(emu)) == 1
    assert await gw.store.counts(month_of(now)) == {"pushed": 1, "skipped": 0}


def test_the_payload_alone_is_dropped_and_other_custom_payloads_kept():
    answer = [
        {"text": "ok"},
        {"custom": {"follow_up": {"case_id": "C-1", "due_at": 1}}},
        {"custom": {"follow_up": {"case_id": "C-1", "due_at": 1}, "order_card": {"order_id": "1"}}},
    ]
    assert without_follow_ups(answer) == [{"text": "ok"}, {"custom": {"order_card": {"order_id": "1"}}}]


def test_the_clock_offset_file_moves_time_only_against_the_emulator(tmp_path):
    offset = tmp_path / "offset"
    offset.write_text("3600")
    moved = make_clock(offset, "http://127.0.0.1:8091")
    assert 3590 < moved() - time.time() < 3610
    offset.write_text("7200")  # read on every call
    assert 7190 < moved() - time.time() < 7210
    real = make_clock(offset, "https://api.line.me")
    assert abs(real() - time.time()) < 5


@pytest.mark.asyncio
async def test_the_gateway_schedules_the_bots_follow_up_and_sends_only_the_confirmation(
    make_gateway, fake_bot, emu, redis_clean
):
    gw = await make_gateway(redis_url=redis_clean, follow_up_after_s=AFTER)
    case = new_case()
    fake_bot.answers["別卵を送ってください"] = [
        {k: v for k, v in m.items() if k != "recipient_id"} for m in egg_answer(case)
    ]
    await gw.client.send_text(USER, "別卵を送ってください")
    assert await wait_until(lambda: len(emu.requests_to("/v2/bot/message/reply")) == 1)
    [reply] = emu.requests_to("/v2/bot/message/reply")
    assert [m.get("text") for m in reply["json"]["messages"]] == ["別卵を今から手配しました。18:04ごろお届けします。"]
    store = RedisFollowUpStore.from_url(redis_clean)
    try:
        assert await store.scheduled() == {case: DUE + AFTER}
    finally:
        await store.close()
    assert gw.gateway.follow_ups.stats["scheduled"] == 1


def test_the_card_flags_a_broken_promise_in_one_line_under_the_summary():
    from gateway.slack.cards import case_card

    context = {
        "case_id": "C-20261202-7K3Q",
        "reason": "broken_promise",
        "summary": "broken_promise | missing_item #1001: 別卵 ¥80",
        "flags": ["broken_promise"],
        "promise": {"kind": "send_item", "amount": 0, "eta": "2026-12-02T09:04:00+00:00"},
        "timezone": "Asia/Tokyo",
    }
    blocks = case_card(Case(case_id="C-20261202-7K3Q", user_id=USER, context=context))["blocks"]
    texts = [b["text"]["text"] for b in blocks if b.get("type") == "section" and "text" in b]
    assert (
        texts[1]
        == ":warning: *Promised send the item by 12-02 18:04 JST — not arrived* / 約束の時刻を過ぎても届いていません"
    )
    # a case without the flag has no such line
    plain = case_card(Case(case_id="C-1", user_id=USER, context={**context, "flags": []}))["blocks"]
    assert not any("not arrived" in str(b) for b in plain)


@pytest.mark.asyncio
async def test_a_customer_in_the_middle_of_a_new_claim_is_asked_later(gateways, emu, fake_bot):
    gw = gateways.new(busy_retry_s=30)
    case = new_case()
    await gw.schedule_from(egg_answer(case), USER)
    fake_bot.in_form.add(USER)
    now = DUE + AFTER + 1
    assert await gw.run_due(now) == {"busy": 1}
    assert fake_bot.triggered == [] and pushes(emu) == []
    assert (await gw.store.scheduled())[case] == now + 300
    fake_bot.in_form.clear()
    assert await gw.run_due(now + 301) == {"asked": 1}
    assert len(accepted_pushes(emu)) == 1
