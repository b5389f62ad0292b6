"""Fuzzing POST /slack/events with VALIDLY SIGNED malformed bodies (hypothesis): Events
API JSON and interactivity forms (`payload=<JSON>`), as Slack signs them (v0, timestamp).

The gateway runs in this process over real HTTP with the Slack and LINE API emulators and
a real redis-server holding an announced handoff case. None of the fuzzed requests comes
from a member of the handoff channel, so none may change anything.

What must hold for every body:
- never a 5xx, and the gateway keeps serving (GET /healthz 200 after each body);
- no listener crashes (no ERROR log from bolt or the gateway while handling it);
- the case in Redis stays whole and unchanged (still open, no agent, nothing relayed) and
  nothing is posted to the case's Slack thread.
Stale and forged signatures are covered in test_slack_desk.py (button presses); here the
same for Events API messages: refused, nothing done.

Run: .venv-devkit/bin/python -m pytest tests/gateway/test_fuzz_slack.py -q
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlencode

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.emulators.slack_api import OUTSIDER, SlackApiEmulator
from devkit.emulators.slack_client import sign as slack_sign
from gateway.app import GATEWAY
from gateway.core.cases import Case, RedisCaseStore
from tests.gateway.test_fuzz_line_webhook import InProcessGateway, any_json, not_a_string
from tests.gateway.test_slack_desk import CHANNEL, SIGNING, TOKEN, sample_case
from tests.support.line_stack import EmulatorThread

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
# listeners run after the ack; this is how long a fuzzed request gets to do (or break) things
AFTER_ACK_S = 0.15


class ErrorLog(logging.Handler):
    """ERROR records of any logger (bolt's "Failed to run listener", aiohttp's "Error
    handling request", the gateway's own)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class SlackGateway(InProcessGateway):
    """The in-process gateway with its Slack side on: the Slack emulator, a case store in
    Redis under its own prefix, and one announced case to aim at."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        self.slack = SlackApiEmulator(TOKEN)
        slack_thread = EmulatorThread(self.slack, self.slack.app()).start()
        self.case_prefix = f"fuzz-case:{uuid.uuid4().hex[:8]}:"
        cases = RedisCaseStore(aioredis.Redis.from_url(redis_url, decode_responses=True), prefix=self.case_prefix)
        super().__init__(
            redis_url,
            tmp_path,
            cases=cases,
            slack_bot_token=TOKEN,
            slack_signing_secret=SIGNING,
            slack_api_base_url=f"{slack_thread.url}/api/",
            slack_handoff_channel=CHANNEL,
            case_announce_interval_s=0.2,
        )
        self._threads.append(slack_thread)
        self.slack_url = slack_thread.url
        self.cases = cases
        self.case = self.open_case("U1")

    def open_case(self, customer: str) -> Case:
        """A case of `customer` opened and posted to the handoff channel, as after a handoff."""

        async def open_and_announce() -> Case:
            case, _ = await self.cases.open(sample_case(case_id=f"K-{uuid.uuid4().hex[:6]}", user_id=customer))
            return await self.app[GATEWAY].handoff.announce(case)

        return self.run(open_and_announce())

    def post_slack(self, body: bytes, content_type: str, timestamp: Optional[int] = None, secret: str = SIGNING) -> Any:
        ts = int(time.time()) if timestamp is None else timestamp
        return self.http.post(
            f"{self.url}/slack/events",
            data=body,
            timeout=30,
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": slack_sign(body, secret, ts),
            },
        )

    def stored_case(self, case: Optional[Case] = None) -> Dict[str, Any]:
        case_id = (case or self.case).case_id
        return json.loads(self.redis.get(f"{self.case_prefix}case:{case_id}"))

    def thread_messages(self, case: Optional[Case] = None) -> int:
        return len(self.slack.thread(CHANNEL, (case or self.case).thread_ts))

    def pushes_to(self, customer: str) -> List[str]:
        return [m["message"].get("text", "") for m in self.line.messages_for(customer)]


@pytest.fixture(scope="module")
def slack_stack(redis_url: str, tmp_path_factory) -> Iterator[SlackGateway]:
    gw = SlackGateway(redis_url, tmp_path_factory.mktemp("fuzz-slack"))
    assert gw.case.thread_ts, "the case was not posted to the Slack emulator"
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    gw.errors = errors
    yield gw
    logging.getLogger().removeHandler(errors)
    gw.close()


# --- strategies ------------------------------------------------------------------------------


def case_ids(gw_case_id: str) -> st.SearchStrategy:
    return st.sampled_from([gw_case_id, f"{gw_case_id}|refund_item", "K7", ""]) | any_json


strangers = st.sampled_from([OUTSIDER, "U0NOBODY01", ""]) | not_a_string
huge_text = st.integers(10_000, 45_000).map(lambda n: "字" * n)


@st.composite
def message_events(draw: st.DrawFn, thread_ts: str) -> Dict[str, Any]:
    """Message events shaped like an agent's thread reply, with any part wrong."""
    event: Dict[str, Any] = {
        "type": "message",
        "channel": draw(st.sampled_from([CHANNEL, "C0OTHER001"]) | any_json),
        "user": draw(strangers),
        "text": draw(st.text(max_size=50) | huge_text | any_json),
        "ts": draw(st.sampled_from([f"{time.time():.6f}", thread_ts]) | any_json),
        "thread_ts": draw(st.sampled_from([thread_ts, "1.000001"]) | any_json),
    }
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        event.pop(key, None)
    event.update(
        draw(
            st.dictionaries(
                st.sampled_from(["subtype", "bot_id", "files", "blocks", "edited", "hidden"]), any_json, max_size=2
            )
        )
    )
    return event


@st.composite
def events_api_bodies(draw: st.DrawFn, thread_ts: str) -> bytes:
    envelope: Dict[str, Any] = {
        "token": "emulated-verification-token",
        "team_id": "T0000000001",
        "api_app_id": "A0000000001",
        "type": draw(st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]) | any_json),
        "event_id": draw(st.just(f"Ev{uuid.uuid4().hex[:10]}") | any_json),
        "event_time": draw(st.integers() | any_json),
        "event": draw(message_events(thread_ts) | any_json),
        "challenge": draw(any_json),
    }
    for key in draw(st.lists(st.sampled_from(sorted(envelope)), max_size=3)):
        envelope.pop(key, None)
    return json.dumps(envelope).encode()


@st.composite
def block_actions(draw: st.DrawFn, case_id: str, thread_ts: str) -> Dict[str, Any]:
    action = {
        "action_id": draw(st.sampled_from(["case_claim", "case_resolve", "case_approve_0", "case_approve"]) | any_json),
        "block_id": "case_actions",
        "value": draw(case_ids(case_id)),
        "type": "button",
    }
    for key in draw(st.lists(st.sampled_from(sorted(action)), max_size=2)):
        action.pop(key, None)
    payload: Dict[str, Any] = {
        "type": draw(st.just("block_actions") | any_json),
        "user": draw(st.fixed_dictionaries({"id": strangers}) | any_json),
        "api_app_id": "A0000000001",
        "team": {"id": "T0000000001"},
        "channel": draw(st.just({"id": CHANNEL}) | any_json),
        "container": {"type": "message", "message_ts": thread_ts, "channel_id": CHANNEL},
        "message": draw(st.just({"ts": thread_ts, "text": ""}) | any_json),
        "actions": draw(st.lists(st.just(action) | any_json, max_size=2) | any_json),
        "response_url": draw(st.sampled_from(["", "not a url", "http://127.0.0.1:9/closed"]) | any_json),
        "trigger_id": "1.2.3",
    }
    for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=3)):
        payload.pop(key, None)
    return payload


@st.composite
def form_bodies(draw: st.DrawFn, case_id: str, thread_ts: str) -> bytes:
    kind = draw(st.sampled_from(["block_actions", "json", "text", "raw", "fields"]))
    if kind == "block_actions":
        return urlencode({"payload": json.dumps(draw(block_actions(case_id, thread_ts)))}).encode()
    if kind == "json":
        return urlencode({"payload": json.dumps(draw(any_json))}).encode()
    if kind == "text":  # payload= that is not JSON, percent-escapes of invalid UTF-8 included
        return (
            b"payload="
            + draw(st.text(max_size=40)).encode()
            + draw(st.sampled_from([b"", b"%FF%FE", b"%", b"%zz", b"&payload=2"]))
        )
    if kind == "raw":
        return draw(st.binary(max_size=300))
    return urlencode(draw(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4))).encode()


# --- the properties ---------------------------------------------------------------------------


def assert_nothing_happened(gw: SlackGateway, errors_before: int, thread_before: int, response: Any) -> None:
    assert response.status_code < 500, response.text
    time.sleep(AFTER_ACK_S)
    crashes = [f"{r.name}: {r.getMessage()}" for r in gw.errors.records[errors_before:]]
    assert crashes == []
    case = gw.stored_case()  # still whole JSON, and untouched
    assert (case["status"], case["agent_id"], case["relayed"]) == ("open", None, {"to_agent": 0, "to_customer": 0})
    assert gw.thread_messages() == thread_before
    assert gw.healthz() == 200


@FUZZ
@given(data=st.data())
def test_signed_malformed_events_api_bodies_change_nothing(slack_stack, data):
    gw = slack_stack
    body = data.draw(
        events_api_bodies(gw.case.thread_ts) | st.binary(max_size=300) | any_json.map(lambda v: json.dumps(v).encode())
    )
    errors_before, thread_before = len(gw.errors.records), gw.thread_messages()
    response = gw.post_slack(body, "application/json")
    assert_nothing_happened(gw, errors_before, thread_before, response)


@FUZZ
@given(data=st.data())
def test_signed_malformed_interactivity_forms_change_nothing(slack_stack, data):
    gw = slack_stack
    body = data.draw(form_bodies(gw.case.case_id, gw.case.thread_ts))
    errors_before, thread_before = len(gw.errors.records), gw.thread_messages()
    response = gw.post_slack(body, "application/x-www-form-urlencoded")
    assert_nothing_happened(gw, errors_before, thread_before, response)


# --- stale and forged signatures on the Events API (buttons: test_slack_desk.py) -------------


def agent_reply_body(case: Case, text: str) -> bytes:
    """A well-formed thread reply by a channel member: signed now, it reaches the customer."""
    event = {
        "type": "message",
        "channel": CHANNEL,
        "user": "U0AGENT001",
        "text": text,
        "ts": f"{time.time():.6f}",
        "thread_ts": case.thread_ts,
        "event_ts": "1",
    }
    return json.dumps(
        {
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "team_id": "T0000000001",
            "api_app_id": "A0000000001",
            "event": event,
        }
    ).encode()


def wait_for(cond: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


@pytest.mark.parametrize("age_s", [301, 3600, -301])
def test_an_agent_reply_signed_too_long_ago_or_ahead_is_refused_then_relayed_when_fresh(slack_stack, age_s):
    gw = slack_stack
    customer = f"U{uuid.uuid4().hex}"
    case = gw.open_case(customer)
    body = agent_reply_body(case, "返金しました")
    response = gw.post_slack(body, "application/json", timestamp=int(time.time()) - age_s)
    assert response.status_code == 401
    time.sleep(AFTER_ACK_S)
    assert gw.stored_case(case)["status"] == "open"
    assert gw.pushes_to(customer) == []  # the customer got nothing
    # the very same request signed now is an agent's reply: so the refusal was the age
    assert gw.post_slack(body, "application/json").status_code == 200
    assert wait_for(lambda: gw.pushes_to(customer) == ["返金しました"])
    assert gw.stored_case(case)["status"] == "claimed"


def test_a_replayed_signature_over_a_changed_body_is_refused(slack_stack):
    """Replay: a captured signature and timestamp reused on another body."""
    gw = slack_stack
    customer = f"U{uuid.uuid4().hex}"
    case = gw.open_case(customer)
    ts = int(time.time())
    signature = slack_sign(agent_reply_body(case, "こんにちは"), SIGNING, ts)
    forged = agent_reply_body(case, "全額返金します")
    response = gw.http.post(
        f"{gw.url}/slack/events",
        data=forged,
        timeout=30,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature,
        },
    )
    assert response.status_code == 401
    time.sleep(AFTER_ACK_S)
    assert gw.stored_case(case)["status"] == "open"
    assert gw.pushes_to(customer) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": str(10**30), "X-Slack-Signature": "v0=00"},
        # non-ASCII (sent as raw UTF-8 bytes): int("１２３") parses, compare_digest would raise
        {"X-Slack-Request-Timestamp": "１２３".encode(), "X-Slack-Signature": "v0=ｆｆ".encode()},
    ],
)
def test_unsigned_or_garbled_signature_headers_get_401_not_500(slack_stack, headers):
    gw = slack_stack
    customer = f"U{uuid.uuid4().hex}"
    case = gw.open_case(customer)
    response = gw.http.post(
        f"{gw.url}/slack/events",
        data=agent_reply_body(case, "x"),
        timeout=30,
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status_code == 401
    time.sleep(AFTER_ACK_S)
    assert gw.stored_case(case)["status"] == "open"
