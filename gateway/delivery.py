"""Sending to a LINE chat for one recorded event: reply while the token is usable, push
otherwise, an apology at most once, each outside effect noted in the event's journal.

The journal notes (events.py `mark_step`) make a retry after a crash repeat nothing the
customer already read: "reply_token" or "apology" before the reply token is used, and
"answered" once the answer went by reply. A token spent on an apology is not tried again;
one tried for the answer before a crash is tried again (a reply token works once, so it
cannot show the answer twice). Pushes carry an X-Line-Retry-Key derived from the event id
and batch, so a push repeated after a crash is shown once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Set

from gateway import observability, texts
from gateway.core.events import EventStore, StoredEvent
from gateway.line import messages as line_messages
from gateway.line.api import InvalidReplyToken, LineApi, LineApiError

log = logging.getLogger(__name__)
report_log = logging.getLogger("gateway.report")  # explicit Sentry reports, scrubbed

STEP_RASA, STEP_REPLY_TOKEN, STEP_ANSWERED = "rasa", "reply_token", "answered"
STEP_APOLOGY = "apology"
# Namespace of the push retry keys derived from LINE event ids (any fixed UUID works).
_RETRY_KEY_NS = uuid.UUID("6f1c2a8e-5b0d-4d7e-9a43-2c8f0e6b7d15")


class BoundedSet:
    """The most recent `size` keys (what this process already did, without growing)."""

    def __init__(self, size: int = 10000) -> None:
        self._d: "OrderedDict[str, None]" = OrderedDict()
        self._size = size

    def add(self, key: str) -> None:
        self._d[key] = None
        self._d.move_to_end(key)
        while len(self._d) > self._size:
            self._d.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._d


class Journal:
    """The steps noted for one event while it is handled (read once, added durably)."""

    def __init__(self, store: EventStore, event_id: str, steps: Set[str]) -> None:
        self._store, self._event_id, self._steps = store, event_id, set(steps)

    @classmethod
    async def of(cls, store: EventStore, event: StoredEvent) -> "Journal":
        return cls(store, event.event_id, await store.steps(event.event_id))

    def done(self, step: str) -> bool:
        return step in self._steps

    async def note(self, step: str) -> None:
        """Notes a step durably before (or right after) its outside effect."""
        self._steps.add(step)
        await self._store.mark_step(self._event_id, step)


def in_standby(payload: Dict[str, Any]) -> bool:
    """LINE's `mode` "standby": another channel has the chat (module channels)."""
    return payload.get("mode") == "standby"


def push_target(payload: Dict[str, Any]) -> Optional[str]:
    source = payload.get("source") or {}
    return source.get("groupId") or source.get("roomId") or source.get("userId")


def quote_token(payload: Dict[str, Any]) -> Optional[str]:
    """The customer message's quoteToken (text, image, video and sticker messages have one)."""
    token = (payload.get("message") or {}).get("quoteToken")
    return token if isinstance(token, str) and token else None


def read_token(payload: Dict[str, Any]) -> Optional[str]:
    """The customer message's markAsReadToken (for the mark-as-read API)."""
    token = (payload.get("message") or {}).get("markAsReadToken")
    return token if isinstance(token, str) and token else None


def transient(exc: LineApiError) -> bool:
    """LINE down or rate limiting (worth a later retry), not a refusal of the message."""
    return exc.status is None or exc.status == 429 or exc.status >= 500


class LineDelivery:
    def __init__(
        self,
        line: LineApi,
        *,
        reply_token_max_age_s: float = 50.0,
        clock: Callable[[], float] = time.time,
        stats: Optional[Dict[str, int]] = None,
        mark_as_read: bool = True,
    ) -> None:
        self.line = line
        # the account runs with chat on: messages are read when answered, not on arrival
        self.mark_as_read = mark_as_read
        self.reply_token_max_age_s = reply_token_max_age_s
        self._clock = clock
        self._token_spent = BoundedSet()
        self._apologised = BoundedSet()
        self.stats = stats if stats is not None else {"replies": 0, "pushes": 0}

    def reply_token(self, event: StoredEvent, journal: Journal) -> Optional[str]:
        token = event.payload.get("replyToken")
        if not token or event.event_id in self._token_spent or journal.done(STEP_APOLOGY):
            return None
        if self._clock() - event.timestamp / 1000.0 > self.reply_token_max_age_s:
            return None
        return str(token)

    async def apologise(self, event: StoredEvent, journal: Journal, language: str) -> None:
        """An honest apology, by reply only (free) and once per event: a later retry that
        succeeds pushes the real answer."""
        if not self.would_apologise(event, journal):
            return
        self._apologised.add(event.event_id)
        await self.deliver(
            event, journal, [[line_messages.text_message(texts.text("apology", language))]], push_fallback=False
        )

    def would_apologise(self, event: StoredEvent, journal: Journal) -> bool:
        return (
            event.event_id not in self._apologised
            and self.reply_token(event, journal) is not None
            and not in_standby(event.payload)
        )

    async def mark_read(self, event: StoredEvent) -> None:
        """Marks the event's message (and the earlier ones) read, once it has been answered."""
        token = read_token(event.payload)
        if not (self.mark_as_read and token) or in_standby(event.payload):
            return
        await self.mark_token_read(token)

    async def mark_token_read(self, token: str) -> None:
        try:
            await self.line.mark_as_read(token)
        except LineApiError as exc:  # a read mark is a courtesy: never fails the turn
            log.warning("could not mark a message as read (HTTP %s)", exc.status)

    async def deliver(
        self,
        event: StoredEvent,
        journal: Journal,
        batches: List[List[Dict[str, Any]]],
        push_fallback: bool = True,
        quote: bool = False,
    ) -> bool:
        """First batch by reply when the token is usable, else push; later batches push.
        False when LINE stayed unavailable (429/5xx/network after the client's retries):
        the caller keeps the event pending and the answer is delivered on a later retry.

        The answer quotes the customer's message when `quote` says it answers that message
        in particular, and whenever it goes by push: it arrives late, maybe after the
        customer said more, so it shows what it answers."""
        batches = [b for b in batches if b]
        if not batches or in_standby(event.payload):
            return True  # standby: another channel answers this chat, never the bot
        to = push_target(event.payload)
        # an attempt before a crash already replied the first batch
        sent = push_fallback and journal.done(STEP_ANSWERED)
        token = None if sent else self.reply_token(event, journal)
        if quote or not token:
            batches[0] = line_messages.quoting(batches[0], quote_token(event.payload))
        first = batches[0]
        if token:
            # tried for the answer before a crash? then LINE may have taken that reply
            tried_before = push_fallback and journal.done(STEP_REPLY_TOKEN)
            self._token_spent.add(event.event_id)
            await journal.note(STEP_REPLY_TOKEN if push_fallback else STEP_APOLOGY)
            try:
                await self.line.reply(token, first)
                self.stats["replies"] += 1
                sent = True
                if push_fallback:  # the answer itself, not an apology
                    await journal.note(STEP_ANSWERED)
            except InvalidReplyToken:
                if tried_before:
                    # the token is young, so it was spent by that earlier reply: delivered
                    log.info("answer already replied before a restart; not pushed again")
                    sent = True
                else:
                    log.info("reply token spent or expired; pushing instead")
            except LineApiError as exc:
                report_log.error("LINE reply failed after retries (HTTP %s)", exc.status)
                observability.capture_message(f"LINE reply failed: HTTP {exc.status}")
        if not push_fallback:
            return True
        for index, batch in enumerate(batches):
            if index == 0 and sent:
                continue
            if not to:
                log.warning("no push target for an event; message not sent")
                return True
            # derived from the event: the same push after a crash is accepted once by LINE
            key = uuid.uuid5(_RETRY_KEY_NS, f"{event.event_id}:{index}")
            try:
                await self.line.push(to, batch, retry_key=str(key))
                self.stats["pushes"] += 1
            except LineApiError as exc:
                report_log.error("LINE push failed after retries (HTTP %s)", exc.status)
                observability.capture_message(f"LINE push failed: HTTP {exc.status}")
                if transient(exc):
                    return False  # later batches wait too: the customer reads them in order
        return True
