"""Handling one recorded LINE event after the ack (the UserSerializer's handler).

Per event type:
- text message / postback -> loading animation, Rasa (sender = LINE user id, metadata
  {line_user_id, display_name, language}), Rasa's answer -> LINE messages -> reply with
  the reply token (push when the token is spent, too old, or rejected; further batches are
  pushed, each with its own X-Line-Retry-Key);
- image -> content fetched from the data API, saved (attachments.py), thanked;
- sticker and other message types -> a polite request to tell us in words;
- follow -> greeting in the profile's language; unfollow and others -> recorded only.
- accountLink (LINE's account link, docs/account-link.md) -> result "ok" with a nonce:
  any open form is closed and `EXTERNAL_account_linked` triggered in Rasa with the nonce
  in the `account_link_nonce` slot (the bot verifies and uses it once; a redelivered event
  is deduplicated like any other, and a nonce used before links nothing); the bot's
  answer goes with the event's reply token. "failed" -> a polite text. While a person has
  the conversation nothing is linked (the bot is paused): the customer is told to try
  again later. The nonce is never logged.
- the bot's `{"account_link": {}}` payload -> a link token for the customer (LINE API)
  and a button to ACCOUNT_LINK_LOGIN_URL?linkToken=...; without a token or that setting
  the offer is left out, the rest of the answer still goes.
- on follow and a customer's first event: the rich menu of their profile's language is
  linked to them when it is not the default's (English; line/rich_menu_links.py, in the
  background, never failing the turn).

Standby (`"mode": "standby"`: another channel, e.g. a module channel, has the chat): the
gateway sends NOTHING to LINE for the event (no loading animation, no reply, no push, no
apology; `_deliver` and `_apologise` refuse it as a last guard too), and the bot is not
run. The customer's words are still kept: with an open case they go to the case thread
and Rasa's tracker as usual (`_relay`); otherwise a text message (other messages as
"[image]", ..., a tap as "[button]") is appended to Rasa's tracker as a user event
(intent `relayed_to_agent`, metadata `line_mode: standby` and the event id) without
running the bot, so the history stays whole when the chat comes back. Rasa down: the
event waits for a retry like any other; noted as step "rasa", so it is written once.
Other standby events (follow, join, ...) are logged and done.

Handoff (gateway/core/handoff.py): when Rasa's answer carries a case (`{"handoff": ...}`)
the case is opened (ownership -> waiting) before the answer is sent, then posted to Slack.
While a case is open the customer's messages, photos and stickers go to the case thread
instead of Rasa; and a bot answer is never sent once a person owns the conversation.

Never drop a customer's message: when Rasa or the action server is unreachable the
customer gets an honest apology (by reply, once) and the event stays pending; the retry
loop (app.py) re-submits it. The same when LINE stays unavailable (429/5xx) for the
answer: the event stays pending and the answer is delivered later. Order is kept: before an event, any earlier pending event of
the same user is processed first, and while one fails, later ones wait behind it.

Exactly once across crashes and timeouts: the steps with an outside effect are noted in
the journal (events.py `mark_step`) as they happen: "rasa" before the message goes to
Rasa, "apology" or "reply_token" before the reply token is used for an apology or for
the answer, "answered" once the answer went by reply (a token spent on an apology is not
tried again; one tried for the answer before a crash is tried again, since a reply token
works once and cannot show the answer twice). A retry of an event whose message may already be in Rasa (the gateway was killed
mid-turn, or Rasa timed out after taking it) first looks for it in Rasa's tracker (the
user event carries `line_event_id` in its metadata) and, when found, delivers that turn's
answer instead of sending the message again. Pushes carry an X-Line-Retry-Key derived from
the event id and batch, so a push repeated after a crash is not shown twice.

An event is marked done once handled (even when LINE refused the message itself with a
4xx: retrying cannot help; that failure is reported). Unexpected errors are reported to
Sentry with the customer's data scrubbed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from gateway import observability, texts
from gateway.attachments import AttachmentStore
from gateway.core.cases import BOT, CLAIMED, Case
from gateway.core.events import PENDING, EventStore, StoredEvent
from gateway.core.handoff import HandoffService, handoff_payloads
from gateway.core.rasa_client import RasaClient, RasaRejected, RasaUnavailable
from gateway.customer_input import PostbackSigner, typed_text
from gateway.delivery import STEP_RASA, Journal, LineDelivery, in_standby, quote_token, read_token
from gateway.health import HealthChecker
from gateway.line import messages as line_messages
from gateway.line.api import LineApi, LineApiError
from gateway.line.profiles import ProfileCache, language_of
from gateway.line.rich_menu_links import RichMenuLinks
from gateway.retries import RetrySchedule

log = logging.getLogger(__name__)
# Reports go to Sentry explicitly (scrubbed); this logger is kept out of Sentry's logging
# integration so one failure is one Sentry event.
report_log = logging.getLogger("gateway.report")


METADATA_EVENT_ID = "line_event_id"
ACCOUNT_LINKED_INTENT = "EXTERNAL_account_linked"
ACCOUNT_LINK_NONCE_SLOT = "account_link_nonce"
MAX_QUOTES = 20  # the customer's latest messages an agent's reply can quote


class Outcome(enum.Enum):
    DONE = "done"
    RETRY = "retry"


class LineEventProcessor:
    """Dispatches each event by type; the Rasa turn, the relay to a case and photos are
    here, sending is `LineDelivery`'s, when to retry is `RetrySchedule`'s."""

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
        self.account_link_login_url = account_link_login_url  # the shop's login page (None: no offer)
        # signs the buttons sent, checks the taps that come back (customer_input.py)
        self.postbacks = postbacks or PostbackSigner.ephemeral()
        self.handoff = handoff
        self.line = line
        self.rasa = rasa
        self.health = health
        self.attachments = attachments
        self.profiles = profiles or ProfileCache(line)
        self.rich_menus = RichMenuLinks(line)  # an English customer's menu (rich_menu_links.py)
        self.loading_seconds = loading_seconds
        self._clock = clock
        self.stats = {"processed": 0, "retry": 0, "replies": 0, "pushes": 0, "errors": 0}
        self.delivery = LineDelivery(
            line, reply_token_max_age_s=reply_token_max_age_s, clock=clock, stats=self.stats, mark_as_read=mark_as_read
        )
        self.retries = RetrySchedule(retry_min_s, retry_max_s, clock)
        self._journals: Dict[str, Journal] = {}  # event id -> its journal (while it is handled)

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
                self._journals[event.event_id] = await Journal.of(self.store, event)
                await self._apologise(event)
            except Exception as exc:  # pragma: no cover - apology is best effort
                report_log.warning("apology failed (%s)", type(exc).__name__)
            finally:
                self._journals.pop(event.event_id, None)
        self._failed(event.event_id)
        self.stats["retry"] += 1

    async def _process_guarded(self, event: StoredEvent) -> Outcome:
        if await self.store.status(event.event_id) != PENDING:
            return Outcome.DONE
        self._journals[event.event_id] = await Journal.of(self.store, event)
        try:
            return await self._process_noted(event)
        finally:
            self._journals.pop(event.event_id, None)

    def _journal(self, event: StoredEvent) -> Journal:
        journal = self._journals.get(event.event_id)
        if journal is None:  # not read yet (should not happen): nothing noted is assumed
            journal = self._journals[event.event_id] = Journal(self.store, event.event_id, set())
        return journal

    async def _step(self, event: StoredEvent, step: str) -> None:
        await self._journal(event).note(step)

    def _done_step(self, event: StoredEvent, step: str) -> bool:
        return self._journal(event).done(step)

    async def _process_noted(self, event: StoredEvent) -> Outcome:
        with observability.customer_data(*_sensitive(event.payload)):
            try:
                outcome = await (self._standby(event) if in_standby(event.payload) else self._process(event))
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
                    await self._apologise(event)
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
            user = _user_id(payload)
            case = await self.handoff.cases.open_case_for(user) if user else None
            if case is not None:
                return await self._relay(event, case)
        if etype == "message":
            message = payload.get("message") or {}
            mtype = message.get("type")
            if mtype == "text":
                # typed text is text, never an intent command (customer_input.py)
                return await self._converse(event, typed_text(str(message.get("text") or "")))
            if mtype == "image":
                return await self._image(event, str(message.get("id") or ""))
            if mtype == "sticker":
                return await self._say(event, "sticker")
            return await self._say(event, "unsupported")
        if etype == "postback":
            data = str((payload.get("postback") or {}).get("data") or "")
            if not data:
                return Outcome.DONE
            verdict = self.postbacks.verify(data, _user_id(payload) or "")
            if verdict.payload is None:
                log.warning("postback refused (%s); not sent to Rasa", verdict.reason)
                return await self._say(event, "choose_again")
            return await self._converse(event, verdict.payload)
        if etype == "follow":
            return await self._say(event, "greeting")
        if etype == "unfollow":
            log.info("a user unfollowed; recorded")
            return Outcome.DONE
        if etype == "accountLink":
            return await self._account_link(event)
        log.info("LINE %s event recorded, nothing to do", etype)
        return Outcome.DONE

    async def _standby(self, event: StoredEvent) -> Outcome:
        """Another channel has the chat: record, never answer (see the module docstring)."""
        payload = event.payload
        etype, user = payload.get("type"), _user_id(payload)
        log.info("LINE %s event in standby mode: recorded, nothing sent to LINE", etype)
        if etype not in ("message", "postback") or not user:
            return Outcome.DONE
        case = await self.handoff.cases.open_case_for(user)
        if case is not None:
            return await self._relay(event, case)
        message = payload.get("message") or {}
        if etype == "postback":
            text = "[button]"  # its data is the bot's, not the customer's words
        elif message.get("type") == "text":
            text = str(message.get("text") or "")
        else:
            text = f"[{message.get('type') or 'message'}]"
        try:
            if self._done_step(event, STEP_RASA) and await self._in_tracker(user, event):
                return Outcome.DONE  # written before a crash
            await self._step(event, STEP_RASA)
            await self.rasa.append_events(
                user,
                [
                    {
                        "event": "user",
                        "text": text,
                        "timestamp": self._clock(),
                        "parse_data": {
                            "intent": {"name": "relayed_to_agent", "confidence": 1.0},
                            "entities": [],
                            "text": text,
                        },
                        "metadata": {METADATA_EVENT_ID: event.event_id, "line_user_id": user, "line_mode": "standby"},
                    }
                ],
            )
        except RasaUnavailable as exc:
            log.warning("%s; standby message kept for a retry", exc)
            return Outcome.RETRY
        except RasaRejected as exc:
            report_log.error("Rasa refused a standby message for its tracker: %s", exc)
            observability.capture_message(f"Rasa refused a standby message: {exc}")
        return Outcome.DONE

    async def _in_tracker(self, user: str, event: StoredEvent) -> bool:
        try:
            return await self.rasa.recorded_turn(user, METADATA_EVENT_ID, event.event_id) is not None
        except RasaRejected:
            return False

    async def _profile(self, event: StoredEvent) -> Optional[Dict[str, Any]]:
        user = _user_id(event.payload)
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

    async def _loading(self, chat_id: str) -> None:
        try:
            await self.line.start_loading(chat_id, self.loading_seconds)
        except Exception as exc:  # cosmetic: never fails the turn
            log.debug("loading animation not shown (%s)", type(exc).__name__)

    async def _converse(self, event: StoredEvent, text: str) -> Outcome:
        user = _user_id(event.payload)
        if not user or not text.strip():
            log.info("event without a user id or text; nothing to send to Rasa")
            return Outcome.DONE
        source = event.payload.get("source") or {}
        loading = asyncio.create_task(self._loading(user)) if source.get("type", "user") == "user" else None
        try:
            profile, action_ok = await asyncio.gather(self._profile(event), self.health.action_server(use_cache=True))
            if not action_ok:
                log.warning("action server unreachable; message kept for a retry")
                await self._apologise(event, profile)
                return Outcome.RETRY
            metadata = {
                "line_user_id": user,
                "display_name": (profile or {}).get("displayName"),
                "language": language_of(profile),
                METADATA_EVENT_ID: event.event_id,
            }
            try:
                responses = None
                if self._done_step(event, STEP_RASA):
                    # an earlier attempt may have got through: Rasa's tracker knows
                    try:
                        responses = await self.rasa.recorded_turn(user, METADATA_EVENT_ID, event.event_id)
                    except RasaRejected:
                        responses = None
                    if responses is not None:
                        log.info("turn found in Rasa's tracker; answered, not sent again")
                if responses is None:
                    await self._step(event, STEP_RASA)
                    responses = await self.rasa.send(user, text, metadata)
            except RasaUnavailable as exc:
                log.warning("%s; message kept for a retry", exc)
                await self._apologise(event, profile)
                return Outcome.RETRY
            except RasaRejected as exc:
                report_log.error("Rasa refused a message: %s", exc)
                observability.capture_message(f"Rasa refused a message: {exc}")
                await self._apologise(event, profile)
                return Outcome.DONE
        finally:
            if loading is not None:
                await loading
        case: Optional[Case] = None
        contexts = handoff_payloads(responses)
        if contexts:
            # ownership moves to the agents before the customer reads "a person will take over"
            photos = await self._recent_photos(user)
            case = await self.handoff.open_from_bot(user, contexts[-1], photos)
        elif await self.handoff.cases.owner(user) != BOT:
            log.info("bot answer not sent: a person owns this conversation now")
            return Outcome.DONE
        responses = await self._with_account_link(responses, user, profile)
        batches = self.postbacks.sign_batches(line_messages.convert(responses), user)
        if not await self._deliver(event, batches, quote=await self._quote_answer(event, responses)):
            # the turn is in Rasa's tracker (STEP_RASA): the retry delivers it, not re-sends it
            log.warning("LINE unavailable; the answer stays pending for a retry")
            return Outcome.RETRY
        if case is not None:
            await self.handoff.announce(case)
        await self.delivery.mark_read(event)
        return Outcome.DONE

    async def _account_link(self, event: StoredEvent) -> Outcome:
        """LINE's accountLink event: the bot links the customer with the event's nonce
        (see the module docstring); the nonce is never logged."""
        payload = event.payload
        user = _user_id(payload)
        link = payload.get("link") or {}
        nonce = link.get("nonce")
        if not user:
            log.info("accountLink event without a user id; nothing to do")
            return Outcome.DONE
        if link.get("result") != "ok" or not isinstance(nonce, str) or not nonce:
            log.info("LINE account link did not succeed (result %r)", str(link.get("result"))[:20])
            return await self._say(event, "account_link_failed")
        if await self.handoff.cases.open_case_for(user) is not None:
            log.info("account link not done: a person has the conversation")
            return await self._say(event, "account_link_later")
        profile, action_ok = await asyncio.gather(self._profile(event), self.health.action_server(use_cache=True))
        if not action_ok:
            log.warning("action server unreachable; account link kept for a retry")
            await self._apologise(event, profile)
            return Outcome.RETRY
        try:
            # A retry after a crash triggers again: the bot then finds the nonce used by
            # this very customer and says the link is in place (nothing is linked twice).
            await self._step(event, STEP_RASA)
            # trigger_intent carries no metadata (Rasa 3.6): the conversation's slots
            # (language, name) are the tracker's; an open form (the order question) ends,
            # since the customer is known now and starts again with their orders
            await self.rasa.append_events(
                user,
                [
                    {"event": "active_loop", "name": None},
                    {"event": "slot", "name": "requested_slot", "value": None},
                    {"event": "slot", "name": ACCOUNT_LINK_NONCE_SLOT, "value": nonce},
                ],
            )
            responses = await self.rasa.trigger_intent(user, ACCOUNT_LINKED_INTENT)
        except RasaUnavailable as exc:
            log.warning("%s; account link kept for a retry", exc)
            await self._apologise(event, profile)
            return Outcome.RETRY
        except RasaRejected as exc:
            report_log.error("Rasa refused the account link: %s", exc)
            observability.capture_message(f"Rasa refused the account link: {exc}")
            await self._apologise(event, profile)
            return Outcome.DONE
        responses = await self._with_account_link(responses, user, profile)
        batches = self.postbacks.sign_batches(line_messages.convert(responses), user)
        if not await self._deliver(event, batches):
            log.warning("LINE unavailable; the account link answer stays pending for a retry")
            return Outcome.RETRY
        return Outcome.DONE

    async def _with_account_link(
        self, responses: List[Dict[str, Any]], user: str, profile: Optional[Dict[str, Any]]
    ) -> List[Dict[str, Any]]:
        """The bot's `{"account_link": {}}` payloads made into the button to the shop's
        login page with a fresh link token (line/messages.py draws it); left out when
        there is no login page or LINE gives no token (the rest of the answer goes)."""
        if not any(isinstance(r.get("custom"), dict) and "account_link" in r["custom"] for r in responses):
            return responses
        language = language_of(profile)
        card: Optional[Dict[str, Any]] = None
        if self.account_link_login_url:
            try:
                token = await self.line.issue_link_token(user)
                joiner = "&" if "?" in self.account_link_login_url else "?"
                card = {
                    "url": f"{self.account_link_login_url}{joiner}{urlencode({'linkToken': token})}",
                    "title": texts.text("account_link_title", language),
                    "text": texts.text("account_link_text", language),
                    "label": texts.text("account_link_button", language),
                }
            except LineApiError as exc:
                report_log.warning("no LINE link token (HTTP %s); the account link offer is left out", exc.status)
        else:
            log.info("ACCOUNT_LINK_LOGIN_URL is not set; the account link offer is left out")
        out: List[Dict[str, Any]] = []
        for r in responses:
            custom = r.get("custom")
            if isinstance(custom, dict) and "account_link" in custom:
                if card is None:
                    rest = {k: v for k, v in r.items() if k != "custom"}
                    if rest.get("text") or rest.get("buttons") or rest.get("image"):
                        out.append(rest)
                    continue
                r = {**r, "custom": {**custom, "account_link": card}}
            out.append(r)
        return out

    async def _quote_answer(self, event: StoredEvent, responses: List[Dict[str, Any]]) -> bool:
        """Does this answer quote the customer's message? When it answers the complaint
        itself (remedies offered, or a person takes over), and when the customer wrote
        again before it came (the answer then says which message it is about)."""
        if any(
            isinstance(r.get("custom"), dict) and ("remedy_card" in r["custom"] or "handoff" in r["custom"])
            for r in responses
        ):
            return True
        later = [p for p in await self.store.pending(event.user_id) if p.event_id != event.event_id]
        return any(p.timestamp > event.timestamp for p in later)

    async def _recent_photos(self, user: str, within_s: float = 24 * 3600) -> List[Dict[str, Any]]:
        now = self._clock()
        return [p for p in await self.attachments.for_user(user) if now - float(p.get("saved_at") or 0) <= within_s]

    async def _relay(self, event: StoredEvent, case: Case) -> Outcome:
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
            record = await self._save_image(event, case.user_id, str(message.get("id") or ""))
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
        if case.status == CLAIMED:
            await self.delivery.mark_read(event)
        unread = read_token(event.payload) if case.status != CLAIMED and not in_standby(event.payload) else None
        quote = quote_token(event.payload)
        if not (unread and self.delivery.mark_as_read) and not quote:
            return

        def keep(c: Case) -> None:
            if unread and self.delivery.mark_as_read:
                c.unread_token = unread
            if quote:
                c.quotes = [*c.quotes, {"text": text[:300], "token": quote}][-MAX_QUOTES:]

        await self.handoff.cases.update(case.case_id, keep)

    async def _image(self, event: StoredEvent, message_id: str) -> Outcome:
        user = _user_id(event.payload) or event.user_id
        record = await self._save_image(event, user, message_id)
        if record is None:
            profile = await self._profile(event)
            await self._deliver(event, [[line_messages.text_message(texts.text("image_failed", language_of(profile)))]])
            return Outcome.DONE
        profile = await self._profile(event)
        thanks = [[line_messages.text_message(texts.text("image_received", language_of(profile)))]]
        await self._deliver(event, thanks, quote=True)  # "this photo" is received
        await self.delivery.mark_read(event)
        return Outcome.DONE

    async def _save_image(self, event: StoredEvent, user: str, message_id: str) -> Optional[Dict[str, Any]]:
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

    async def _say(self, event: StoredEvent, key: str) -> Outcome:
        profile = await self._profile(event)
        await self._deliver(event, [[line_messages.text_message(texts.text(key, language_of(profile)))]])
        await self.delivery.mark_read(event)
        return Outcome.DONE

    # --- sending (gateway/delivery.py) ---------------------------------------------------
    async def _apologise(self, event: StoredEvent, profile: Optional[Dict[str, Any]] = None) -> None:
        journal = self._journal(event)
        if not self.delivery.would_apologise(event, journal):
            return
        if profile is None:
            profile = await self._profile(event)
        await self.delivery.apologise(event, journal, language_of(profile))

    async def _deliver(self, event: StoredEvent, batches: List[List[Dict[str, Any]]], quote: bool = False) -> bool:
        return await self.delivery.deliver(event, self._journal(event), batches, quote=quote)


def _infrastructure_down(exc: BaseException) -> bool:
    """A connection to our own state store (Redis) failed: retry later, don't give up."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # memory-only setups need no redis
        return isinstance(exc, (ConnectionError, asyncio.TimeoutError))
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionError, asyncio.TimeoutError))


def _user_id(payload: Dict[str, Any]) -> Optional[str]:
    return (payload.get("source") or {}).get("userId")


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
