"""The action server's shared resources: the orders repository, the policy and the clock.

Created once per process on first use, so importing the actions costs nothing and tests
can point ORDERS_DATABASE_URL at a fresh database before the first call.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Dict, Optional

from rasa_sdk import Tracker

from bot.remedy_policy import Policy, load_policy
from bot.remedy_policy.hours import HandoffHours, load_hours
from bot.remedy_policy.reading import choice_words
from bot.store import OrdersRepository, init_db, make_engine


@lru_cache(maxsize=1)
def repository() -> OrdersRepository:
    engine = make_engine()
    init_db(engine)
    return OrdersRepository(engine)


@lru_cache(maxsize=1)
def policy() -> Policy:
    choice_words()  # bot/choice_words.yml is checked with the policy: a mistake stops the start
    return load_policy()


@lru_cache(maxsize=1)
def hours() -> HandoffHours:
    """The agents' working hours (bot/handoff.yml)."""
    return load_hours()


def reset() -> None:
    """Forget the cached repository, policy and hours (tests switch them between cases)."""
    repository.cache_clear()
    policy.cache_clear()
    hours.cache_clear()


def now() -> datetime:
    return datetime.now(timezone.utc)


def language(tracker: Tracker) -> str:
    """The customer's language: "en" or "ja" (the default: most customers write Japanese)."""
    return "en" if tracker.get_slot("language") == "en" else "ja"


def latest_intent(tracker: Tracker) -> Optional[str]:
    return (tracker.latest_message.get("intent") or {}).get("name")


def message_metadata(tracker: Tracker) -> Dict[str, Any]:
    """Metadata the gateway sends with each message (LINE user id, display name, language)."""
    return tracker.latest_message.get("metadata") or {}
