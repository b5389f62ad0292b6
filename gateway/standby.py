"""Standby (`"mode": "standby"`): another channel (e.g. a module channel) has the chat.

The gateway sends NOTHING to LINE for the event (no loading animation, no reply, no
push, no apology; delivery.py's `deliver` and `apologise` refuse it as a last guard too),
and the bot is not run. The customer's words are still kept: with an open case they go
to the case thread and Rasa's tracker as usual (case_messages.py); otherwise a text
message (other messages as "[image]", ..., a tap as "[button]") is appended to Rasa's
tracker as a user event (intent `relayed_to_agent`, metadata `line_mode: standby` and
the event id) without running the bot, so the history stays whole when the chat comes
back. Rasa down: the event waits for a retry like any other; noted as step "rasa", so it
is written once. Other standby events (follow, join, ...) are logged and done.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from gateway import observability
from gateway.case_messages import CaseMessages
from gateway.core.events import StoredEvent
from gateway.core.handoff import HandoffService
from gateway.core.rasa_client import RasaClient, RasaRejected, RasaUnavailable
from gateway.delivery import STEP_RASA
from gateway.event_tools import EventTools, Outcome, user_id
from gateway.rasa_turn import METADATA_EVENT_ID

log = logging.getLogger(__name__)
report_log = logging.getLogger("gateway.report")  # explicit Sentry reports, scrubbed


class Standby:
    def __init__(
        self,
        tools: EventTools,
        rasa: RasaClient,
        handoff: HandoffService,
        case_messages: CaseMessages,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tools = tools
        self.rasa = rasa
        self.handoff = handoff
        self.case_messages = case_messages
        self._clock = clock

    async def record(self, event: StoredEvent) -> Outcome:
        """Another channel has the chat: record, never answer (see the module docstring)."""
        payload = event.payload
        etype, user = payload.get("type"), user_id(payload)
        log.info("LINE %s event in standby mode: recorded, nothing sent to LINE", etype)
        if etype not in ("message", "postback") or not user:
            return Outcome.DONE
        case = await self.handoff.cases.open_case_for(user)
        if case is not None:
            return await self.case_messages.relay(event, case)
        message = payload.get("message") or {}
        if etype == "postback":
            text = "[button]"  # its data is the bot's, not the customer's words
        elif message.get("type") == "text":
            text = str(message.get("text") or "")
        else:
            text = f"[{message.get('type') or 'message'}]"
        try:
            if self.tools.done_step(event, STEP_RASA) and await self._in_tracker(user, event):
                return Outcome.DONE  # written before a crash
            await self.tools.step(event, STEP_RASA)
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


__all__ = ["Standby"]
