"""A customer's photos: fetched from LINE's data API, saved (attachments.py), thanked.

- An image message (no case open) -> its content fetched and saved, and the customer
  thanked in their language; the thanks quotes the photo ("this photo" is received).
  When LINE does not give the file the customer is told so (and it is reported).
- While a case is open the photo goes to the case thread instead (case_messages.py uses
  `save`).
- A case opened by the bot starts with the customer's photos of the last 24 hours
  (rasa_turn.py uses `recent`), so the agents see what was sent before the handoff.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional

from gateway import observability, texts
from gateway.attachments import AttachmentStore
from gateway.core.events import StoredEvent
from gateway.event_tools import EventTools, Outcome, user_id
from gateway.line import messages as line_messages
from gateway.line.api import LineApi, LineApiError
from gateway.line.profiles import language_of

log = logging.getLogger(__name__)
report_log = logging.getLogger("gateway.report")  # explicit Sentry reports, scrubbed


class Photos:
    def __init__(
        self,
        tools: EventTools,
        line: LineApi,
        attachments: AttachmentStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tools = tools
        self.line = line
        self.attachments = attachments
        self._clock = clock

    async def image(self, event: StoredEvent, message_id: str) -> Outcome:
        """An image message outside a case: saved and thanked (see the module docstring)."""
        user = user_id(event.payload) or event.user_id
        record = await self.save(event, user, message_id)
        if record is None:
            profile = await self.tools.profile(event)
            await self.tools.deliver(
                event, [[line_messages.text_message(texts.text("image_failed", language_of(profile)))]]
            )
            return Outcome.DONE
        profile = await self.tools.profile(event)
        thanks = [[line_messages.text_message(texts.text("image_received", language_of(profile)))]]
        await self.tools.deliver(event, thanks, quote=True)  # "this photo" is received
        await self.tools.delivery.mark_read(event)
        return Outcome.DONE

    async def save(self, event: StoredEvent, user: str, message_id: str) -> Optional[Dict[str, Any]]:
        """Fetches a customer's photo from LINE's content API and saves it; None (reported)
        when LINE does not give it."""
        try:
            data, content_type = await self.line.content(message_id)
        except LineApiError as exc:
            report_log.error("could not fetch an image from LINE (HTTP %s)", exc.status)
            observability.capture_message(f"LINE content fetch failed: HTTP {exc.status}")
            return None
        record = await self.attachments.save(user, event.event_id, message_id, data, content_type)
        log.info("image saved (%d bytes, %s)", record["size"], content_type)
        return record

    async def recent(self, user: str, within_s: float = 24 * 3600) -> List[Dict[str, Any]]:
        """The customer's photos saved within `within_s` (for a case being opened)."""
        now = self._clock()
        return [p for p in await self.attachments.for_user(user) if now - float(p.get("saved_at") or 0) <= within_s]


__all__ = ["Photos"]
