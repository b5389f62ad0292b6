"""Real processes for end-to-end tests: the action server and the Rasa server.

Both run once per test session against a SQLite orders database in a temporary folder.
Before each test the demo data is recreated (times relative to now) and the test's
conversations start from nothing, so tests do not depend on each other.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from bot.store import db as store_db
from devkit import stack

DEMO_CUSTOMER = "U00000000000000000000000000000001"
ENGLISH_CUSTOMER = "U00000000000000000000000000000002"


@pytest.fixture(scope="session")
def orders_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('orders') / 'orders.db'}"


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def action_server(orders_url, log_dir):
    service = stack.start_action_server(log_dir, env={"ORDERS_DATABASE_URL": orders_url})
    yield service
    service.stop()


@pytest.fixture(scope="session")
def rasa_server(action_server, log_dir):
    server = stack.start_rasa(stack.trained_model(), action_server.url, log_dir)
    yield server
    server.stop()


def reset_orders(url: str) -> None:
    """Recreate the demo data: claims and remedies of earlier tests are gone."""
    engine = store_db.make_engine(url)
    from bot.store.models import Base

    Base.metadata.drop_all(engine)
    store_db.init_db(engine)
    engine.dispose()


class Chat:
    """One customer's conversation over Rasa's REST channel, as the gateway will hold it."""

    def __init__(self, server: stack.RasaServer, sender: str, metadata: Optional[Dict[str, Any]] = None):
        self.server = server
        self.sender = sender
        self.metadata = metadata or {}
        stack.post_json(server.api(f"/conversations/{sender}/tracker/events"), {"event": "restart"})

    def say(self, text: str) -> List[Dict[str, Any]]:
        body = {"sender": self.sender, "message": text, "metadata": self.metadata}
        return stack.post_json(f"{self.server.url}/webhooks/rest/webhook", body)

    def tracker(self) -> Dict[str, Any]:
        return stack.get_json(self.server.api(f"/conversations/{self.sender}/tracker"))

    def slot(self, name: str) -> Any:
        return self.tracker()["slots"].get(name)


@pytest.fixture
def bot(rasa_server, orders_url):
    """Opens conversations: `bot(sender)`; the demo data is fresh for each test."""
    reset_orders(orders_url)

    def open_chat(sender: Optional[str] = None, **metadata: Any) -> Chat:
        return Chat(rasa_server, sender or f"U{uuid.uuid4().hex}", metadata)

    return open_chat


def texts(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages if m.get("text"))


def buttons(messages: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    return [b for m in messages for b in m.get("buttons", [])]


def button(messages: List[Dict[str, Any]], contains: str) -> str:
    """The payload of the button whose title contains `contains` (what a tap sends)."""
    for b in buttons(messages):
        if contains in b["title"]:
            return b["payload"]
    raise AssertionError(f"no button with {contains!r} in {[b['title'] for b in buttons(messages)]}")


def handoff_case(messages: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    for m in messages:
        custom = m.get("custom") or {}
        if "handoff" in custom:
            return custom["handoff"]
    return None
