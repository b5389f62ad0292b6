"""Fuzzing POST /line/webhook with VALIDLY SIGNED malformed bodies (hypothesis).

The gateway runs in this process over real HTTP (aiohttp on its own thread and loop), with
its event journal in a real redis-server, the LINE API emulator and small stand-ins for
Rasa and the action server. Every body is signed with the channel secret, so the fuzzing
gets past the signature check and reaches the parser and the journal.

What must hold for every body:
- never a 5xx, and the gateway keeps serving (GET /healthz is 200 after each body);
- never a partial write: a malformed event is skipped (counted in the answer) and nothing
  of it reaches Redis; every recorded event is processed to `done` (nothing stuck
  pending, no record outside the pending index);
- a well-formed event in the same batch as malformed ones is still recorded and processed
  (its text reaches Rasa).

Run: .venv-devkit/bin/python -m pytest tests/gateway/test_fuzz_line_webhook.py -q
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import redis
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.emulators.line_api import LineApiEmulator
from gateway.app import create_app
from gateway.core.events import RedisEventStore
from gateway.customer_input import typed_text
from gateway.line.signature import HEADER, sign
from tests.gateway.test_gateway_app import SECRET, TOKEN, FakeBot, settings_for
from tests.support.line_stack import EmulatorThread

USERS = [f"U{i:032x}" for i in range(1, 4)]
# hypothesis budget: enough variety, and the file stays well under 2 minutes here
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


class InProcessGateway:
    """The gateway app, the LINE emulator and a fake Rasa/action server, each served over
    HTTP from a background thread; tests talk to them with blocking clients."""

    def __init__(self, redis_url: str, tmp_path: Path, cases: Any = None, **overrides: Any) -> None:
        self.prefix = f"fuzz:{uuid.uuid4().hex[:8]}:"
        self.line = LineApiEmulator(TOKEN)
        self.bot = FakeBot()
        self._threads = [EmulatorThread(self.line, self.line.app).start()]
        self.line.base_url = self._threads[0].url
        rasa = EmulatorThread(None, self.bot.rasa_app()).start()
        actions = EmulatorThread(None, self.bot.action_app()).start()
        self._threads += [rasa, actions]
        self.bot.rasa_url, self.bot.action_url = rasa.url, f"{actions.url}/webhook"
        self.settings = settings_for(self.line, self.bot, tmp_path, redis_url=redis_url, **overrides)
        # own key prefix: other gateway tests in the session share this redis-server
        store = RedisEventStore.from_url(redis_url, prefix=self.prefix)
        self.app = create_app(self.settings, store=store, cases=cases)
        gateway = EmulatorThread(None, self.app).start()
        self.loop = gateway.loop
        self._threads.append(gateway)
        self.url = gateway.url
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.http = requests.Session()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        """Runs a coroutine on the gateway's own loop (its Redis clients live there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.http.close()
        self.redis.close()
        for thread in reversed(self._threads):
            thread.stop()

    # --- HTTP --------------------------------------------------------------------------
    def post_line(self, body: bytes) -> requests.Response:
        return self.http.post(
            f"{self.url}/line/webhook",
            data=body,
            timeout=30,
            headers={"Content-Type": "application/json", HEADER: sign(body, SECRET)},
        )

    def healthz(self) -> int:
        return self.http.get(f"{self.url}/healthz", timeout=30).status_code

    # --- the journal in Redis ------------------------------------------------------------
    def record(self, event_id: str) -> Any:
        raw = self.redis.get(f"{self.prefix}event:{event_id}")
        return None if raw is None else json.loads(raw)

    def record_keys(self) -> List[str]:
        return list(self.redis.scan_iter(f"{self.prefix}event:*", count=1000))

    def pending_ids(self) -> List[str]:
        return self.redis.zrange(f"{self.prefix}pending", 0, -1)

    def wait_until_all_done(self, timeout: float = 15.0) -> None:
        """Every recorded event processed: the pending index empty and every record a done
        marker. A record left `pending` outside the index would never be processed."""
        deadline = time.monotonic() + timeout
        while True:
            not_done = [
                k
                for k in self.record_keys()
                if json.loads(self.redis.get(k) or '{"status": "done"}')["status"] != "done"
            ]
            pending = self.pending_ids()
            if not pending and not not_done:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"stuck events: {len(pending)} in the pending index, {len(not_done)} records not done"
                )
            time.sleep(0.02)


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory) -> Iterator[InProcessGateway]:
    gw = InProcessGateway(redis_url, tmp_path_factory.mktemp("fuzz-line"))
    yield gw
    gw.close()


# --- strategies ------------------------------------------------------------------------------

json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
any_json = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
not_a_string = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.lists(json_leaves, max_size=2)
    | st.dictionaries(st.text(max_size=5), json_leaves, max_size=2)
)
not_an_object = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.lists(json_leaves, max_size=3)
customer_text = st.text(min_size=1, max_size=300).filter(lambda s: s.strip()) | st.integers(10_000, 60_000).map(
    lambda n: "長" * n
)  # huge message texts


def text_event(text: str, user: str) -> Dict[str, Any]:
    """A well-formed LINE text message event (ids and time are filled in per example)."""
    return {
        "type": "message",
        "mode": "active",
        "timestamp": 0,
        "webhookEventId": "",
        "source": {"type": "user", "userId": user},
        "replyToken": uuid.uuid4().hex,
        "deliveryContext": {"isRedelivery": False},
        "message": {"type": "text", "id": str(uuid.uuid4().int)[:18], "quoteToken": "q", "text": text},
    }


@st.composite
def good_events(draw: st.DrawFn) -> Dict[str, Any]:
    """Events the gateway must record and process, odd but legitimate parts included."""
    event = text_event(draw(customer_text), draw(st.sampled_from(USERS)))
    extras = draw(
        st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in event), any_json, max_size=3)
    )
    event.update(extras)  # fields LINE may add in the future are ignored
    if draw(st.booleans()):
        event["message"].update(
            draw(st.dictionaries(st.sampled_from(["emojis", "mention", "quotedMessageId"]), any_json, max_size=2))
        )
    return event


BAD_MUTATIONS = {
    # what the gateway needs to order, dedupe and answer an event
    "no id": lambda e, v: e.pop("webhookEventId"),
    "id of the wrong type": lambda e, v: e.__setitem__("webhookEventId", v["not_str"]),
    "empty id": lambda e, v: e.__setitem__("webhookEventId", ""),
    "no type": lambda e, v: e.pop("type"),
    "type of the wrong type": lambda e, v: e.__setitem__("type", v["not_str"]),
    "timestamp not an integer": lambda e, v: e.__setitem__("timestamp", v["bad_ts"]),
    "no source": lambda e, v: e.pop("source"),
    "source not an object": lambda e, v: e.__setitem__("source", v["not_obj"]),
    "source without userId": lambda e, v: e["source"].pop("userId"),
    "userId of the wrong type": lambda e, v: e["source"].__setitem__("userId", v["not_str"]),
    "message not an object": lambda e, v: e.__setitem__("message", v["not_obj"]),
    "postback not an object": lambda e, v: e.update(type="postback", postback=v["not_obj"]),
    # JSON can carry lone surrogates ("\ud800"): not Unicode, cannot be stored as UTF-8
    "lone surrogate": lambda e, v: e["message"].__setitem__("text", "abc\ud800"),
}


@st.composite
def bad_events(draw: st.DrawFn) -> Tuple[str, Dict[str, Any]]:
    """(what is wrong, an event the gateway must skip without storing anything)."""
    event = text_event(draw(customer_text), draw(st.sampled_from(USERS)))
    event["webhookEventId"] = "bad"  # made unique per example by the test
    kind = draw(st.sampled_from(sorted(BAD_MUTATIONS)))
    values = {
        "not_str": draw(not_a_string.filter(lambda v: v not in (None, ""))),
        "not_obj": draw(not_an_object.filter(lambda v: v not in (None, "", [], 0, False))),
        "bad_ts": draw(
            st.one_of(
                st.text(max_size=5),
                st.floats(),
                st.booleans(),
                st.none(),
                st.integers(max_value=0),
                st.just(10**400),
                st.integers(min_value=2**63),
            )
        ),
    }
    BAD_MUTATIONS[kind](event, values)
    return kind, event


@st.composite
def webhook_batches(draw: st.DrawFn) -> Dict[str, Any]:
    goods = draw(st.lists(good_events(), max_size=2))
    bads = draw(st.lists(bad_events(), min_size=1, max_size=3))
    randoms = draw(st.lists(any_json, max_size=2))
    order = draw(st.permutations(range(len(goods) + len(bads) + len(randoms))))
    return {
        "goods": goods,
        "bads": bads,
        "randoms": randoms,
        "order": order,
        "destination": draw(st.one_of(st.just("U" + "f" * 32), any_json)),
    }


def deep(n: int, opener: str, closer: str) -> bytes:
    return (opener * n + closer * n).encode()


raw_bodies = st.one_of(
    st.binary(max_size=2000),
    st.binary(max_size=200).map(lambda b: b'{"events": [' + b + b"]}"),
    # invalid UTF-8 inside otherwise valid JSON
    st.binary(min_size=1, max_size=20).map(lambda b: b'{"events": [], "x": "\xff\xfe' + b + b'"}'),
    any_json.map(lambda v: json.dumps(v).encode()),
    any_json.map(lambda v: json.dumps({"events": v}).encode()),
    # deep nesting, at the top and inside an event
    st.integers(10, 200_000).map(lambda n: deep(n, "[", "]")),
    st.integers(10, 100_000).map(lambda n: b'{"events": [' + deep(n, '{"a":', "}")[:-n] + b"1" + b"}" * n + b"]}"),
)


# --- the properties ---------------------------------------------------------------------------


@FUZZ
@given(body=raw_bodies)
def test_any_signed_body_gets_an_answer_below_500_and_stores_only_whole_events(stack, body):
    keys_before = len(stack.record_keys())
    response = stack.post_line(body)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert len(stack.record_keys()) == keys_before  # refused: nothing stored
    stack.wait_until_all_done()
    assert stack.healthz() == 200


@FUZZ
@given(batch=webhook_batches())
def test_malformed_events_are_skipped_and_the_good_ones_in_the_batch_processed(stack, batch):
    now_ms = int(time.time() * 1000)
    for event in batch["goods"]:
        event["webhookEventId"], event["timestamp"] = f"good-{uuid.uuid4().hex}", now_ms
    bad_ids = []
    for kind, event in batch["bads"]:
        if kind != "timestamp not an integer":
            event["timestamp"] = now_ms
        if isinstance(event.get("webhookEventId"), str) and event["webhookEventId"]:
            event["webhookEventId"] = f"bad-{uuid.uuid4().hex}"
            bad_ids.append(event["webhookEventId"])
    pool = batch["goods"] + [e for _, e in batch["bads"]] + batch["randoms"]
    events = [pool[i] for i in batch["order"]]
    # ASCII JSON: a lone surrogate travels as its "\\ud800" escape, as a forged body would
    body = json.dumps({"destination": batch["destination"], "events": events}).encode()
    keys_before = len(stack.record_keys())
    got_before = len(stack.bot.got)

    response = stack.post_line(body)

    assert response.status_code == 200, response.text
    counts = response.json()
    assert (counts["accepted"] + counts["duplicates"] + counts["skipped"] + counts["ignored"]) == len(events)
    assert counts["skipped"] >= len(batch["bads"]), [k for k, _ in batch["bads"]]
    assert counts["accepted"] >= len(batch["goods"])
    # exactly the accepted events were written, whole; nothing of the skipped ones
    assert len(stack.record_keys()) - keys_before == counts["accepted"]
    for event_id in bad_ids:
        assert stack.record(event_id) is None
    stack.wait_until_all_done()
    for event in batch["goods"]:
        assert stack.record(event["webhookEventId"])["status"] == "done"
    # each good text reached Rasa exactly once, whatever was around it in the batch (as
    # plain text: a leading slash is dropped, and nothing is left of a slashes-only text)
    sent = [message for _, message, _ in stack.bot.got[got_before:]]
    for event in batch["goods"]:
        text = typed_text(event["message"]["text"])
        assert not text.strip() or sent.count(text) >= 1
    assert not any(m.strip().startswith("/") for m in sent)
    assert stack.healthz() == 200


def test_a_redelivered_event_with_a_garbled_delivery_context_is_a_duplicate_not_a_500(stack):
    event = text_event("こんにちは", USERS[0])
    event.update(webhookEventId=f"redelivered-{uuid.uuid4().hex}", timestamp=int(time.time() * 1000))
    assert stack.post_line(json.dumps({"events": [event]}).encode()).status_code == 200
    event["deliveryContext"] = "isRedelivery"
    response = stack.post_line(json.dumps({"events": [event]}).encode())
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 1, "skipped": 0, "ignored": 0}


def test_the_refusals_are_logged_without_the_body(stack, caplog):
    secret_text = "秘密の注文メモ 090-1234-5678"
    caplog.set_level(logging.INFO)
    event = text_event(secret_text, USERS[1])
    event.update(webhookEventId=f"x-{uuid.uuid4().hex}", timestamp="yesterday")
    response = stack.post_line(json.dumps({"events": [event]}, ensure_ascii=False).encode())
    assert response.json()["skipped"] == 1
    assert "skipping a malformed LINE event" in caplog.text
    assert secret_text not in caplog.text
