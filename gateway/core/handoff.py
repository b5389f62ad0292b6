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
- A combination (remedies the policy lets an agent apply together) is approved the same
  way, its name ("send_item+refund_delivery_fee") as the remedy.
- Goodwill (the Goodwill modal: kind, amount, reason) is signed the same way too, remedy
  "goodwill" with the gesture in the record; the bot checks it against the policy. Above
  an agent's own limit it waits on the case (`pending_goodwill`) for a supervisor's
  Approve goodwill, re-signed with both approvers.
- Reassign gives the case to another member; Escalate tells the supervisors once.
- A suggested reply (the reply book's draft, edited in a modal) goes out as a thread reply
  does (`agent_reply`, keyed by the modal's view id) and is shown in the thread.
- Resolve hands the conversation back: ownership -> bot, Rasa resumed, and the bot
  asks the customer a short satisfaction question.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from contracts.approvals import AgentApproval, Approver, Goodwill, add_approver, agent_notices, sign_approval
from contracts.case_context import CaseContext
from contracts.vocabulary import GOODWILL, remedy_label
from gateway.core.cases import (
    CLAIMED,
    OPEN,
    RESOLVED,
    Case,
    CaseConflict,
    CaseStore,
)
from gateway.core.rasa_client import RasaClient, RasaError
from gateway.core.replies import (
    ReplyBook,
    case_values,
    customer_language,
    load_reply_book,
    text_digest,
    warning_message,
)

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
    async def warn_agent(self, case: Case, agent_id: str, text: str) -> None: ...  # only they see it
    async def escalate(self, case: Case, agent_name: str) -> None: ...  # tells the supervisors


class CustomerChannel(Protocol):
    async def send_agent_text(
        self,
        user_id: str,
        text: str,
        agent_name: str,
        idempotency_key: Optional[str] = None,
        quote_token: Optional[str] = None,
    ) -> bool: ...
    async def mark_read(self, read_token: str) -> None: ...
    async def send_bot_responses(self, user_id: str, responses: List[Dict[str, Any]]) -> bool: ...


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
        replies: Optional[ReplyBook] = None,
    ) -> None:
        self.cases = cases
        # checks agents' replies before they reach the customer (gateway/agent_replies.yml)
        self.replies = replies if replies is not None else load_reply_book()
        self.rasa = rasa
        self.desk = desk
        self.approval_key = approval_key  # signs agents' approvals for the action server
        self._approval_locks: Dict[str, asyncio.Lock] = {}
        self._announce_locks: Dict[str, asyncio.Lock] = {}
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
        `announce_pending`. One post per case: the turn that opened it and the announcer's
        loop may both get here, so the case is read again under its lock."""
        if case.thread_ts:
            return case
        async with self._announce_locks.setdefault(case.case_id, asyncio.Lock()):
            case = await self.cases.get(case.case_id) or case
            if case.thread_ts:
                return case  # the other one posted it
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
        if await self._held_for_a_warning(current, message_ts, agent_id, agent_name, text):
            return "warned"
        # "> what the customer said" on the first lines: LINE shows the reply quoting it
        text, quote_token = quoted_reply(text, current.quotes)
        delivered = await self.customers.send_agent_text(
            case.user_id, text, agent_name, idempotency_key=f"agent:{channel}:{message_ts}", quote_token=quote_token
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
            await self.desk.warn_agent(case, agent_id, note)
        except AgentDeskError as exc:
            log.warning("case %s: a %s reply could not be warned about (%s); sent", case.case_id, finding.kind, exc)
            return False
        await self.cases.remember_reply_warning(case.case_id, agent_id, digest, message_ts)
        log.info("case %s: a reply held back (%s); its agent was warned", case.case_id, finding.kind)
        return True

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
            if case.unread_token:
                # a person has the case open now: LINE shows the customer their messages read
                await self.customers.mark_read(case.unread_token)
        return case

    async def approve(self, case_id: str, remedy: str, agent_id: str, agent_name: str) -> Case:
        """Asks the bot to apply `remedy` for the case, with a signed record of everyone who
        approved it (once, whatever the clicks). The bot decides: applied (the customer is
        told), refused, or waiting for a supervisor (only the thread is told)."""
        case = await self._approvable(case_id)
        if case is None:
            return await self._get(case_id)
        # One approval of a case at a time in this gateway: a double click must not reach
        # Rasa while the first is still running (the second would find the case paused).
        lock = self._approval_locks.setdefault(case_id, asyncio.Lock())
        async with lock:
            case = await self.cases.get(case_id) or case  # as it is after any click before this one
            applied = [a for a in case.approved if a.get("remedy") != GOODWILL]
            if applied:
                # the bot applies one remedy per case anyway; the thread says why nothing happens
                await self._safe_desk(
                    self.desk.post_in_thread(
                        case,
                        f"ℹ️ {remedy_label(applied[-1].get('remedy')).en} was already applied by "
                        f"{applied[-1].get('by') or '?'}; nothing more was done.",
                    )
                )
                return case
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

    # --- goodwill: an amount an agent decides, checked by the bot's policy -------------------
    async def goodwill(self, case_id: str, goodwill: Goodwill, agent_id: str, agent_name: str) -> Case:
        """Asks the bot to give `goodwill` (from the Goodwill modal), signed like an approval
        (remedy "goodwill" with the gesture in the record). The bot checks it against the
        policy: applied (the customer is told), refused, or waiting for a supervisor (kept
        on the case as `pending_goodwill`; the card then offers "Approve goodwill")."""
        case = await self._approvable(case_id)
        if case is None:
            return await self._get(case_id)
        async with self._approval_locks.setdefault(case_id, asyncio.Lock()):
            case = await self._get(case_id)  # as it is after any click before this one
            pending = case.pending_goodwill or {}
            same = (pending.get("kind"), pending.get("amount"), pending.get("reason")) == (
                goodwill.kind,
                goodwill.amount,
                goodwill.reason,
            )
            so_far = [Approver(**a) for a in pending.get("approvers") or []] if same else []
            return await self._give_goodwill(case, goodwill, so_far, agent_id, agent_name)

    async def approve_goodwill(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        """A supervisor (or another agent) approves the goodwill waiting on the case: the same
        kind, amount and reason, re-signed with everyone who approved it so far."""
        case = await self._approvable(case_id)
        if case is None:
            return await self._get(case_id)
        async with self._approval_locks.setdefault(case_id, asyncio.Lock()):
            case = await self._get(case_id)
            pending = case.pending_goodwill
            if not pending:
                raise CaseConflict(case, "no goodwill is waiting for approval")
            goodwill = Goodwill(str(pending["kind"]), int(pending["amount"]), str(pending["reason"]))
            so_far = [Approver(**a) for a in pending.get("approvers") or []]
            return await self._give_goodwill(case, goodwill, so_far, agent_id, agent_name)

    async def _give_goodwill(
        self, case: Case, goodwill: Goodwill, so_far: List[Approver], agent_id: str, agent_name: str
    ) -> Case:
        case_id = case.case_id
        if case.status == RESOLVED:
            raise CaseConflict(case, "the case is already resolved")
        if any(a.get("remedy") == GOODWILL for a in case.approved):
            raise CaseConflict(case, "a goodwill was already given for this case")
        if case.status == OPEN:
            case = await self._claim(case, agent_id, agent_name)
        approvers = add_approver(so_far, Approver(agent_id, agent_name))
        record = sign_approval(
            self.approval_key,
            AgentApproval(
                case_id=case_id,
                sender_id=case.user_id,
                remedy=GOODWILL,
                approvers=tuple(approvers),
                issued_at=self._clock(),
                goodwill=goodwill,
            ),
        )
        what = goodwill_label(goodwill)
        responses = await self._run_in_bot(
            case.user_id, APPROVED_INTENT, agent_name, {"approved_remedy": GOODWILL, "agent_approval": record}
        )
        for_customer, notices = agent_notices(responses)
        if not responses:
            await self._safe_desk(
                self.desk.post_in_thread(
                    case, f"⚠️ The bot did not answer {agent_name}'s goodwill ({what}); nothing was given. Try again."
                )
            )
            return case
        if notices:
            waiting = any(n.get("kind") == "needs_supervisor" for n in notices)

            def keep(c: Case) -> None:
                c.pending_goodwill = (
                    {**asdict(goodwill), "approvers": [asdict(a) for a in approvers]} if waiting else None
                )

            case = await self.cases.update(case_id, keep)
            await self._safe_desk(self.desk.update_card(case))
            for notice in notices:
                await self._safe_desk(self.desk.post_in_thread(case, goodwill_notice_text(notice, goodwill, approvers)))
            return case
        delivered = await self.customers.send_bot_responses(case.user_id, for_customer)

        def note(c: Case) -> None:
            c.approved.append(
                {
                    "remedy": GOODWILL,
                    **asdict(goodwill),
                    "by": ", ".join(a.name for a in approvers),
                    "approvers": [asdict(a) for a in approvers],
                    "at": self._clock(),
                    "delivered": delivered,
                }
            )
            c.pending_goodwill = None

        case = await self.cases.update(case_id, note)
        told = " / ".join(r["text"] for r in for_customer if r.get("text")) or "(nothing)"
        await self._safe_desk(self.desk.update_card(case))
        await self._safe_desk(
            self.desk.post_in_thread(
                case, f"✅ {agent_name} gave goodwill: {what} ({goodwill.reason}). The customer was told: {told}"
            )
        )
        return case

    async def _approvable(self, case_id: str) -> Optional[Case]:
        """The case, if an approval can be signed for it now (None: approvals are off, and
        the thread says so)."""
        case = await self._get(case_id)
        if case.status == RESOLVED:
            raise CaseConflict(case, "the case is already resolved")
        if not self.approval_key:
            await self._safe_desk(
                self.desk.post_in_thread(
                    case, "⚠️ Approvals are off: AGENT_APPROVAL_KEY is not set on the gateway. Nothing was applied."
                )
            )
            return None
        return case

    async def _get(self, case_id: str) -> Case:
        case = await self.cases.get(case_id)
        if case is None:
            raise KeyError(case_id)
        return case

    # --- who has the case --------------------------------------------------------------------
    async def reassign(self, case_id: str, to_id: str, to_name: str, agent_id: str, agent_name: str) -> Case:
        """The case's agent becomes `to_id` (checked to be a member of the handoff channel
        by the caller); an unclaimed case is claimed for them."""
        case = await self._get(case_id)
        if case.status == OPEN:
            case = await self._claim(case, to_id, to_name)
        else:
            case = await self.cases.reassign(case_id, to_id, to_name, self._clock())
            await self._safe_desk(self.desk.update_card(case))
        await self._safe_desk(self.desk.post_in_thread(case, f"↪ {agent_name} reassigned this case to <@{to_id}>"))
        return case

    async def escalate(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        """Tells the supervisors about the case (once: a second press is a conflict)."""
        case = await self.cases.escalate(case_id, agent_name, self._clock())
        try:
            await self.desk.escalate(case, agent_name)
        except AgentDeskError as exc:

            def undo(c: Case) -> None:
                c.escalated_at = c.escalated_by = None

            case = await self.cases.update(case_id, undo)
            raise CaseConflict(case, f"the supervisors could not be told ({exc}); press Escalate again") from None
        await self._safe_desk(self.desk.update_card(case))
        await self._safe_desk(self.desk.post_in_thread(case, f"⬆ escalated to supervisors by {agent_name}"))
        return case

    # --- suggested replies ---------------------------------------------------------------------
    def suggested_reply(self, case: Case, key: str, agent_name: str) -> Optional[Tuple[str, str]]:
        """(label, text) of the reply book's draft `key` for `case`, in the customer's
        language with what the case knows filled in; None for an unknown draft."""
        draft = self.replies.draft(key)
        if draft is None:
            return None
        language = customer_language(case.context)
        values = {**case_values(case.context, agent_name), **remedy_values(case, language)}
        return draft.label_in("en"), draft.render(language, values)

    async def send_draft(self, case_id: str, view_id: str, agent_id: str, agent_name: str, text: str) -> str:
        """A suggested reply the agent edited and submitted: sent like a thread reply (the
        same journal, checks and LINE retry key, keyed by the modal's view id, so the same
        submission sends once), then shown in the thread. Returns agent_reply's outcome."""
        case = await self._get(case_id)
        if not case.channel or not case.thread_ts:
            raise CaseConflict(case, "the case has no thread yet")
        outcome = await self.agent_reply(case.channel, case.thread_ts, view_id, agent_id, agent_name, text)
        if outcome in ("delivered", "not_delivered"):
            quoted = "\n".join(f"> {line}" for line in text.splitlines() or [""])
            done = "sent to the customer" if outcome == "delivered" else "could NOT be delivered"
            await self._safe_desk(
                self.desk.post_in_thread(case, f"✉️ {agent_name}'s suggested reply, {done} / 返信案:\n{quoted}")
            )
        return outcome

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
    "already_remedied": "the case already has a remedy on record; nothing more was added",
    "not_customers_case": "the case is not this customer's (or the customer is unknown)",
    "goodwill_not_verified": "the goodwill approval could not be verified",
    "goodwill_not_allowed": "the policy does not allow this kind of goodwill for this case",
    "goodwill_no_amount": "the goodwill amount must be at least ¥1",
    "goodwill_above_max": "the goodwill amount is above the policy's maximum for this case",
    "goodwill_no_reason": "a goodwill needs a reason",
    "goodwill_reason_too_long": "the goodwill reason is too long",
    "goodwill_already_given": "a goodwill was already given for this case; nothing more was added",
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


def goodwill_label(goodwill: Goodwill) -> str:
    """The gesture as the thread names it: "store credit ¥5,000"."""
    return f"{remedy_label(goodwill.kind).en} ¥{int(goodwill.amount):,}"


def goodwill_notice_text(notice: Dict[str, Any], goodwill: Goodwill, approvers: Sequence[Approver]) -> str:
    """What the thread reads when the bot did not give a goodwill at once."""
    what = goodwill_label(goodwill)
    if notice.get("kind") == "needs_supervisor":
        by = ", ".join(str(n) for n in notice.get("approvers") or []) or ", ".join(a.name for a in approvers)
        limit = notice.get("agent_limit")
        above = f"above an agent's own limit (¥{int(limit):,})" if limit is not None else "above an agent's own limit"
        return (
            f"⏳ Goodwill {what} is {above}: approved by {by}; a supervisor must approve it too "
            "(press Approve goodwill on the card). Nothing was given or sent yet."
        )
    reason = REFUSAL_TEXTS.get(str(notice.get("reason")), str(notice.get("reason") or "refused"))
    return f"⚠️ Goodwill {what} was not given: {reason}. Nothing was sent to the customer."


def remedy_values(case: Case, language: str) -> Dict[str, str]:
    """A draft's {remedy} (and {amount}): what was applied for the case, else what the bot
    offered, in the customer's language."""
    if case.approved:
        last = case.approved[-1]
        if last.get("remedy") == GOODWILL:
            return {
                "remedy": remedy_label(str(last.get("kind") or "")).in_language(language),
                "amount": f"¥{int(last.get('amount') or 0):,}",
            }
        return {"remedy": remedy_label(str(last.get("remedy") or "")).in_language(language)}
    ctx = CaseContext.from_dict(case.context)
    offers = ctx.remedies_offered + ctx.remedies_needing_approval
    if offers and offers[0].kind:
        values = {"remedy": remedy_label(offers[0].kind).in_language(language)}
        if offers[0].amount:
            values["amount"] = f"¥{int(offers[0].amount):,}"
        return values
    if ctx.combinations and ctx.combinations[0].name:
        combo = ctx.combinations[0]
        values = {"remedy": remedy_label(combo.name).in_language(language)}
        if combo.amount:
            values["amount"] = f"¥{combo.amount:,}"
        return values
    return {}


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
