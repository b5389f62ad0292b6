"""The case logic of a handoff, between the customer (LINE), the agents (Slack) and Rasa.

No platform SDK here: the agents' side is an `AgentDesk` (gateway/slack/desk.py) and the
customer's side a `CustomerChannel` (gateway/customer.py), so the rules of a
case read in one place:

- The bot's handoff action sends the case context; `open_from_bot` records the case
  (ownership -> waiting) before anything else, so from that moment the customer's
  messages go to the agents' thread, never to the bot.
- `announce` posts the card and the transcript. If the agents' side is down the case
  stays open without a thread and `announce_pending` retries; whatever the customer
  said meanwhile is kept in the case's backlog and posted after the card.
- Customer messages while a case is open go into the thread and into Rasa's tracker
  (a user event), so the whole history, bot and human turns, stays in one place.
- An agent's thread reply claims an unclaimed case, reaches the customer by push, is
  written to the tracker as a bot event with the agent's name, and is marked delivered.
  A reply that starts with an internal-note marker stays in Slack.
- Approve applies a remedy the bot could not grant alone, through the bot's own
  idempotent remedy path (Rasa's trigger_intent -> action), so it is applied once. The
  gateway signs who approved what (contracts/approvals.py, AGENT_APPROVAL_KEY); the action
  server verifies it and re-decides the remedy with the policy engine. Above an agent's
  own limit it answers with a notice for the thread: a supervisor must approve as well.
- Resolve hands the conversation back: ownership -> bot, Rasa resumed, and the bot
  asks the customer a short satisfaction question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

from contracts.approvals import AgentApproval, Approver, add_approver, agent_notices, sign_approval
from gateway.core.cases import (
    CLAIMED,
    OPEN,
    RESOLVED,
    Case,
    CaseConflict,
    CaseStore,
)
from gateway.core.rasa_client import RasaClient, RasaError

log = logging.getLogger(__name__)

# Thread replies starting with one of these are notes for colleagues, never sent.
NOTE_MARKERS = ("//", "#note", "(note)", "メモ:", "メモ：", "内部:", "内部：")
RESOLVED_INTENT = "EXTERNAL_agent_resolved"
APPROVED_INTENT = "EXTERNAL_agent_approved_remedy"


class AgentDeskError(Exception):
    """The agents' side (Slack) did not take a post; the caller keeps what it tried."""


class AgentDesk(Protocol):
    async def post_case(self, case: Case) -> tuple: ...  # -> (channel, thread ts)
    async def update_card(self, case: Case) -> None: ...
    async def post_in_thread(self, case: Case, text: str, *, broadcast: bool = False) -> None: ...
    async def post_photo(self, case: Case, photo: Dict[str, Any]) -> None: ...
    async def mark_delivered(self, case: Case, message_ts: str, delivered: bool) -> None: ...


class CustomerChannel(Protocol):
    async def send_agent_text(
        self, user_id: str, text: str, agent_name: str, idempotency_key: Optional[str] = None
    ) -> bool: ...
    async def send_bot_responses(self, user_id: str, responses: List[Dict[str, Any]]) -> bool: ...


def is_internal_note(text: str) -> bool:
    return text.strip().lower().startswith(NOTE_MARKERS)


def handoff_payloads(responses: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The case contexts in Rasa's answer (custom payload {"handoff": {...}})."""
    found = []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("handoff"), dict):
            found.append(custom["handoff"])
    return found


class HandoffService:
    def __init__(
        self,
        cases: CaseStore,
        rasa: RasaClient,
        desk: AgentDesk,
        customers: CustomerChannel,
        *,
        reannounce_after_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        approval_key: str = "",
    ) -> None:
        self.cases = cases
        self.rasa = rasa
        self.desk = desk
        self.approval_key = approval_key  # signs agents' approvals for the action server
        self._approval_locks: Dict[str, asyncio.Lock] = {}
        self.customers = customers
        self.reannounce_after_s = reannounce_after_s
        self._clock = clock

    # --- a case opens ------------------------------------------------------------------------
    async def open_from_bot(self, user_id: str, context: Dict[str, Any], photos: Sequence[Dict[str, Any]] = ()) -> Case:
        case_id = str(context.get("case_id") or f"H{int(self._clock() * 1000)}")
        case = Case(case_id=case_id, user_id=user_id, context=context, created_at=self._clock(), photos=list(photos))
        case, new = await self.cases.open(case)
        if not new:
            log.info("customer already has open case %s; context added to it", case.case_id)
        return case

    async def announce(self, case: Case) -> Case:
        """Posts the card, transcript, photos and backlog; on failure the case waits for
        `announce_pending`."""
        if case.thread_ts:
            return case
        try:
            channel, ts = await self.desk.post_case(case)
        except AgentDeskError as exc:
            log.error("could not post case %s to the agents (%s); will retry", case.case_id, exc)
            return case
        case = await self.cases.set_thread(case.case_id, channel, ts, self._clock())
        if case.status != OPEN:
            # Claimed from the card while its transcript was still being posted: the claim
            # could not reach a thread that was not recorded yet, so the card shows it now.
            await self._safe_desk(self.desk.update_card(case))
            if case.agent_name:
                await self._safe_desk(self.desk.post_in_thread(case, f"🙋 {case.agent_name} claimed this case."))
        for photo in case.photos:
            try:
                await self.desk.post_photo(case, photo)
            except AgentDeskError as exc:
                log.warning("photo not posted to case %s (%s)", case.case_id, exc)
        await self._flush_backlog(case)
        return case

    async def _flush_backlog(self, case: Case) -> None:
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
            _count_relayed(c, "to_agent", sent)

        await self.cases.update(case.case_id, clear_and_count)

    async def announce_pending(self) -> int:
        """Posts cases that have no thread yet (the agents' side was down) and re-announces
        unclaimed ones older than `reannounce_after_s`. Returns how many posts were made."""
        posted = 0
        now = self._clock()
        await self.resume_agent_replies()
        for case in await self.cases.open_cases():
            if not case.thread_ts:
                if (await self.announce(case)).thread_ts:
                    posted += 1
                continue
            if case.context.get("backlog"):
                # Messages a failed post (or a race with the first announcement) left behind.
                await self._flush_backlog(case)
            elif case.status == OPEN and now - (case.announced_at or case.created_at) >= self.reannounce_after_s:
                waited = int((now - case.created_at) // 60)
                try:
                    await self.desk.post_in_thread(
                        case, f"⏰ Still unclaimed after {waited} min: please claim this case.", broadcast=True
                    )
                except AgentDeskError as exc:
                    log.warning("re-announce of case %s failed (%s)", case.case_id, exc)
                    continue

                def mark(c: Case) -> None:
                    c.announced_at = now

                await self.cases.update(case.case_id, mark)
                posted += 1
        return posted

    # --- the customer speaks while a case is open -----------------------------------------
    async def customer_message(self, case: Case, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        await self._record_in_tracker(
            case.user_id,
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

    async def _post_entry(self, case: Case, entry: Dict[str, Any]) -> None:
        """One thing the customer sent (a text or a photo) into the case's thread."""
        if entry.get("photo"):
            await self.desk.post_photo(case, entry["photo"])
        else:
            await self.desk.post_in_thread(case, customer_line(case, entry["text"]))

    # --- agents act ------------------------------------------------------------------------
    AGENT_EVENT_LEASE_S = 15.0

    async def agent_reply(
        self, channel: str, thread_ts: str, message_ts: str, agent_id: str, agent_name: str, text: str
    ) -> str:
        """An agent wrote in a case thread. Returns what happened: "note", "no_case",
        "closed", "delivered", "not_delivered" or "duplicate".

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
        case = await self.cases.by_thread(channel, thread_ts)
        if case is None:
            return "no_case"
        if is_internal_note(text):
            return "note"
        if case.status == RESOLVED:
            await self.desk.post_in_thread(
                case, "This case is resolved: the bot has the conversation again, so that reply was not sent."
            )
            return "closed"
        if case.status == OPEN:
            case = await self._claim(case, agent_id, agent_name)
        # check ownership right before the send: resolved meanwhile -> not sent
        current = await self.cases.get(case.case_id)
        if current is None or current.status != CLAIMED:
            return "closed"
        delivered = await self.customers.send_agent_text(
            case.user_id, text, agent_name, idempotency_key=f"agent:{channel}:{message_ts}"
        )
        if delivered:
            await self._record_in_tracker(
                case.user_id,
                [
                    {
                        "event": "bot",
                        "text": text,
                        "timestamp": self._clock(),
                        "metadata": {"agent_id": agent_id, "agent_name": agent_name, "case_id": case.case_id},
                    }
                ],
            )
            await self._count(case.case_id, "to_customer")
        try:
            await self.desk.mark_delivered(case, message_ts, delivered)
        except AgentDeskError as exc:
            log.warning("could not mark a relay as delivered (%s)", exc)
        return "delivered" if delivered else "not_delivered"

    async def claim(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        case = await self.cases.get(case_id)
        if case is None:
            raise KeyError(case_id)
        return await self._claim(case, agent_id, agent_name)

    async def _claim(self, case: Case, agent_id: str, agent_name: str) -> Case:
        before = case.status
        case = await self.cases.claim(case.case_id, agent_id, agent_name, self._clock())
        if before == OPEN:
            await self._safe_desk(self.desk.update_card(case))
            await self._safe_desk(self.desk.post_in_thread(case, f"🙋 {agent_name} claimed this case."))
        return case

    async def approve(self, case_id: str, remedy: str, agent_id: str, agent_name: str) -> Case:
        """Asks the bot to apply `remedy` for the case, with a signed record of everyone who
        approved it (once, whatever the clicks). The bot decides: applied (the customer is
        told), refused, or waiting for a supervisor (only the thread is told)."""
        case = await self.cases.get(case_id)
        if case is None:
            raise KeyError(case_id)
        if case.status == RESOLVED:
            raise CaseConflict(case, "the case is already resolved")
        if not self.approval_key:
            await self._safe_desk(
                self.desk.post_in_thread(
                    case, "⚠️ Approvals are off: AGENT_APPROVAL_KEY is not set on the gateway. Nothing was applied."
                )
            )
            return case
        # One approval of a case at a time in this gateway: a double click must not reach
        # Rasa while the first is still running (the second would find the case paused).
        lock = self._approval_locks.setdefault(case_id, asyncio.Lock())
        async with lock:
            return await self._approve(case, remedy, agent_id, agent_name)

    async def _approve(self, case: Case, remedy: str, agent_id: str, agent_name: str) -> Case:
        case_id = case.case_id
        if case.status == OPEN:
            case = await self._claim(case, agent_id, agent_name)

        def add(c: Case) -> None:
            so_far = [Approver(**a) for a in c.approvals.get(remedy, [])]
            c.approvals[remedy] = [asdict(a) for a in add_approver(so_far, Approver(agent_id, agent_name))]

        case = await self.cases.update(case_id, add)
        record = sign_approval(
            self.approval_key,
            AgentApproval(
                case_id=case.case_id,
                sender_id=case.user_id,
                remedy=remedy,
                approvers=tuple(Approver(**a) for a in case.approvals[remedy]),
                issued_at=self._clock(),
            ),
        )
        responses = await self._run_in_bot(
            case.user_id, APPROVED_INTENT, agent_name, {"approved_remedy": remedy, "agent_approval": record}
        )
        for_customer, notices = agent_notices(responses)
        if not responses:
            await self._safe_desk(
                self.desk.post_in_thread(
                    case,
                    f"⚠️ The bot did not answer {agent_name}'s approval of {remedy}; nothing was applied. "
                    "Press Approve again.",
                )
            )
            return case
        if notices:
            for notice in notices:
                await self._safe_desk(self.desk.post_in_thread(case, approval_notice_text(notice, agent_name)))
            return case
        delivered = await self.customers.send_bot_responses(case.user_id, for_customer)

        def note(c: Case) -> None:
            c.approved.append({"remedy": remedy, "by": agent_name, "at": self._clock(), "delivered": delivered})

        case = await self.cases.update(case_id, note)
        told = " / ".join(r["text"] for r in for_customer if r.get("text")) or "(nothing)"
        await self._safe_desk(self.desk.update_card(case))
        await self._safe_desk(
            self.desk.post_in_thread(case, f"✅ {agent_name} approved {remedy}. The customer was told: {told}")
        )
        return case

    async def resolve(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        """Hands the conversation back to the bot."""
        case = await self.cases.resolve(case_id, agent_id, agent_name, self._clock())
        try:
            responses = await self._run_in_bot(case.user_id, RESOLVED_INTENT, agent_name, {})
            await self.customers.send_bot_responses(case.user_id, responses)
        except RasaError as exc:
            # ownership is already the bot's: the customer's next message reaches Rasa,
            # which resumes on its own once it sees the resume event below retried
            log.error("Rasa did not take the case back (%s)", exc)
        await self._safe_desk(self.desk.update_card(case))
        await self._safe_desk(
            self.desk.post_in_thread(case, f"🏁 {agent_name} resolved this case; the bot has the conversation again.")
        )
        return case

    # --- helpers ---------------------------------------------------------------------------
    async def _run_in_bot(
        self, user_id: str, intent: str, agent_name: str, slots: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        # A paused conversation stopped before Rasa's usual action_listen; add it, so the
        # triggered intent is read like any customer turn (rules match on it).
        events = [
            {"event": "resume"},
            {"event": "action", "name": "action_listen"},
            {"event": "slot", "name": "agent_name", "value": agent_name},
        ]
        events += [{"event": "slot", "name": k, "value": v} for k, v in slots.items()]
        await self.rasa.append_events(user_id, events)
        return await self.rasa.trigger_intent(user_id, intent)

    async def _record_in_tracker(self, user_id: str, events: List[Dict[str, Any]]) -> None:
        try:
            await self.rasa.append_events(user_id, events)
        except RasaError as exc:
            # the Slack thread still has it; the tracker copy is the history, not the relay
            log.warning("relayed turn not written to Rasa's tracker (%s)", exc)

    async def _count(self, case_id: str, direction: str) -> None:
        await self.cases.update(case_id, lambda c: _count_relayed(c, direction))

    @staticmethod
    async def _safe_desk(call: Any) -> None:
        try:
            await call
        except AgentDeskError as exc:
            log.warning("Slack update failed (%s); the case state is saved", exc)


REFUSAL_TEXTS = {
    "approval_not_verified": "the approval could not be verified",
    "not_offered_now": "the policy does not offer it for this case now (order, items or time changed)",
}


def approval_notice_text(notice: Dict[str, Any], agent_name: str) -> str:
    """What the thread reads when the bot did not apply an approved remedy."""
    remedy = notice.get("remedy") or "?"
    if notice.get("kind") == "needs_supervisor":
        by = ", ".join(str(n) for n in notice.get("approvers") or []) or agent_name
        return (
            f"⏳ {remedy} (¥{int(notice.get('value') or 0):,}) is above an agent's own limit "
            f"(¥{int(notice.get('agent_limit') or 0):,}): approved by {by}; a supervisor must approve it "
            f"too (press Approve). Nothing was applied or sent yet."
        )
    reason = REFUSAL_TEXTS.get(str(notice.get("reason")), str(notice.get("reason") or "refused"))
    return f"⚠️ {remedy} was not applied: {reason}. Nothing was sent to the customer."


def customer_line(case: Case, text: str) -> str:
    name = (case.context.get("customer") or {}).get("display_name") or "Customer"
    return f"👤 *{name}*: {text}"


__all__ = [
    "AgentDesk",
    "AgentDeskError",
    "CustomerChannel",
    "HandoffService",
    "handoff_payloads",
    "is_internal_note",
    "customer_line",
]


def _count_relayed(case: Case, direction: str, messages: int = 1) -> None:
    """Adds to the case's count of messages relayed "to_agent" or "to_customer"."""
    case.relayed[direction] = case.relayed.get(direction, 0) + messages
