"""The action server's shared secret, in the bot environment: the check itself
(bot/server/actions.py), and Rasa 3.6's own code reading every endpoints file we ship,
substituting ${ACTION_SERVER_TOKEN} inside `action_endpoint.headers` and sending it with
an action call (the same EndpointConfig.request that RemoteAction uses).

The real processes (a forged /webhook call refused, nothing written) are in
tests/system/security/test_action_server.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Dict, List

import pytest

from bot.server import actions as action_server
from scripts.endpoints import write_endpoints

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "unit-action-secret-0123456789"


@pytest.mark.parametrize(
    "header,ok",
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),  # the scheme is case-insensitive (RFC 7235)
        (None, False),
        ("", False),
        (TOKEN, False),  # no scheme
        (f"Basic {TOKEN}", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        ("Bearer ", False),
    ],
)
def test_only_the_exact_bearer_secret_passes(header, ok) -> None:
    assert action_server.authorized(header, TOKEN) is ok


def test_an_empty_server_token_lets_nothing_through() -> None:
    assert not action_server.authorized("Bearer ", "")


@pytest.mark.parametrize("token", [None, "", "short-secret"])
def test_the_server_does_not_start_without_a_real_secret(token, monkeypatch) -> None:
    if token is None:
        monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    else:
        monkeypatch.setenv("ACTION_SERVER_TOKEN", token)
    assert action_server.main(["--port", "1"]) == action_server.EX_CONFIG


def _endpoint_files(tmp_path: Path) -> List[Path]:
    """endpoints.yml (tests), what scripts/endpoints.py writes (make run/serve, SQL and
    Redis variants) and deploy/endpoints.redis.yml (the containers)."""
    return [
        ROOT / "endpoints.yml",
        write_endpoints(tmp_path / "sql.yml", {"TRACKER_STORE_URL": f"sqlite:///{tmp_path}/t.db"}),
        write_endpoints(tmp_path / "redis.yml", {"REDIS_URL": "redis://127.0.0.1:6379/0"}),
        ROOT / "deploy" / "endpoints.redis.yml",
    ]


def _env_for_files(monkeypatch) -> None:
    monkeypatch.setenv("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook")
    for name, value in (("RASA_REDIS_HOST", "127.0.0.1"), ("RASA_REDIS_PORT", "6379"), ("RASA_REDIS_PASSWORD", "")):
        monkeypatch.setenv(name, value)


def test_rasa_substitutes_the_secret_inside_headers(tmp_path, monkeypatch) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    _env_for_files(monkeypatch)
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
    for path in _endpoint_files(tmp_path):
        endpoint = read_endpoint_config(str(path), "action_endpoint")
        assert endpoint is not None, path
        assert endpoint.headers == {"Authorization": f"Bearer {TOKEN}"}, path
        # a header, not a query parameter: the secret stays out of URLs and access logs
        assert endpoint.token is None and TOKEN not in endpoint.url, path
    # the file itself never holds the secret
    assert TOKEN not in (tmp_path / "sql.yml").read_text()


def test_rasa_stops_when_the_secret_is_unset(tmp_path, monkeypatch) -> None:
    from rasa.shared.exceptions import RasaException
    from rasa.utils.endpoints import read_endpoint_config

    _env_for_files(monkeypatch)
    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    for path in _endpoint_files(tmp_path):
        with pytest.raises(RasaException, match="ACTION_SERVER_TOKEN"):
            read_endpoint_config(str(path), "action_endpoint")


def test_rasa_sends_the_header_with_an_action_call(tmp_path, monkeypatch) -> None:
    """EndpointConfig.request is how RemoteAction calls the action server."""
    from aiohttp import web
    from rasa.utils.endpoints import read_endpoint_config

    seen: Dict[str, str] = {}

    async def webhook(request: web.Request) -> web.Response:
        seen.update(request.headers)
        seen["query"] = request.query_string
        return web.json_response({"events": [], "responses": []})

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            monkeypatch.setenv("ACTION_SERVER_URL", f"http://127.0.0.1:{port}/webhook")
            monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
            endpoint = read_endpoint_config(str(ROOT / "endpoints.yml"), "action_endpoint")
            await endpoint.request(json={"next_action": "action_listen"}, method="post")
        finally:
            await runner.cleanup()

    asyncio.run(run())
    assert seen["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in seen["query"]
