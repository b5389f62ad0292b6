"""One customer turn with the bot: a text message or a verified button tap -> Rasa -> LINE.

The loading animation (one-to-one chats), then Rasa (sender = LINE user id, metadata
{line_user_id, display_name, language, line_event_id}), Rasa's answer -> LINE messages
(line/messages.py; buttons signed, customer_input.py) -> reply with the reply token
(push when the token is spent, too old, or rejected; further batches are pushed, each
with its own X-Line-Retry-Key; gateway/delivery.py).

Handoff (gateway/core/handoff.py): when Rasa's answer carries a case (`{"handoff": ...}`,
bot_payloads.py) the case is opened (ownership -> waiting, with the customer's photos of
the last day) before the answer is sent, then posted to Slack after it. A bot answer is
never sent once a person owns the conversation. The bot's `{"account_link": {}}` offer is
made into the login button (account_link.py) before the answer is drawn; payloads the
customer never sees (`{"ops_alert"}`, `{"follow_up"}`) are taken out first, by their
handlers (bot_payloads.py has the table).

The answer quotes the customer's message when it answers the complaint itself (remedies
offered, or a person takes over), and when the customer wrote again before it came.

Never drop a customer's message: when Rasa or the action server is unreachable the
customer gets an honest apology (by reply, once) and the event stays pending for a
retry; the same when LINE stays unavailable (429/5xx) for the answer.

Exactly once across crashes and timeouts: "rasa" is noted in the event's journal before
the message goes to Rasa. A retry of an event whose message may already be in Rasa (the
gateway was killed mid-turn, or Rasa timed out after taking it) first looks for it in
Rasa's tracker (the user event carries `line_event_id` in its metadata) and, when found,
delivers that turn's answer instead of sending the message again. How the reply token
and pushes are kept from repeating is delivery.py's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from gateway import bot_payloads, observability
from gateway.account_link import AccountLinks
from gateway.core.cases import BOT, Case
from gateway.core.events import StoredEvent
from gateway.core.handoff import HandoffService
from gateway.core.rasa_client import RasaClient, RasaRejected, RasaUnavailable
from gateway.customer_input import PostbackSigner
from gateway.delivery import STEP_RASA
from gateway.event_tools import EventTools, Outcome, user_id
from gateway.follow_ups import FollowUps
from gateway.health import HealthChecker
from gateway.line import messages as line_messages
from gateway.line.profiles import language_of
from gateway.photos import Photos
from gateway.slack.ops_alerts import OpsAlerts

log = logging.getLogger(__name__)
report_log = logging.getLogger("gateway.report")  # explicit Sentry reports, scrubbed

METADATA_EVENT_ID = "line_event_id"  # in the user event's metadata: finds a turn again in Rasa's tracker


class RasaTurn:
    # follow_ups.py's scheduler, set by app.py: takes the bot's {"follow_up": ...} payloads
    follow_ups: Optional["FollowUps"] = None
    # slack/ops_alerts.py, set by app.py: takes the bot's {"ops_alert": ...} payloads (never to LINE)
    ops_alerts: Optional["OpsAlerts"] = None

    def __init__(
        self,
        tools: EventTools,
        rasa: RasaClient,
        health: HealthChecker,
        handoff: HandoffService,
        postbacks: PostbackSigner,
        photos: Photos,
        account_links: AccountLinks,
    ) -> None:
        self.tools = tools
        self.rasa = rasa
        self.health = health
        self.handoff = handoff
        self.postbacks = postbacks
        self.photos = photos
        self.account_links = account_links

    async def converse(self, event: StoredEvent, text: str) -> Outcome:
        tools = self.tools
        user = user_id(event.payload)
        if not user or not text.strip():
            log.info("event without a user id or text; nothing to send to Rasa")
            return Outcome.DONE
        source = event.payload.get("source") or {}
        loading = asyncio.create_task(tools.loading(user)) if source.get("type", "user") == "user" else None
        try:
            profile, action_ok = await asyncio.gather(tools.profile(event), self.health.action_server(use_cache=True))
            if not action_ok:
                log.warning("action server unreachable; message kept for a retry")
                await tools.apologise(event, profile)
                return Outcome.RETRY
            metadata = {
                "line_user_id": user,
                "display_name": (profile or {}).get("displayName"),
                "language": language_of(profile),
                METADATA_EVENT_ID: event.event_id,
            }
            try:
                responses = None
                if tools.done_step(event, STEP_RASA):
                    # an earlier attempt may have got through: Rasa's tracker knows
                    try:
                        responses = await self.rasa.recorded_turn(user, METADATA_EVENT_ID, event.event_id)
                    except RasaRejected:
                        responses = None
                    if responses is not None:
                        log.info("turn found in Rasa's tracker; answered, not sent again")
                if responses is None:
                    await tools.step(event, STEP_RASA)
                    responses = await self.rasa.send(user, text, metadata)
            except RasaUnavailable as exc:
                log.warning("%s; message kept for a retry", exc)
                await tools.apologise(event, profile)
                return Outcome.RETRY
            except RasaRejected as exc:
                report_log.error("Rasa refused a message: %s", exc)
                observability.capture_message(f"Rasa refused a message: {exc}")
                await tools.apologise(event, profile)
                return Outcome.DONE
        finally:
            if loading is not None:
                await loading
        if self.ops_alerts is not None:  # recurring problems: recorded for Slack, never sent to LINE
            responses = await self.ops_alerts.take(responses)
        if self.follow_ups is not None:  # a promised time: scheduled, never sent (follow_ups.py)
            responses = await self.follow_ups.schedule_from(responses, user)
        case: Optional[Case] = None
        contexts = bot_payloads.handoff_payloads(responses)
        if contexts:
            # ownership moves to the agents before the customer reads "a person will take over"
            photos = await self.photos.recent(user)
            case = await self.handoff.open_from_bot(user, contexts[-1], photos)
        elif await self.handoff.cases.owner(user) != BOT:
            log.info("bot answer not sent: a person owns this conversation now")
            return Outcome.DONE
        responses = await self.account_links.offer(responses, user, profile)
        batches = self.postbacks.sign_batches(line_messages.convert(responses), user)
        if not await tools.deliver(event, batches, quote=await self._quote_answer(event, responses)):
            # the turn is in Rasa's tracker (STEP_RASA): the retry delivers it, not re-sends it
            log.warning("LINE unavailable; the answer stays pending for a retry")
            return Outcome.RETRY
        if case is not None:
            await self.handoff.announce(case)
        await tools.delivery.mark_read(event)
        return Outcome.DONE

    async def _quote_answer(self, event: StoredEvent, responses: List[Dict[str, Any]]) -> bool:
        """Does this answer quote the customer's message? When it answers the complaint
        itself (remedies offered, or a person takes over), and when the customer wrote
        again before it came (the answer then says which message it is about)."""
        if bot_payloads.answers_the_complaint(responses):
            return True
        later = [p for p in await self.tools.store.pending(event.user_id) if p.event_id != event.event_id]
        return any(p.timestamp > event.timestamp for p in later)


__all__ = ["METADATA_EVENT_ID", "RasaTurn"]
