"""LINE's account link on the gateway's side (docs/account-link.md): the bot's offer and
LINE's accountLink event.

- The bot's `{"account_link": {}}` payload (bot_payloads.py) -> a link token for the
  customer (LINE API) and a button to ACCOUNT_LINK_LOGIN_URL?linkToken=...; without a
  token or that setting the offer is left out, the rest of the answer still goes.
- accountLink event, result "ok" with a nonce: any open form is closed and
  `EXTERNAL_account_linked` triggered in Rasa with the nonce in the `account_link_nonce`
  slot (the bot verifies and uses it once; a redelivered event is deduplicated like any
  other, and a nonce used before links nothing); the bot's answer goes with the event's
  reply token. "failed" -> a polite text. While a person has the conversation nothing is
  linked (the bot is paused): the customer is told to try again later. Action server or
  Rasa down: an apology and the event waits for a retry. The nonce is never logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode

from gateway import bot_payloads, observability, texts
from gateway.core.events import StoredEvent
from gateway.core.handoff import HandoffService
from gateway.core.rasa_client import RasaClient, RasaRejected, RasaUnavailable
from gateway.customer_input import PostbackSigner
from gateway.delivery import STEP_RASA
from gateway.event_tools import EventTools, Outcome, user_id
from gateway.health import HealthChecker
from gateway.line import messages as line_messages
from gateway.line.api import LineApi, LineApiError
from gateway.line.profiles import language_of

log = logging.getLogger(__name__)
report_log = logging.getLogger("gateway.report")  # explicit Sentry reports, scrubbed

ACCOUNT_LINKED_INTENT = "EXTERNAL_account_linked"
ACCOUNT_LINK_NONCE_SLOT = "account_link_nonce"


class AccountLinks:
    def __init__(
        self,
        tools: EventTools,
        line: LineApi,
        rasa: RasaClient,
        health: HealthChecker,
        handoff: HandoffService,
        postbacks: PostbackSigner,
        login_url: Optional[str] = None,
    ) -> None:
        self.tools = tools
        self.line = line
        self.rasa = rasa
        self.health = health
        self.handoff = handoff
        self.postbacks = postbacks
        self.login_url = login_url  # the shop's login page (None: no offer)

    async def event(self, event: StoredEvent) -> Outcome:
        """LINE's accountLink event: the bot links the customer with the event's nonce
        (see the module docstring); the nonce is never logged."""
        tools = self.tools
        payload = event.payload
        user = user_id(payload)
        link = payload.get("link") or {}
        nonce = link.get("nonce")
        if not user:
            log.info("accountLink event without a user id; nothing to do")
            return Outcome.DONE
        if link.get("result") != "ok" or not isinstance(nonce, str) or not nonce:
            log.info("LINE account link did not succeed (result %r)", str(link.get("result"))[:20])
            return await tools.say(event, "account_link_failed")
        if await self.handoff.cases.open_case_for(user) is not None:
            log.info("account link not done: a person has the conversation")
            return await tools.say(event, "account_link_later")
        profile, action_ok = await asyncio.gather(tools.profile(event), self.health.action_server(use_cache=True))
        if not action_ok:
            log.warning("action server unreachable; account link kept for a retry")
            await tools.apologise(event, profile)
            return Outcome.RETRY
        try:
            # A retry after a crash triggers again: the bot then finds the nonce used by
            # this very customer and says the link is in place (nothing is linked twice).
            await tools.step(event, STEP_RASA)
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
            await tools.apologise(event, profile)
            return Outcome.RETRY
        except RasaRejected as exc:
            report_log.error("Rasa refused the account link: %s", exc)
            observability.capture_message(f"Rasa refused the account link: {exc}")
            await tools.apologise(event, profile)
            return Outcome.DONE
        responses = await self.offer(responses, user, profile)
        batches = self.postbacks.sign_batches(line_messages.convert(responses), user)
        if not await tools.deliver(event, batches):
            log.warning("LINE unavailable; the account link answer stays pending for a retry")
            return Outcome.RETRY
        return Outcome.DONE

    async def offer(
        self, responses: List[Dict[str, Any]], user: str, profile: Optional[Dict[str, Any]]
    ) -> List[Dict[str, Any]]:
        """The bot's `{"account_link": {}}` payloads made into the button to the shop's
        login page with a fresh link token (line/messages.py draws it); left out when
        there is no login page or LINE gives no token (the rest of the answer goes)."""
        if not bot_payloads.offers_account_link(responses):
            return responses
        language = language_of(profile)
        card: Optional[Dict[str, Any]] = None
        if self.login_url:
            try:
                token = await self.line.issue_link_token(user)
                joiner = "&" if "?" in self.login_url else "?"
                card = {
                    "url": f"{self.login_url}{joiner}{urlencode({'linkToken': token})}",
                    "title": texts.text("account_link_title", language),
                    "text": texts.text("account_link_text", language),
                    "label": texts.text("account_link_button", language),
                }
            except LineApiError as exc:
                report_log.warning("no LINE link token (HTTP %s); the account link offer is left out", exc.status)
        else:
            log.info("ACCOUNT_LINK_LOGIN_URL is not set; the account link offer is left out")
        return bot_payloads.with_account_link_card(responses, card)


__all__ = ["ACCOUNT_LINKED_INTENT", "ACCOUNT_LINK_NONCE_SLOT", "AccountLinks"]
