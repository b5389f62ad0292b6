"""The bot's ops API on the action server (bot/server/ops.py), over the real process as
devkit/stack.py starts it: /ops/* opens for OPS_API_TOKEN only (not for no token, a wrong
one, or Rasa's action-server secret), the ops token runs no action, a path that only
starts with /ops/ reaches nothing, refusals are logged without the presented value; and
an action server without OPS_API_TOKEN keeps running actions' health with /ops off (503).
"""

from __future__ import annotations

import json
import uuid

from devkit import stack
from tests.system.security.test_action_server import call

WRONG = "wrong-ops-token-" + uuid.uuid4().hex


def test_only_the_ops_token_opens_the_ops_routes(action_server):
    ops = stack.ops_token()
    assert ops != action_server.token
    for route in ("cases", "audit", "follow_ups", "recurring_alerts"):
        url = f"{action_server.url}/ops/{route}"
        for headers in (
            {},
            {"Authorization": f"Bearer {WRONG}"},
            {"Authorization": f"Bearer {action_server.token}"},  # Rasa's secret: actions only
            {"Authorization": ops},  # no scheme
        ):
            status, body = call(url, headers=headers)
            assert status == 401, (route, headers.keys(), status, body)
        status, body = call(f"{url}?from=2020-01-01T00:00:00%2B09:00", headers={"Authorization": f"Bearer {ops}"})
        assert status == 200, (route, body)
        assert isinstance(json.loads(body), dict)
    status, body = call(f"{action_server.url}/ops/cases?from=yesterday", headers={"Authorization": f"Bearer {ops}"})
    assert status == 400 and "ISO 8601" in body


def test_the_ops_token_runs_no_action_and_odd_paths_reach_nothing(action_server):
    ops = {"Authorization": f"Bearer {stack.ops_token()}"}
    status, _ = call(f"{action_server.url}/webhook", "POST", {"next_action": "action_handoff"}, headers=ops)
    assert status == 401
    for path in ("/ops/../webhook", "/ops/cases/../../webhook", "/ops/", "/ops/nothing", "/ops/cases/"):
        status, _ = call(f"{action_server.url}{path}", "POST" if "webhook" in path else "GET", {}, headers=ops)
        assert status in (401, 404), (path, status)
    status, _ = call(f"{action_server.url}/ops/cases", "POST", {}, headers=ops)
    assert status == 404  # read-only
    log = action_server.log.read_text(errors="replace")
    assert WRONG not in log and stack.ops_token() not in log and action_server.token not in log


def test_without_an_ops_token_the_ops_api_is_off_and_the_server_runs(tmp_path, orders_url):
    server = stack.start_action_server(tmp_path, env={"OPS_API_TOKEN": "", "ORDERS_DATABASE_URL": orders_url})
    try:
        assert call(f"{server.url}/health")[0] == 200
        status, body = call(f"{server.url}/ops/cases", headers={"Authorization": f"Bearer {stack.ops_token()}"})
        assert status == 503 and "OPS_API_TOKEN" in body
        # Rasa's secret still does what it did: an action call with it is not refused
        status, _ = call(f"{server.url}/webhook", "POST", {"next_action": "action_listen"}, headers=server.headers())
        assert status != 401
    finally:
        server.stop()
