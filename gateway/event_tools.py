"""What every job of the processor uses for the LINE event it handles.

- the event's journal of steps (events.py `mark_step`), read once when its handling
  begins and dropped when it ends, so a job can ask what an earlier attempt already did;
- the customer's profile (line/profiles.py, cached), with their display name marked as
  customer data for Sentry's scrubbing; on follow and a customer's first event the rich
  menu of their profile's language is linked to them when it is not the default's
  (English; line/rich_menu_links.py, in the background, never failing the turn);
- the loading animation (cosmetic, never fails the turn);
- sending (gateway/delivery.py): reply or push, the apology at most once, a short text
  of the gateway's own (texts.py).
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Dict, List, Optional

from gateway import observability, texts
from gateway.core.events import EventStore, StoredEvent
from gateway.delivery import Journal, LineDelivery
from gateway.line import messages as line_messages
from gateway.line.api import LineApi
from gateway.line.profiles import ProfileCache, language_of
from gateway.line.rich_menu_links import RichMenuLinks

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    DONE = "done"
    RETRY = "retry"


def user_id(payload: Dict[str, Any]) -> Optional[str]:
    return (payload.get("source") or {}).get("userId")


class EventTools:
    def __init__(
        self,
        store: EventStore,
        line: LineApi,
        delivery: LineDelivery,
        profiles: ProfileCache,
        rich_menus: RichMenuLinks,
        *,
        loading_seconds: int = 20,
    ) -> None:
        self.store = store
        self.line = line
        self.delivery = delivery
        self.profiles = profiles
        self.rich_menus = rich_menus
        self.loading_seconds = loading_seconds
        self._journals: Dict[str, Journal] = {}  # event id -> its journal (while it is handled)

    # --- the event's journal -------------------------------------------------------------
    async def begin(self, event: StoredEvent) -> None:
        """Reads the event's journal for its handling (`end` drops it)."""
        self._journals[event.event_id] = await Journal.of(self.store, event)

    def end(self, event: StoredEvent) -> None:
        self._journals.pop(event.event_id, None)

    def journal(self, event: StoredEvent) -> Journal:
        journal = self._journals.get(event.event_id)
        if journal is None:  # not read yet (should not happen): nothing noted is assumed
            journal = self._journals[event.event_id] = Journal(self.store, event.event_id, set())
        return journal

    async def step(self, event: StoredEvent, step: str) -> None:
        await self.journal(event).note(step)

    def done_step(self, event: StoredEvent, step: str) -> bool:
        return self.journal(event).done(step)

    # --- who is writing ------------------------------------------------------------------
    async def profile(self, event: StoredEvent) -> Optional[Dict[str, Any]]:
        user = user_id(event.payload)
        source = event.payload.get("source") or {}
        chat = (
            {"group_id": source.get("groupId")}
            if source.get("type") == "group"
            else ({"room_id": source.get("roomId")} if source.get("type") == "room" else {})
        )
        profile = await self.profiles.get(user, **chat) if user else None
        if profile:
            observability.add_customer_data(profile.get("displayName"))
            if not chat:  # follow or a first message: link their language's rich menu, in the background
                self.rich_menus.note(user, language_of(profile))
        return profile

    async def loading(self, chat_id: str) -> None:
        try:
            await self.line.start_loading(chat_id, self.loading_seconds)
        except Exception as exc:  # cosmetic: never fails the turn
            log.debug("loading animation not shown (%s)", type(exc).__name__)

    # --- sending (gateway/delivery.py) -----------------------------------------------------
    async def say(self, event: StoredEvent, key: str) -> Outcome:
        """One of the gateway's own texts (texts.py) in the customer's language; the
        message is then read."""
        profile = await self.profile(event)
        await self.deliver(event, [[line_messages.text_message(texts.text(key, language_of(profile)))]])
        await self.delivery.mark_read(event)
        return Outcome.DONE

    async def apologise(self, event: StoredEvent, profile: Optional[Dict[str, Any]] = None) -> None:
        journal = self.journal(event)
        if not self.delivery.would_apologise(event, journal):
            return
        if profile is None:
            profile = await self.profile(event)
        await self.delivery.apologise(event, journal, language_of(profile))

    async def deliver(self, event: StoredEvent, batches: List[List[Dict[str, Any]]], quote: bool = False) -> bool:
        return await self.delivery.deliver(event, self.journal(event), batches, quote=quote)


__all__ = ["EventTools", "Outcome", "user_id"]
