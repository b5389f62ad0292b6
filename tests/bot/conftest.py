"""Fixtures shared by the unit tests (they run in .venv-bot: Rasa's real Tracker objects)."""

import pytest

from tests.support.environments import in_bot_environment, left_out

if not in_bot_environment():
    collect_ignore_glob = left_out("tests/bot", "make test-unit")


@pytest.fixture
def orders_db(tmp_path, monkeypatch):
    """A fresh SQLite orders database with the demo data for the action server's services."""
    from bot.actions import services

    monkeypatch.setenv("ORDERS_DATABASE_URL", f"sqlite:///{tmp_path / 'orders.db'}")
    services.reset()
    yield
    services.reset()
