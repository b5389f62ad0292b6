"""Fixtures shared by the unit tests."""
import pytest

from bot.actions import services


@pytest.fixture
def orders_db(tmp_path, monkeypatch):
    """A fresh SQLite orders database with the demo data for the action server's services."""
    monkeypatch.setenv("ORDERS_DATABASE_URL", f"sqlite:///{tmp_path / 'orders.db'}")
    services.reset()
    yield
    services.reset()
