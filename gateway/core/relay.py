"""The relay of an open case: the customer's messages to the thread, agents' replies to LINE.

- Customer messages while a case is open go into the thread and into Rasa's tracker
  (a user event), so the whole history, bot and human turns, stays in one place. While
  the thread cannot take them (no thread yet, Slack down) they wait in the case's
  backlog, in order, and are posted after the card (`flush_backlog`).
- An agent's thread reply claims an unclaimed case, reaches the customer by push, is
  written to the tracker as a bot event with the agent's name, and is marked delivered.
  A reply that starts with an internal-note marker stays in Slack. A reply that starts
  with a Slack quote of something the customer said quotes that message on LINE.
- The reply book (gateway/agent_replies.yml, core/replies.py) holds back a bare "can't"
  or blame-shifting reply the first time: only its agent is warned, with a better draft.
- Each reply is journalled before it is handled and marked done after, so a gateway
  killed before the push delivers it after its restart (`resume_agent_replies`, with the
  same LINE retry key: shown once).
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gateway.core.case_steps import AgentDeskError, CaseSteps
from gateway.core.cases import CLAIMED, OPEN, RESOLVED, Case
from gateway.core.rasa_client import RasaError
from gateway.core.replies import ReplyBook, case_values, customer_language, text_digest, warning_message

log = logging.getLogger(__name__)

# Thread replies starting with one of these are notes for colleagues, never sent.
NOTE_MARKERS = ("//", "#note", "(note)", "メモ:", "メモ：", "内部:", "内部：")


def is_internal_note(text: str) -> bool:
    return text.strip().lower().startswith(NOTE_MARKERS)


def quoted_reply(text: str, quotes: Sequence[Dict[str, str]]) -> Tuple[str, Optional[str]]:
    """An agent's reply that starts with a Slack quote ("> " lines) of something the
    customer said: (the reply without the quote, that message's quoteToken), so the
    customer sees on LINE which message is answered. The latest matching message wins;
    without a match, or with nothing after the quote, the text goes as written."""
    lines = text.split("\n")
    quoted = []
    while lines and lines[0].lstrip().startswith(">"):
        quoted.append(lines.pop(0).lstrip()[1:].strip())
    rest = "\n".join(lines).strip()
    said = _squeeze(" ".join(quoted))
    if not said or not rest:
        return text, None
    for entry in reversed(list(quotes)):
        if said in _squeeze(str(entry.get("text") or "")):
            return rest, str(entry.get("token") or "") or None
    return text, None


def _squeeze(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def customer_line(case: Case, text: str) -> str:
    name = (case.context.get("customer") or {}).get("display_name") or "Customer"
    return f"👤 *{name}*: {text}"


def count_relayed(case: Case, direction: str, messages: int = 1) -> None:
    """Adds to the case's count of messages relayed "to_agent" or "to_customer"."""
    case.relayed[direction] = case.relayed.get(direction, 0) + messages


class Relay:
    AGENT_EVENT_LEASE_S = 15.0

    def __init__(self, steps: CaseSteps, replies: ReplyBook) -> None:
        self.steps = steps
        self.cases = steps.cases
        # checks agents' replies before they reach the customer (gateway/agent_replies.yml)
        self.replies = replies

    # --- the customer speaks while a case is open -----------------------------------------
    async def customer_message(self, case: Case, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        await self._record_in_tracker(
            case.user_id,
            [
                {
                    "event": "user",
                    "text": text,
                    "timestamp": self.steps.clock(),
                    "parse_data": {
                        "intent": {"name": "relayed_to_agent", "confidence": 1.0},
                        "entities": [],
                        "text": text,
                    },
                    "metadata": {**(metadata or {}), "case_id": case.case_id, "relayed": "to_agent"},
                }
            ],
        )
        await self._to_thread(case, {"text": text})

    async def customer_photo(self, case: Case, photo: Dict[str, Any]) -> None:
        await self._to_thread(case, {"photo": photo})

    async def _to_thread(self, case: Case, entry: Dict[str, Any]) -> None:
        # Behind a backlog, a message waits its turn so the thread keeps the customer's order.
        if case.thread_ts and not case.context.get("backlog"):
            try:
                await self._post_entry(case, entry)
                await self._count(case.case_id, "to_agent")
                return
            except AgentDeskError as exc:
                log.warning("customer message not posted to case %s (%s); kept", case.case_id, exc)

        def keep(c: Case) -> None:
            c.context.setdefault("backlog", []).append(entry)

        await self.cases.update(case.case_id, keep)

    async def flush_backlog(self, case: Case) -> None:
        """Posts what the customer sent while the thread could not take it, in order; what
        fails stays in the backlog for the announcer's next round."""
        backlog = list(case.context.get("backlog") or [])
        sent = 0
        try:
            for entry in backlog:
                await self._post_entry(case, entry)
                sent += 1
        except AgentDeskError as exc:
            log.warning(
                "case %s: %d of %d waiting messages posted (%s); the rest later", case.case_id, sent, len(backlog), exc
            )
        if not sent:
            return

        def clear_and_count(c: Case) -> None:
            c.context["backlog"] = c.context.get("backlog", [])[sent:]
            count_relayed(c, "to_agent", sent)

        await self.cases.update(case.case_id, clear_and_count)

    async def _post_entry(self, case: Case, entry: Dict[str, Any]) -> None:
        """One thing the customer sent (a text or a photo) into the case's thread."""
        if entry.get("photo"):
            await self.steps.desk.post_photo(case, entry["photo"])
        else:
            await self.steps.desk.post_in_thread(case, customer_line(case, entry["text"]))

    # --- an agent replies in the thread ------------------------------------------------------
    async def agent_reply(
        self, channel: str, thread_ts: str, message_ts: str, agent_id: str, agent_name: str, text: str
    ) -> str:
        """An agent wrote in a case thread. Returns what happened: "note", "no_case",
        "closed", "delivered", "not_delivered", "warned" (held back by the reply book: the
        agent alone was told why; the same text sent again goes out) or "duplicate".

        The reply is journalled first and marked done once handled, so a gateway killed
        before the push to LINE delivers it after its restart (`resume_agent_replies`)."""
        key = f"{channel}:{message_ts}"
        entry = {
            "channel": channel,
            "thread_ts": thread_ts,
            "message_ts": message_ts,
            "agent_id": agent_id,
            "agent_name": agent_name,
            "text": text,
        }
        if not await self.cases.journal_agent_event(key, entry):
            return "duplicate"
        if not await self.cases.take_agent_event(key, self.AGENT_EVENT_LEASE_S):
            return "duplicate"  # pragma: no cover - another process resumed it already
        outcome = await self._agent_reply(**entry)
        await self.cases.agent_event_done(key)
        return outcome

    async def resume_agent_replies(self) -> int:
        """Agent replies journalled but never finished (the gateway died mid-way) are
        handled now; the LINE push carries the same retry key, so one that did go out
        before the crash is not shown twice. Returns how many were resumed."""
        resumed = 0
        for entry in await self.cases.pending_agent_events():
            key = entry.pop("key")
            if not await self.cases.take_agent_event(key, self.AGENT_EVENT_LEASE_S):
                continue  # being handled (here or by another gateway process)
            outcome = await self._agent_reply(**entry)
            await self.cases.agent_event_done(key)
            log.info("agent reply resumed after a restart: %s", outcome)
            resumed += 1
        return resumed

    async def _agent_reply(
        self, channel: str, thread_ts: str, message_ts: str, agent_id: str, agent_name: str, text: str
    ) -> str:
        desk = self.steps.desk
        case = await self.cases.by_thread(channel, thread_ts)
        if case is None:
            return "no_case"
        if is_internal_note(text):
            return "note"
        if case.status == RESOLVED:
            await desk.post_in_thread(
                case, "This case is resolved: the bot has the conversation again, so that reply was not sent."
            )
            return "closed"
        if case.status == OPEN:
            case = await self.steps.claim(case, agent_id, agent_name)
        # check ownership right before the send: resolved meanwhile -> not sent
        current = await self.cases.get(case.case_id)
        if current is None or current.status != CLAIMED:
            return "closed"
        if await self._held_for_a_warning(current, message_ts, agent_id, agent_name, text):
            return "warned"
        # "> what the customer said" on the first lines: LINE shows the reply quoting it
        text, quote_token = quoted_reply(text, current.quotes)
        delivered = await self.steps.customers.send_agent_text(
            case.user_id, text, agent_name, idempotency_key=f"agent:{channel}:{message_ts}", quote_token=quote_token
        )
        if delivered:
            await self._record_in_tracker(
                case.user_id,
                [
                    {
                        "event": "bot",
                        "text": text,
                        "timestamp": self.steps.clock(),
                        "metadata": {"agent_id": agent_id, "agent_name": agent_name, "case_id": case.case_id},
                    }
                ],
            )
            await self._count(case.case_id, "to_customer")
        try:
            await desk.mark_delivered(case, message_ts, delivered)
        except AgentDeskError as exc:
            log.warning("could not mark a relay as delivered (%s)", exc)
        return "delivered" if delivered else "not_delivered"

    async def _held_for_a_warning(self, case: Case, message_ts: str, agent_id: str, agent_name: str, text: str) -> bool:
        """Whether the reply book holds this reply back. The first time an agent sends a
        flagged text in a case, only they are warned (with a better draft in the customer's
        language) and nothing is sent; the same text sent again goes out unchanged. The
        warned message itself, resumed after a crash, stays held and is not warned twice."""
        language = customer_language(case.context)
        finding = self.replies.check(text, language)
        if finding is None:
            return False
        digest = text_digest(text)
        warned = await self.cases.reply_warning(case.case_id, agent_id, digest)
        if warned is not None:
            return warned == message_ts
        note = warning_message(self.replies, finding, language, case_values(case.context, agent_name))
        try:
            await self.steps.desk.warn_agent(case, agent_id, note)
        except AgentDeskError as exc:
            log.warning("case %s: a %s reply could not be warned about (%s); sent", case.case_id, finding.kind, exc)
            return False
        await self.cases.remember_reply_warning(case.case_id, agent_id, digest, message_ts)
        log.info("case %s: a reply held back (%s); its agent was warned", case.case_id, finding.kind)
        return True

    # --- helpers ---------------------------------------------------------------------------
    async def _record_in_tracker(self, user_id: str, events: List[Dict[str, Any]]) -> None:
        try:
            await self.steps.rasa.append_events(user_id, events)
        except RasaError as exc:
            # the Slack thread still has it; the tracker copy is the history, not the relay
            log.warning("relayed turn not written to Rasa's tracker (%s)", exc)

    async def _count(self, case_id: str, direction: str) -> None:
        await self.cases.update(case_id, lambda c: count_relayed(c, direction))


__all__ = ["NOTE_MARKERS", "Relay", "count_relayed", "customer_line", "is_internal_note", "quoted_reply"]
