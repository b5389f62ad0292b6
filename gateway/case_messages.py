"""A customer's events while a case is open: to the case thread, never to the bot.

Once a case is open (gateway/core/handoff.py; ownership waiting or agent) the customer's
messages, photos, stickers and taps go to the case thread and Rasa's tracker
(`HandoffService.customer_message` / `customer_photo`) instead of Rasa's dialogue:
- text as written; a photo saved (photos.py) and posted to the thread; a sticker as
  "[sticker: its keywords]"; a tap as "[button] <its payload>" when it is one of the
  buttons we sent (customer_input.py), else "[button: not one we sent]"; anything else as
  "[<its type>]".
- Read marks: a message to a case is read once an agent has the case open (claimed);
  before that its read token waits on the case, and claiming marks it. Its quoteToken is
  kept with its text (the latest MAX_QUOTES), for an agent's reply that quotes it.
"""

from __future__ import annotations

import logging

from gateway.core.cases import CLAIMED, Case
from gateway.core.events import StoredEvent
from gateway.core.handoff import HandoffService
from gateway.customer_input import PostbackSigner
from gateway.delivery import in_standby, quote_token, read_token
from gateway.event_tools import EventTools, Outcome
from gateway.photos import Photos

log = logging.getLogger(__name__)

MAX_QUOTES = 20  # the customer's latest messages an agent's reply can quote


class CaseMessages:
    def __init__(self, tools: EventTools, handoff: HandoffService, photos: Photos, postbacks: PostbackSigner) -> None:
        self.tools = tools
        self.handoff = handoff
        self.photos = photos
        self.postbacks = postbacks

    async def relay(self, event: StoredEvent, case: Case) -> Outcome:
        """A person owns the conversation: the customer's message goes to the case thread
        (and Rasa's tracker), not to the bot."""
        payload = event.payload
        message = payload.get("message") or {}
        if payload.get("type") == "postback":
            verdict = self.postbacks.verify(str((payload.get("postback") or {}).get("data") or ""), case.user_id)
            text = f"[button] {verdict.payload}" if verdict.payload is not None else "[button: not one we sent]"
        elif message.get("type") == "text":
            text = str(message.get("text") or "")
        elif message.get("type") == "image":
            record = await self.photos.save(event, case.user_id, str(message.get("id") or ""))
            if record is not None:
                await self.handoff.customer_photo(case, record)
                await self._read_in_case(event, case, "[photo]")
                return Outcome.DONE
            text = "[photo: LINE did not give us the file]"
        elif message.get("type") == "sticker":
            keywords = message.get("keywords") or []
            text = "[sticker" + (f": {', '.join(map(str, keywords[:3]))}" if keywords else "") + "]"
        else:
            text = f"[{message.get('type') or payload.get('type')}]"
        await self.handoff.customer_message(case, text, {"line_event_id": event.event_id})
        log.info("customer message relayed to case %s", case.case_id)
        await self._read_in_case(event, case, text)
        return Outcome.DONE

    async def _read_in_case(self, event: StoredEvent, case: Case, text: str = "") -> None:
        """A message to a case is read once an agent has the case open (claimed); before
        that its read token waits on the case, and claiming marks it. Its quoteToken is
        kept with its text, for an agent's reply that quotes it."""
        delivery = self.tools.delivery
        if case.status == CLAIMED:
            await delivery.mark_read(event)
        unread = read_token(event.payload) if case.status != CLAIMED and not in_standby(event.payload) else None
        quote = quote_token(event.payload)
        if not (unread and delivery.mark_as_read) and not quote:
            return

        def keep(c: Case) -> None:
            if unread and delivery.mark_as_read:
                c.unread_token = unread
            if quote:
                c.quotes = [*c.quotes, {"text": text[:300], "token": quote}][-MAX_QUOTES:]

        await self.handoff.cases.update(case.case_id, keep)


__all__ = ["CaseMessages", "MAX_QUOTES"]
