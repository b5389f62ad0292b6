"""Keeps what was said in a case for the quality audit (bot/audit/): a snapshot of the
case's turns in the orders database (`case_transcripts`), taken when the case reaches an
end: a remedy applied, a handoff, an agent's resolution, the satisfaction answer. Each
snapshot replaces the one before and holds every earlier turn of the case too, with the
messages the action is sending right now (the tracker does not have them yet)."""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import services
from bot.audit.transcript import case_events, pending_turns, turns_from_events

log = logging.getLogger(__name__)


def keep_transcript(
    tracker: Tracker,
    case_id: Optional[Any],
    dispatcher: Optional[CollectingDispatcher] = None,
    domain: Optional[Mapping[str, Any]] = None,
) -> None:
    """Saves the case's turns; never fails the customer's turn (the audit is not worth a
    broken answer), and never logs what was said."""
    if not case_id:
        return
    now = services.now()
    try:
        turns = turns_from_events(case_events(tracker.events, str(case_id)))
        if dispatcher is not None:
            turns += pending_turns(
                dispatcher.messages,
                (domain or {}).get("responses"),
                services.language(tracker),
                tracker.current_slot_values(),
                now.isoformat(),
            )
        services.repository().save_case_transcript(str(case_id), turns, now)
    except Exception as error:  # any failure: the conversation goes on
        # the type only: a database error's text can quote the turns (customer words)
        log.warning("case %s: transcript not kept for the audit (%s)", case_id, type(error).__name__)
