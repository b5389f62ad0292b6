"""Sentry reports leave the gateway scrubbed: a real sentry-sdk (in a subprocess, so its
global integrations don't touch other tests) posts envelopes to a tiny local endpoint."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

from gateway import observability as obs

ROOT = Path(__file__).resolve().parents[2]
USER = "U0123456789abcdef0123456789abcdef"
TEXT = "親子丼に別卵が付いていませんでした"
NAME = "デモ 太郎"
PHONE = "090-1234-5678"
REPLY_TOKEN = "b60d432864f44d079f6d8efe86cf404b"
RASA_TOKEN = "s3cretRasaToken"


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if enc == "gzip":
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            raw = zlib.decompress(raw)
        elif enc == "br":
            import brotli  # type: ignore

            raw = brotli.decompress(raw)
        self.received.append((self.path, raw.decode("utf-8", "replace")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry_endpoint():
    _Recorder.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://public@127.0.0.1:{server.server_address[1]}/1", _Recorder.received
    server.shutdown()


SCRIPT = f"""
import logging, sys
from gateway import observability as o
assert o.init_sentry(sys.argv[1])
import sentry_sdk
user, text, name, phone = {USER!r}, {TEXT!r}, {NAME!r}, {PHONE!r}
sentry_sdk.add_breadcrumb(message="got " + text + " from " + user,
                          data={{"text": text, "userId": user, "replyToken": {REPLY_TOKEN!r}}})
sentry_sdk.set_extra("event", {{"replyToken": {REPLY_TOKEN!r}, "message": {{"text": text}},
                               "note": "call " + phone}})
logging.getLogger("gateway.test").warning(
    "rasa at http://127.0.0.1:5005/webhooks/rest/webhook?token={RASA_TOKEN} slow")
with o.customer_data(text, user, name):
    try:
        raise ValueError("could not handle %r from %s (%s), tel %s" % (text, user, name, phone))
    except ValueError as e:
        o.capture_exception(e)
# outside any customer context: ids, phones, tokens still go by pattern
try:
    raise RuntimeError("user " + user + " phone " + phone + " token " + {REPLY_TOKEN!r}
                       + " url http://x/webhook?token={RASA_TOKEN}")
except RuntimeError as e:
    o.capture_exception(e)
sentry_sdk.flush(10)
print("sent")
"""


def test_errors_reach_sentry_scrubbed(sentry_endpoint):
    dsn, received = sentry_endpoint
    proc = subprocess.run([sys.executable, "-c", SCRIPT, dsn], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    envelopes = [body for path, body in received if path.startswith("/api/1/envelope")]
    events = [e for e in envelopes if '"exception"' in e]
    assert len(events) == 2, [p for p, _ in received]
    everything = "\n".join(envelopes)
    for secret in (TEXT, USER, NAME, PHONE, REPLY_TOKEN, RASA_TOKEN, "090-1234"):
        assert secret not in everything, secret
    assert "ValueError" in everything and "RuntimeError" in everything
    assert "could not handle" in everything  # the message stays useful
    assert obs.FILTERED in everything and "[LINE id]" in everything
    # the SDK's own ids survive scrubbing (else Sentry would drop the event)
    header = json.loads(events[0].splitlines()[0])
    assert len(header["event_id"]) == 32


def test_scrub_by_value_pattern_and_key():
    with obs.customer_data(TEXT, NAME):
        event = {
            "event_id": "a" * 32,
            "message": f"{NAME} said {TEXT}",
            "exception": {
                "values": [
                    {
                        "type": "ValueError",
                        "value": f"{USER} {PHONE} +81 90-1234-5678",
                        "stacktrace": {"frames": [{"function": "f", "vars": {"text": TEXT}}]},
                    }
                ]
            },
            "extra": {"payload": {"displayName": "x", "replyToken": "y", "ok": 3}},
            "request": {
                "url": "http://gw/line/webhook?token=abc",
                "data": TEXT,
                "headers": {"X-Line-Signature": "sig", "Content-Type": "json"},
            },
            "user": {"id": USER},
            "contexts": {"trace": {"trace_id": "b" * 32}},
        }
        out = obs.before_send(event, {})
    dumped = json.dumps(out, ensure_ascii=False)
    for secret in (TEXT, NAME, USER, PHONE, "90-1234-5678", "sig", "token=abc"):
        assert secret not in dumped, secret
    assert out["event_id"] == "a" * 32
    assert out["contexts"]["trace"]["trace_id"] == "b" * 32
    assert out["extra"]["payload"]["ok"] == 3
    assert "vars" not in out["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert "user" not in out and "data" not in out["request"]


def test_no_dsn_no_sentry():
    assert obs.init_sentry(None) is False
    assert obs.init_sentry("") is False
