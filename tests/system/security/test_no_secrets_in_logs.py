"""No secret, customer text, name or phone number in the logs or in Sentry events.

A real conversation (LINE emulator -> gateway process -> Rasa -> action server, a handoff
to the Slack emulator) runs with SENTRY_DSN pointing at a local fake ingestion endpoint,
and error paths are forced: LINE's reply and push answering 500, a photo LINE cannot
give, Slack failing the handoff post, and an unexpected error while relaying to a case.
Then the gateway log, the Rasa log, the action server log and every recorded Sentry
envelope are read and searched for the customer's words, display name, phone number and
LINE user id, and for every secret (LINE channel secret and token, Slack bot token and
signing secret, Rasa token).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import redis

from bot.store.seed import DEMO_CUSTOMERS, DEMO_LINE_USER_ID
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from tests.support.line_stack import (
    ACCESS_TOKEN,
    SECRET,
    SLACK_SECRET,
    SLACK_TOKEN,
    GatewayProcess,
    reply_for,
    wait_for,
)
from tests.support.rasa_stack import reset_orders
from tests.support.recorder import RequestRecorder

DEMO = next(c for c in DEMO_CUSTOMERS if c.line_user_id == DEMO_LINE_USER_ID)
PHONE = DEMO.phone  # 090-0000-0001
# What the customer types: their problem, a phone number, and their own name.
MESSAGES = [
    f"親子丼に別卵が付いていませんでした。連絡先は{PHONE}です",
    f"{DEMO.display_name}です。至急折り返しをお願いします {PHONE.replace('-', '')}",
    "担当者と話したいです、もう三回目の問い合わせです",
]


@pytest.fixture
def sentry_gateway(
    gateway: GatewayProcess, log_dir: Path, line_emulator, slack_emulator, redis_url: str
) -> Iterator[tuple]:
    """The gateway process (same port, same Redis, Rasa, emulators) restarted with
    SENTRY_DSN pointing at a local recorder; the usual gateway comes back afterwards."""
    with RequestRecorder(status=200) as sentry:
        gateway.stop()
        port = int(gateway.url.rsplit(":", 1)[1])
        env = {
            **gateway.env,
            "SENTRY_DSN": f"http://{'5e' * 16}@127.0.0.1:{sentry.port}/1",
            "SENTRY_ENVIRONMENT": "security-test",
        }
        process = GatewayProcess(env, port, log_dir / "gateway-sentry.log")
        try:
            process.start()
            yield process, sentry
        finally:
            process.stop()
            # The test leaves LINE and Slack failing and answers pending. Clear the failures
            # and let the usual gateway answer what is pending before the next test:
            # otherwise it sends this customer's messages to Rasa in the middle of a later
            # test's conversation with the same customer.
            line_emulator.emu.clear_failures()
            slack_emulator.emu.clear_failures()
            gateway.start()
            wait_until_nothing_pending(redis_url)


def wait_until_nothing_pending(redis_url: str, timeout: float = 120.0) -> None:
    """Until the gateway's journal of LINE events still to answer is empty."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while r.zcard("gw:line:pending"):
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway still had events pending after {timeout:.0f}s")
            time.sleep(0.2)
    finally:
        r.close()


def secrets_and_customer_data(rasa_token: str) -> Dict[str, str]:
    return {
        "customer text": "別卵が付いていません",
        "customer text 2": "至急折り返し",
        "customer text 3": "三回目の問い合わせ",
        "display name": DEMO.display_name,
        "phone": PHONE,
        "phone digits": PHONE.replace("-", ""),
        "LINE channel secret": SECRET,
        "LINE access token": ACCESS_TOKEN,
        "Slack bot token": SLACK_TOKEN,
        "Slack signing secret": SLACK_SECRET,
        "Rasa token": rasa_token,
    }


def leaks_in(where: str, text: str, needles: Dict[str, str]) -> List[str]:
    return [f"{what} in {where}" for what, needle in needles.items() if needle in text]


@pytest.mark.asyncio
async def test_a_conversation_with_errors_leaves_no_customer_data_or_secret_in_logs_or_sentry(
    sentry_gateway, line_emulator, slack_emulator, rasa, action_server, orders_url
):
    gateway, sentry = sentry_gateway
    emu, slack = line_emulator.emu, slack_emulator.emu
    reset_orders(orders_url)
    rasa.restart_conversation(DEMO_LINE_USER_ID)
    client = LineWebhookClient(gateway.webhook_url, SECRET, token_source=emulator_tokens(emu))
    try:
        # 1. an ordinary turn: the problem, with a phone number
        event, res = await client.send_text(DEMO_LINE_USER_ID, MESSAGES[0])
        assert res.status == 200
        await wait_for(lambda: reply_for(emu, event["replyToken"]), 90, what="the first answer")
        # 2. LINE answers 500 to the reply and to the push fallback
        emu.fail_next("/v2/bot/message/reply", 500, times=20)
        emu.fail_next("/v2/bot/message/push", 500, times=20)
        await client.send_text(DEMO_LINE_USER_ID, MESSAGES[1])
        # 3. a photo LINE cannot give (content 404)
        await client.post([await client.image_event(DEMO_LINE_USER_ID, "999000999000")])
        await wait_for(lambda: sentry.requests, 60, what="a Sentry report of the LINE errors")
        # 4. a person asked for, while Slack fails the post: the case stays in Redis
        slack.fail_next("chat.postMessage", status=500, count=50)
        event, _ = await client.send_text(DEMO_LINE_USER_ID, MESSAGES[2])
        # 5. an unexpected error while relaying to the open case (sticker keywords garbled)
        await asyncio.sleep(3)
        sticker = await client.sticker_event(DEMO_LINE_USER_ID)
        sticker["message"]["keywords"] = 12345
        await client.post([sticker])
        await asyncio.sleep(5)  # reports leave the gateway in the SDK's background thread
    finally:
        await client.close()

    envelopes = [r for r in sentry.requests if "envelope" in r.path or "store" in r.path]
    assert envelopes, "no Sentry envelope arrived: the error paths were not reported"
    needles = secrets_and_customer_data(rasa.token)
    gateway_needles = {**needles, "LINE user id": DEMO_LINE_USER_ID}
    logs = {
        "gateway log": Path(gateway.log).read_text(errors="replace"),
        "Rasa log": Path(rasa.log).read_text(errors="replace"),
        "action server log": Path(action_server.log).read_text(errors="replace"),
    }
    leaks = []
    for where, text in logs.items():
        leaks += leaks_in(where, text, gateway_needles if where == "gateway log" else needles)
    for n, envelope in enumerate(envelopes):
        leaks += leaks_in(f"Sentry envelope {n}", envelope.body + str(envelope.headers), gateway_needles)
    assert leaks == [], leaks
    # what was reported is useful: the failures are named
    reported = "\n".join(e.body for e in envelopes)
    assert "LINE" in reported
