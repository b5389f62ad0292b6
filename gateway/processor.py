"""Handling one recorded LINE event after the ack (the UserSerializer's handler): dispatch.

Per event type (each job in its own module):
- a customer with an open case: message / postback -> the case thread and Rasa's
  tracker, not the bot (case_messages.py);
- text message / verified postback -> a turn with the bot (rasa_turn.py: Rasa, the
  handoff a turn may open, reply or push); typed text is text, never an intent command,
  and a tap whose signature does not verify is not sent to Rasa: the customer is asked to
  choose again (customer_input.py);
- image -> fetched, saved, thanked (photos.py);
- sticker and other message types -> a polite request to tell us in words;
- follow -> greeting in the profile's language; unfollow and others -> recorded only;
- accountLink -> the bot links the customer with the event's nonce (account_link.py);
- `"mode": "standby"` -> nothing sent to LINE, the message only recorded (standby.py).
What every job shares for the event (its journal, the customer's profile and rich menu,
sending, the apology) is event_tools.py's; how sending works is delivery.py's; the bot's
custom payloads in Rasa's answer are read in bot_payloads.py.

Never drop a customer's message: when Rasa, the action server or LINE is unavailable
the job answers RETRY, the event stays pending, and the retry loop (app.py) re-submits it
when `due` (`RetrySchedule`, exponential backoff per event). Redis (journal, cases,
leases) unreachable for a moment is a retry too, not a bug.

Order is kept: before an event, any earlier pending event of the same user is processed
first (the event store's pending list, oldest first), and while one must wait for a
retry, later ones wait behind it (with an apology by reply). core/ordering.py's
UserSerializer does not do this: it orders only what was submitted to it, in this
process, and runs the next event whatever the last one's outcome; the chain here covers
events from before a restart and ones waiting for their retry.

An event is marked done once handled (even when LINE refused the message itself with a
4xx: retrying cannot help; that failure is reported). Unexpected errors are reported to
Sentry with the customer's data scrubbed, the customer gets the apology, and the event
is done (retrying a bug would loop forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Dict, Optional, Tuple

from gateway import observability
from gateway.account_link import AccountLinks
from gateway.attachments import AttachmentStore
from gateway.case_messages import CaseMessages
from gateway.core.events import PENDING, EventStore, StoredEvent
from gateway.core.handoff import HandoffService
from gateway.core.rasa_client import RasaClient
from gateway.customer_input import PostbackSigner, typed_text
from gateway.delivery import LineDelivery, in_standby
from gateway.event_tools import EventTools, Outcome, user_id
from gateway.health import HealthChecker
from gateway.line.api import LineApi
from gateway.line.profiles import ProfileCache
from gateway.line.rich_menu_links import RichMenuLinks
from gateway.photos import Photos
from gateway.rasa_turn import RasaTurn
from gateway.retries import RetrySchedule
from gateway.standby import Standby

log = logging.getLogger(__name__)
# Reports go to Sentry explicitly (scrubbed); this logger is kept out of Sentry's logging
# integration so one failure is one Sentry event.
report_log = logging.getLogger("gateway.report")


class LineEventProcessor:
    """Dispatches each event by type to its job (see the module docstring); sending is
    `LineDelivery`'s, when to retry is `RetrySchedule`'s."""

    def __init__(
        self,
        store: EventStore,
        line: LineApi,
        rasa: RasaClient,
        health: HealthChecker,
        attachments: AttachmentStore,
        handoff: HandoffService,
        *,
        profiles: Optional[ProfileCache] = None,
        loading_seconds: int = 20,
        reply_token_max_age_s: float = 50.0,
        retry_min_s: float = 1.0,
        retry_max_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        postbacks: Optional[PostbackSigner] = None,
        mark_as_read: bool = True,
        account_link_login_url: Optional[str] = None,
    ) -> None:
        self.store = store
        # signs the buttons sent, checks the taps that come back (customer_input.py)
        self.postbacks = postbacks or PostbackSigner.ephemeral()
        self.handoff = handoff
        self.stats = {"processed": 0, "retry": 0, "replies": 0, "pushes": 0, "errors": 0}
        self.delivery = LineDelivery(
            line, reply_token_max_age_s=reply_token_max_age_s, clock=clock, stats=self.stats, mark_as_read=mark_as_read
        )
        self.retries = RetrySchedule(retry_min_s, retry_max_s, clock)
        self.rich_menus = RichMenuLinks(line)  # an English customer's menu (rich_menu_links.py)
        self.tools = EventTools(
            store, line, self.delivery, profiles or ProfileCache(line), self.rich_menus, loading_seconds=loading_seconds
        )
        self.photos = Photos(self.tools, line, attachments, clock)
        self.case_messages = CaseMessages(self.tools, handoff, self.photos, self.postbacks)
        self.account_links = AccountLinks(
            self.tools, line, rasa, health, handoff, self.postbacks, login_url=account_link_login_url
        )
        self.turn = RasaTurn(self.tools, rasa, health, handoff, self.postbacks, self.photos, self.account_links)
        self.standby = Standby(self.tools, rasa, handoff, self.case_messages, clock)

    # --- retry bookkeeping (read by the retry loop) --------------------------------------
    def due(self, event_id: str) -> bool:
        return self.retries.due(event_id)

    def _failed(self, event_id: str) -> None:
        self.retries.failed(event_id)

    # --- serializer handler --------------------------------------------------------------
    async def handle(self, event: StoredEvent) -> None:
        """Process `event`, first any earlier pending events of the same user (in order);
        once one of them must wait for a retry, the later ones wait too."""
        pending = await self.store.pending(event.user_id)
        ids = [p.event_id for p in pending]
        if event.event_id not in ids:
            return  # done already (a duplicate submit, or handled in an earlier chain)
        chain = pending[: ids.index(event.event_id) + 1]
        blocked = False
        for p in chain:
            if blocked:
                await self._defer(p)
                continue
            if await self._process_guarded(p) is Outcome.RETRY:
                blocked = True

    async def _defer(self, event: StoredEvent) -> None:
        """An earlier message of this user waits for a retry: this one waits behind it."""
        with observability.customer_data(*_sensitive(event.payload)):
            try:
                await self.tools.begin(event)
                await self.tools.apologise(event)
            except Exception as exc:  # pragma: no cover - apology is best effort
                report_log.warning("apology failed (%s)", type(exc).__name__)
            finally:
                self.tools.end(event)
        self._failed(event.event_id)
        self.stats["retry"] += 1

    async def _process_guarded(self, event: StoredEvent) -> Outcome:
        if await self.store.status(event.event_id) != PENDING:
            return Outcome.DONE
        await self.tools.begin(event)
        try:
            return await self._process_noted(event)
        finally:
            self.tools.end(event)

    async def _process_noted(self, event: StoredEvent) -> Outcome:
        with observability.customer_data(*_sensitive(event.payload)):
            try:
                outcome = await (self.standby.record(event) if in_standby(event.payload) else self._process(event))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _infrastructure_down(exc):
                    # Redis (journal, cases, leases) unreachable for a moment: not a bug, and
                    # marking the event done would lose the message; it waits for a retry
                    log.warning("state store unavailable (%s); message kept for a retry", type(exc).__name__)
                    self._failed(event.event_id)
                    self.stats["retry"] += 1
                    return Outcome.RETRY
                self.stats["errors"] += 1
                report_log.error(
                    "unexpected error handling a LINE %s event (%s); reported",
                    event.payload.get("type"),
                    type(exc).__name__,
                )
                observability.capture_exception(exc)
                try:
                    await self.tools.apologise(event)
                except Exception:
                    pass
                outcome = Outcome.DONE  # reported; retrying a bug would loop forever
        if outcome is Outcome.DONE:
            await self.store.mark_done(event.event_id)
            self.retries.forget(event.event_id)
            self.stats["processed"] += 1
        else:
            self._failed(event.event_id)
            self.stats["retry"] += 1
        return outcome

    # --- per type --------------------------------------------------------------------------
    async def _process(self, event: StoredEvent) -> Outcome:
        payload = event.payload
        etype = payload.get("type")
        if etype in ("message", "postback"):
            user = user_id(payload)
            case = await self.handoff.cases.open_case_for(user) if user else None
            if case is not None:
                return await self.case_messages.relay(event, case)
        if etype == "message":
            message = payload.get("message") or {}
            mtype = message.get("type")
            if mtype == "text":
                # typed text is text, never an intent command (customer_input.py)
                return await self.turn.converse(event, typed_text(str(message.get("text") or "")))
            if mtype == "image":
                return await self.photos.image(event, str(message.get("id") or ""))
            if mtype == "sticker":
                return await self.tools.say(event, "sticker")
            return await self.tools.say(event, "unsupported")
        if etype == "postback":
            data = str((payload.get("postback") or {}).get("data") or "")
            if not data:
                return Outcome.DONE
            verdict = self.postbacks.verify(data, user_id(payload) or "")
            if verdict.payload is None:
                log.warning("postback refused (%s); not sent to Rasa", verdict.reason)
                return await self.tools.say(event, "choose_again")
            return await self.turn.converse(event, verdict.payload)
        if etype == "follow":
            return await self.tools.say(event, "greeting")
        if etype == "unfollow":
            log.info("a user unfollowed; recorded")
            return Outcome.DONE
        if etype == "accountLink":
            return await self.account_links.event(event)
        log.info("LINE %s event recorded, nothing to do", etype)
        return Outcome.DONE


def _infrastructure_down(exc: BaseException) -> bool:
    """A connection to our own state store (Redis) failed: retry later, don't give up."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # memory-only setups need no redis
        return isinstance(exc, (ConnectionError, asyncio.TimeoutError))
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionError, asyncio.TimeoutError))


def _sensitive(payload: Dict[str, Any]) -> Tuple[str, ...]:
    source = payload.get("source") or {}
    message = payload.get("message") or {}
    postback = payload.get("postback") or {}
    values = (
        message.get("text"),
        postback.get("data"),
        (payload.get("link") or {}).get("nonce"),
        payload.get("replyToken"),
        source.get("userId"),
        source.get("groupId"),
        source.get("roomId"),
    )
    return tuple(str(v) for v in values if v)


__all__ = ["LineEventProcessor", "Outcome"]
