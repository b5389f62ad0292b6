"""Only Rasa reaches the action server, over the real processes: the action server as
`make serve` and the images start it (`python -m bot.server.actions`, devkit/stack.py),
its SQLite orders database, and Rasa sending the shared secret from endpoints.yml.

- A hand-made action call (a real tracker with its slots rewritten to hand a case over)
  posted to /webhook without the secret, with a wrong one or in the wrong place (query
  parameter, another scheme) gets 401, and the orders database is byte-for-byte what it
  was. The refusal is logged without the presented value.
- With the secret the same call runs (the door is the secret, not something else), and
  GET /health stays open for the health checks.
- Rasa's own calls pass: a conversation through Rasa runs its custom actions.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, List, Optional, Tuple

import pytest

from devkit import stack
from tests.support.line_stack import DEMO_CUSTOMER
from tests.support.rasa_stack import reset_orders

WRONG = "wrong-secret-" + uuid.uuid4().hex


def call(
    url: str, method: str = "GET", body: Optional[Any] = None, headers: Optional[Dict[str, str]] = None
) -> Tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def database_rows(orders_url: str) -> Dict[str, List[tuple]]:
    """Every row of every table of the SQLite orders database (what a forged call could write)."""
    path = orders_url.split(":///", 1)[1]
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, db.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        db.close()


@pytest.fixture(scope="module")
def forged_call(rasa, orders_url) -> Dict[str, Any]:
    """What an attacker on the network would post: a real tracker of the demo customer,
    its slots rewritten so the action hands a case over and records it."""
    reset_orders(orders_url)  # the demo orders, and the database file, exist
    sender = DEMO_CUSTOMER
    rasa.restart_conversation(sender)
    tracker = rasa.tracker(sender)
    tracker["slots"].update({"handoff_reason": "request_human", "order_id": "1001", "problem": "report_missing_item"})
    return {
        "next_action": "action_handoff",
        "sender_id": sender,
        "tracker": tracker,
        "domain": stack.get_json(rasa.api("/domain")),
        "version": "3.6.21",
    }


@pytest.mark.parametrize("how", ["no secret", "wrong secret", "wrong scheme", "secret in the query", "empty bearer"])
def test_a_forged_action_call_is_refused_and_writes_nothing(action_server, orders_url, forged_call, how: str) -> None:
    url = f"{action_server.url}/webhook"
    headers: Dict[str, str] = {}
    if how == "wrong secret":
        headers = {"Authorization": f"Bearer {WRONG}"}
    elif how == "wrong scheme":
        headers = {"Authorization": f"Basic {action_server.token}"}
    elif how == "secret in the query":
        url += f"?token={action_server.token}"
    elif how == "empty bearer":
        headers = {"Authorization": "Bearer "}
    before = database_rows(orders_url)
    status, body = call(url, "POST", forged_call, headers)
    assert status == 401, body
    assert "responses" not in body and "events" not in body
    assert database_rows(orders_url) == before


def test_the_action_list_needs_the_secret_and_health_does_not(action_server) -> None:
    assert call(f"{action_server.url}/actions")[0] == 401
    assert call(f"{action_server.url}/actions", headers={"Authorization": f"Bearer {WRONG}"})[0] == 401
    status, body = call(f"{action_server.url}/actions", headers=action_server.headers())
    assert status == 200 and "action_handoff" in body
    # the gateway's /healthz, Docker's health check and the Kubernetes probes call it
    status, body = call(f"{action_server.url}/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_the_refusal_is_logged_without_the_presented_secret(action_server, forged_call) -> None:
    call(f"{action_server.url}/webhook", "POST", forged_call, {"Authorization": f"Bearer {WRONG}"})
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:
        log = action_server.log.read_text(errors="replace")
        if "refused POST /webhook" in log and "wrong secret" in log:
            break
        time.sleep(0.2)
    assert "refused POST /webhook from 127.0.0.1: wrong secret" in log
    assert WRONG not in log and action_server.token not in log


def test_with_the_secret_the_same_call_runs(action_server, orders_url, forged_call) -> None:
    """The secret is the only thing the forged call lacked: with it the action runs and
    records the handoff (so the refused calls above would have written)."""
    before = database_rows(orders_url)
    status, body = call(f"{action_server.url}/webhook", "POST", forged_call, action_server.headers())
    assert status == 200, body
    answer = json.loads(body)
    assert answer["responses"] and "events" in answer
    assert database_rows(orders_url) != before, "the handoff call wrote nothing (test no longer meaningful)"


def test_rasa_calls_the_actions_with_the_secret(rasa) -> None:
    """Through Rasa (which sends the secret from endpoints.yml) custom actions run: the
    first claim turn lists the customer's orders, which only the action server knows."""
    sender = "U" + uuid.uuid4().hex
    rasa.restart_conversation(sender)
    status, body = call(
        f"{rasa.url}/webhooks/rest/webhook",
        "POST",
        {"sender": sender, "message": "my order is missing the fries", "metadata": {"language": "en"}},
    )
    assert status == 200, body
    assert json.loads(body), "Rasa answered nothing (an action call refused?)"
    ran = {e.get("name") for e in rasa.tracker(sender)["events"] if e.get("event") == "action"}
    # custom actions of bot/actions ran: Rasa's calls carry the secret
    custom = {
        "action_start_claim",
        "action_ask_order_id",
        "action_ask_claim_items",
        "validate_claim_form",
        "action_detect_language",
        "action_clarify_or_handoff",
        "action_handoff",
    }
    assert custom & ran, sorted(ran)
