"""Operations alerts (gateway/slack/ops_alerts.py) through the real gateway app, the local
Slack Web API emulator and a real redis-server: the bot's `{"ops_alert": ...}` never reaches
the customer on LINE, is posted to the operations channel once (with the shop, the item,
the count and the cases), and survives Slack being down, even across a gateway restart."""

from __future__ import annotations

import pytest
import pytest_asyncio
import redis as redis_sync
from aiohttp.test_utils import TestServer

from contracts.ops_alerts import OPS_ALERT, OpsAlert, alert_id
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from devkit.emulators.slack_api import DEFAULT_CHANNELS, SlackApiEmulator
from gateway.app import create_app
from gateway.core.events import MemoryEventStore
from tests.gateway.test_gateway_app import SECRET, USER, emu, fake_bot, replies, settings_for, wait_until  # noqa: F401

SLACK_TOKEN = "xoxb-ops-alert-test"
HANDOFF, OPS = "C0HANDOFF1", "C0OPSALERT"
CASES = ["C-20261202-2AAA", "C-20261202-3BBB", "C-20261202-4CCC"]


def egg_alert() -> OpsAlert:
    start = "2026-12-02T01:00:00+00:00"
    return OpsAlert(
        alert_id=alert_id("same_item_at_shop", "とり政 渋谷店", "EXTRA-EGG", "missing_item", start),
        kind="same_item_at_shop",
        shop="とり政 渋谷店",
        count=3,
        threshold=3,
        window_hours=24,
        window_start=start,
        raised_at="2026-12-02T03:00:00+00:00",
        case_ids=list(CASES),
        problem="missing_item",
        sku="EXTRA-EGG",
        item_name_ja="別卵",
        item_name_en="Extra egg",
    )


@pytest_asyncio.fixture
async def slack():
    emulator = SlackApiEmulator(SLACK_TOKEN, channels={**DEFAULT_CHANNELS, OPS: ["U0OPS001"]})
    emulator.url = await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def clean_redis(redis_url):
    r = redis_sync.Redis.from_url(redis_url)
    for key in r.scan_iter("gw:*"):
        r.delete(key)
    r.close()
    return redis_url


@pytest_asyncio.fixture
async def start_gateway(emu, fake_bot, slack, clean_redis, tmp_path):  # noqa: F811
    started = []

    async def start(**overrides):
        values = {
            "redis_url": clean_redis,
            "slack_bot_token": SLACK_TOKEN,
            "slack_signing_secret": "ops-alert-signing-secret",
            "slack_api_base_url": slack.url,
            "slack_handoff_channel": HANDOFF,
            "slack_ops_channel": OPS,
            "case_announce_interval_s": 0.2,
            **overrides,
        }
        settings = settings_for(emu, fake_bot, tmp_path, **values)
        server = TestServer(create_app(settings, store=MemoryEventStore()))
        await server.start_server()
        client = LineWebhookClient(str(server.make_url("/line/webhook")), SECRET, token_source=emulator_tokens(emu))
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        await client.close()
        await server.close()


def posted_alerts(slack, channel=OPS):
    return [m for m in slack.messages(channel) if "Recurring problem" in (m.get("text") or "")]


def answer_with_alert(fake_bot, message: str) -> None:
    fake_bot.answers[message] = [
        {"text": "別卵を今からお届けします。"},
        {"custom": {OPS_ALERT: egg_alert().to_dict()}},
    ]


@pytest.mark.asyncio
async def test_the_alert_goes_to_the_ops_channel_once_and_never_to_the_customer(start_gateway, emu, fake_bot, slack):
    _, client = await start_gateway()
    answer_with_alert(fake_bot, "別卵が入っていませんでした")
    answer_with_alert(fake_bot, "また別卵がない")  # the same burst sent again (a retried turn)
    await client.send_text(USER, "別卵が入っていませんでした")
    assert await wait_until(lambda: len(replies(emu)) == 1 and posted_alerts(slack), timeout=10)
    await client.send_text(USER, "また別卵がない")
    assert await wait_until(lambda: len(replies(emu)) == 2, timeout=10)

    for reply in replies(emu):  # the customer reads the bot's text and nothing else
        messages = reply["json"]["messages"]
        assert [m["type"] for m in messages] == ["text"] and messages[0]["text"] == "別卵を今からお届けします。"
        assert "ops_alert" not in str(messages) and "C-20261202" not in str(messages)
    await wait_until(lambda: len(posted_alerts(slack)) > 1, timeout=1)
    [alert] = posted_alerts(slack)
    shown = alert["text"] + str(alert["blocks"])
    assert "とり政 渋谷店" in shown and "別卵" in shown and "3 orders within 24 h" in shown
    assert all(case in shown for case in CASES)
    assert posted_alerts(slack, HANDOFF) == []  # the ops channel, not the agents' queue


@pytest.mark.asyncio
async def test_without_an_ops_channel_the_alert_goes_to_the_handoff_channel(start_gateway, emu, fake_bot, slack):
    _, client = await start_gateway(slack_ops_channel=None)
    answer_with_alert(fake_bot, "別卵が入っていませんでした")
    await client.send_text(USER, "別卵が入っていませんでした")
    assert await wait_until(lambda: posted_alerts(slack, HANDOFF), timeout=10)


@pytest.mark.asyncio
async def test_slack_down_loses_no_alert_and_the_customer_is_answered_meanwhile(start_gateway, emu, fake_bot, slack):
    # every post fails for a while (slack_sdk retries a 5xx twice itself, the announcer
    # loop tries again every round): the customer's answer does not wait for Slack
    slack.fail_next("chat.postMessage", status=503, count=8)
    _, client = await start_gateway()
    answer_with_alert(fake_bot, "別卵が入っていませんでした")
    await client.send_text(USER, "別卵が入っていませんでした")
    assert await wait_until(lambda: len(replies(emu)) == 1, timeout=10)
    assert posted_alerts(slack) == []
    assert await wait_until(lambda: posted_alerts(slack), timeout=20)
    await wait_until(lambda: len(posted_alerts(slack)) > 1, timeout=1)
    assert len(posted_alerts(slack)) == 1


@pytest.mark.asyncio
async def test_an_alert_slack_refused_is_posted_by_the_next_gateway_after_a_restart(
    start_gateway, emu, fake_bot, slack
):
    slack.fail_next("chat.postMessage", status=500, count=1000)  # Slack down for good
    first, client = await start_gateway()
    answer_with_alert(fake_bot, "別卵が入っていませんでした")
    await client.send_text(USER, "別卵が入っていませんでした")
    assert await wait_until(lambda: len(replies(emu)) == 1, timeout=10)
    assert await wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 3, timeout=10)
    await first.close()  # the gateway goes away with the alert unposted
    slack.clear_failures()  # Slack is back
    await start_gateway()  # a new gateway on the same Redis
    assert await wait_until(lambda: posted_alerts(slack), timeout=10)
    assert len(posted_alerts(slack)) == 1


def test_the_case_card_shows_a_recurring_customer_with_the_earlier_cases_in_one_line():
    from gateway.core.cases import Case
    from gateway.slack.cards import case_card

    context = {
        "case_id": "C-20261202-5DDD",
        "reason": "recurring",
        "problem": "missing_item",
        "customer": {"display_name": "デモ 太郎", "customer_id": 1, "language": "ja"},
        "flags": ["recurring"],
        "earlier_cases": CASES[:2],
    }
    card = case_card(Case(case_id="C-20261202-5DDD", user_id=USER, context=context))
    lines = [b["text"]["text"] for b in card["blocks"] if b.get("type") == "section" and "text" in b]
    [line] = [t for t in lines if "Recurring" in t]
    assert "3rd problem of this customer" in line and all(c in line for c in CASES[:2])
    assert "Recurring problems: this customer again" in card["text"]  # the reason's label
