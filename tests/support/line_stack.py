"""End-to-end over real processes: redis-server, the LINE and Slack API emulators (in this
process, each on its own thread and loop), the bot's action server and Rasa (from .venv-bot)
and the gateway (`.venv-gateway/bin/python -m gateway`, its runtime environment alone), all
started by devkit/stack.py, as `make run` starts them. The fixtures are here; the process
helpers (EmulatorThread, RestartableRasa, GatewayProcess) are devkit/stack.py's, imported
here for the tests that name them.

The fixtures reach every suite under tests/system through tests/system/conftest.py.
Run: .venv-devkit/bin/python -m pytest tests/system/line -q
(the model comes from stack.trained_model(): trained once, cached by hash in models/)
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from devkit import stack  # stdlib only: importable in both environments
from devkit.stack import EmulatorThread, GatewayProcess, RestartableRasa  # noqa: F401  (for the tests)

ROOT = Path(__file__).resolve().parents[2]

SECRET = "e2e-channel-secret"
ACCESS_TOKEN = "e2e-channel-access-token"
DEMO_CUSTOMER = "U00000000000000000000000000000001"
RASA_TOKEN = "e2e-rasa-token-" + os.urandom(6).hex()
SLACK_TOKEN = "xoxb-e2e-slack-token"
SLACK_SECRET = "e2e-slack-signing-secret"
HANDOFF_CHANNEL = "C0HANDOFF1"
ACCOUNT_LINK_KEY = stack.new_account_link_key()  # the action server's and the shop login page's


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gateway-e2e-logs")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    # A missing server is a broken install, not a reason to skip (.ci/run installs it).
    try:
        server = stack.start_redis()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def line_emulator() -> Iterator[EmulatorThread]:
    # accountLink events are signed with the channel secret; their webhook URL is the
    # gateway's, set by the gateway fixture
    emu = stack.start_line_emulator(ACCESS_TOKEN, profiles={DEMO_CUSTOMER: ("デモ 太郎", "ja")}, channel_secret=SECRET)
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def slack_emulator() -> Iterator[EmulatorThread]:
    emu = stack.start_slack_emulator(SLACK_TOKEN, signing_secret=SLACK_SECRET)
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def orders_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('orders') / 'orders.db'}"


@pytest.fixture(scope="session")
def action_server(orders_url, log_dir, tmp_path_factory):
    # The shipped policy, except that an agent approves alone only up to ¥4,000 and Alex Kim
    # (U0AGENT002) is a supervisor: the demo's ¥4,800 refund then needs both of them.
    shipped = (ROOT / "bot" / "remedy_policy.yml").read_text(encoding="utf-8")
    policy = tmp_path_factory.mktemp("policy") / "remedy_policy.yml"
    policy.write_text(shipped.replace("agent_limit: 10000", "agent_limit: 4000"), encoding="utf-8")
    service = stack.start_action_server(
        log_dir,
        env={
            "ORDERS_DATABASE_URL": orders_url,
            "REMEDY_POLICY_PATH": str(policy),
            "SLACK_SUPERVISOR_IDS": "U0AGENT002",
            "ACCOUNT_LINK_KEY": ACCOUNT_LINK_KEY,
        },
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def shop_login(orders_url, line_emulator, action_server, log_dir):
    """The demo shop's login page (LINE's account link), on the action server's orders
    database (created by then), redirecting to the LINE emulator's accountLink page."""
    service = stack.start_shop_login(
        log_dir,
        orders_url=orders_url,
        account_link_key=ACCOUNT_LINK_KEY,
        line_account_link_url=f"{line_emulator.url}/dialog/bot/accountLink",
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def rasa(action_server, log_dir):
    # GATEWAY_E2E_MODEL: use a given model instead of training the current inputs' one
    model = os.environ.get("GATEWAY_E2E_MODEL") or stack.trained_model()
    server = RestartableRasa(model, action_server.url, log_dir, token=RASA_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(line_emulator, slack_emulator, redis_url, rasa, action_server, shop_login, log_dir, tmp_path_factory):
    port = stack.free_port()
    env = stack.gateway_env(
        port,
        line_api_url=line_emulator.url,
        redis_url=redis_url,
        rasa_url=rasa.url,
        rasa_token=rasa.token,
        actions_url=action_server.url,
        attachments_dir=tmp_path_factory.mktemp("attachments"),
        channel_secret=SECRET,
        channel_access_token=ACCESS_TOKEN,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SLACK_SECRET,
        slack_api_url=f"{slack_emulator.url}/api/",
        slack_handoff_channel=HANDOFF_CHANNEL,
        extra={"GATEWAY_CASE_ANNOUNCE_INTERVAL_S": "0.5", "GATEWAY_RETRY_MIN_S": "0.5", "GATEWAY_RETRY_MAX_S": "2"},
        account_link_login_url=shop_login.login_url,
    )
    process = stack.start_gateway(env, port, log_dir / "gateway.log")
    line_emulator.emu.webhook_url = process.webhook_url  # LINE's accountLink events
    yield process
    process.stop()


if importlib.util.find_spec("pytest_asyncio") is not None:  # the gateway environment
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def line_client(gateway, line_emulator):
        """Signs and posts webhooks to the test gateway the way LINE does."""
        from devkit.emulators.line_client import LineWebhookClient, emulator_tokens

        client = LineWebhookClient(gateway.webhook_url, SECRET, token_source=emulator_tokens(line_emulator.emu))
        yield client
        await client.close()

    @pytest_asyncio.fixture
    async def slack_client(gateway, slack_emulator):
        """Signs and posts Events API and interactivity requests to the test gateway as Slack does."""
        from devkit.emulators.slack_client import SlackEventsClient

        client = SlackEventsClient(gateway.slack_url, SLACK_SECRET, api_emulator_url=slack_emulator.url)
        yield client
        await client.close()


# --- helpers for the tests ----------------------------------------------------------------


async def wait_for(cond: Callable[[], Any], timeout: float = 30.0, step: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(step)


def reply_for(emu, reply_token: str) -> Optional[Dict[str, Any]]:
    """The accepted reply API call made with `reply_token`, if any."""
    for r in list(emu.requests):
        if (
            r["path"] == "/v2/bot/message/reply"
            and r.get("status") == 200
            and (r.get("json") or {}).get("replyToken") == reply_token
        ):
            return r
    return None


def texts_of(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages if m.get("type") == "text")


def quick_reply_data(messages: List[Dict[str, Any]], label_contains: str) -> str:
    items = [i for m in messages for i in (m.get("quickReply") or {}).get("items", [])]
    for item in items:
        action = item["action"]
        if label_contains in action.get("label", "") or label_contains in action.get("data", ""):
            return action["data"]
    raise AssertionError(f"no quick reply with {label_contains!r} in {[i['action'].get('label') for i in items]}")


def rasa_events_json(rasa: RestartableRasa, sender: str) -> str:
    return json.dumps(rasa.tracker(sender), ensure_ascii=False)
