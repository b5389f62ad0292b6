"""The case logic of a handoff, between the customer (LINE), the agents (Slack) and Rasa.

`HandoffService` is the one thing the rest of the gateway calls (processor jobs, the
Slack app); it holds a case's lifecycle and hands each concern to its module beside it:

| module | concern |
| --- | --- |
| `core/case_steps.py` | the two sides (`AgentDesk`, `CustomerChannel`, `AgentDeskError`) and the shared steps: claim, run an intent in the paused bot, Slack posts that never fail the case |
| `core/relay.py` | the customer's messages to the thread (and the backlog), agents' replies to LINE (internal notes, quotes, the reply book's warning, resumed after a crash) |
| `core/remedy_approvals.py` | Approve a remedy or a combination, signed (contracts/approvals.py); the thread's texts for the bot's refusals |
| `core/goodwill.py` | Goodwill and a supervisor's Approve goodwill |
| `core/assignment.py` | Reassign, Escalate |
| `core/suggested_replies.py` | the reply book's drafts on the card, sent as a thread reply |

No platform SDK here: the agents' side is an `AgentDesk` (gateway/slack/desk.py) and the
customer's side a `CustomerChannel` (gateway/customer.py), so the rules of a case read in
these modules. The lifecycle, here:

- The bot's handoff action sends the case context (the `{"handoff"}` payload,
  gateway/bot_payloads.py); `open_from_bot` records the case (ownership -> waiting)
  before anything else, so from that moment the customer's messages go to the agents'
  thread, never to the bot.
- `announce` posts the card and the transcript (once per case, under a per-case lock).
  If the agents' side is down the case stays open without a thread and
  `announce_pending` retries; whatever the customer said meanwhile is kept in the case's
  backlog and posted after the card. An unclaimed case is announced again after
  `reannounce_after_s`.
- Claim: an unclaimed case goes to the first agent who presses Claim, replies in its
  thread, approves or gives goodwill (Reassign claims it for the member chosen);
  claiming marks the customer's waiting messages read on LINE.
- Resolve hands the conversation back: ownership -> bot, Rasa resumed, and the bot
  asks the customer a short satisfaction question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from contracts.approvals import Goodwill
from gateway.core.assignment import Assignment
from gateway.core.case_steps import AgentDesk, AgentDeskError, CaseSteps, CustomerChannel
from gateway.core.cases import OPEN, Case, CaseStore
from gateway.core.goodwill import Goodwills
from gateway.core.rasa_client import RasaClient, RasaError
from gateway.core.relay import Relay
from gateway.core.remedy_approvals import RemedyApprovals
from gateway.core.replies import ReplyBook, load_reply_book
from gateway.core.suggested_replies import SuggestedReplies

log = logging.getLogger(__name__)

RESOLVED_INTENT = "EXTERNAL_agent_resolved"


class HandoffService:
    AGENT_EVENT_LEASE_S = Relay.AGENT_EVENT_LEASE_S

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
        self.customers = customers
        self.reannounce_after_s = reannounce_after_s
        self._clock = clock
        self._announce_locks: Dict[str, asyncio.Lock] = {}
        self.steps = CaseSteps(cases, rasa, desk, customers, clock)
        self.relay = Relay(self.steps, self.replies)
        self.approvals = RemedyApprovals(self.steps, approval_key)
        self.goodwills = Goodwills(self.steps, self.approvals)
        self.assignment = Assignment(self.steps)
        self.suggestions = SuggestedReplies(self.steps, self.replies, self.relay)

    @property
    def approval_key(self) -> str:
        """Signs agents' approvals for the action server (AGENT_APPROVAL_KEY)."""
        return self.approvals.approval_key

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
            await self.steps.safe_desk(self.desk.update_card(case))
            if case.agent_name:
                await self.steps.safe_desk(self.desk.post_in_thread(case, f"🙋 {case.agent_name} claimed this case."))
        for photo in case.photos:
            try:
                await self.desk.post_photo(case, photo)
            except AgentDeskError as exc:
                log.warning("photo not posted to case %s (%s)", case.case_id, exc)
        await self.relay.flush_backlog(case)
        return case

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
                await self.relay.flush_backlog(case)
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

    # --- a case closes ---------------------------------------------------------------------
    async def claim(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        case = await self.cases.get(case_id)
        if case is None:
            raise KeyError(case_id)
        return await self.steps.claim(case, agent_id, agent_name)

    async def resolve(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        """Hands the conversation back to the bot."""
        case = await self.cases.resolve(case_id, agent_id, agent_name, self._clock())
        try:
            responses = await self.steps.run_in_bot(case.user_id, RESOLVED_INTENT, agent_name, {})
            await self.customers.send_bot_responses(case.user_id, responses)
        except RasaError as exc:
            # ownership is already the bot's: the customer's next message reaches Rasa,
            # which resumes on its own once it sees the resume event below retried
            log.error("Rasa did not take the case back (%s)", exc)
        await self.steps.safe_desk(self.desk.update_card(case))
        await self.steps.safe_desk(
            self.desk.post_in_thread(case, f"🏁 {agent_name} resolved this case; the bot has the conversation again.")
        )
        return case

    # --- the rest, in the modules beside this one -------------------------------------------
    async def customer_message(self, case: Case, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        await self.relay.customer_message(case, text, metadata)

    async def customer_photo(self, case: Case, photo: Dict[str, Any]) -> None:
        await self.relay.customer_photo(case, photo)

    async def agent_reply(
        self, channel: str, thread_ts: str, message_ts: str, agent_id: str, agent_name: str, text: str
    ) -> str:
        return await self.relay.agent_reply(channel, thread_ts, message_ts, agent_id, agent_name, text)

    async def resume_agent_replies(self) -> int:
        return await self.relay.resume_agent_replies()

    async def approve(self, case_id: str, remedy: str, agent_id: str, agent_name: str) -> Case:
        return await self.approvals.approve(case_id, remedy, agent_id, agent_name)

    async def goodwill(self, case_id: str, goodwill: Goodwill, agent_id: str, agent_name: str) -> Case:
        return await self.goodwills.goodwill(case_id, goodwill, agent_id, agent_name)

    async def approve_goodwill(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        return await self.goodwills.approve_goodwill(case_id, agent_id, agent_name)

    async def reassign(self, case_id: str, to_id: str, to_name: str, agent_id: str, agent_name: str) -> Case:
        return await self.assignment.reassign(case_id, to_id, to_name, agent_id, agent_name)

    async def escalate(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        return await self.assignment.escalate(case_id, agent_id, agent_name)

    def suggested_reply(self, case: Case, key: str, agent_name: str) -> Optional[Tuple[str, str]]:
        return self.suggestions.suggested_reply(case, key, agent_name)

    async def send_draft(self, case_id: str, view_id: str, agent_id: str, agent_name: str, text: str) -> str:
        return await self.suggestions.send_draft(case_id, view_id, agent_id, agent_name, text)


__all__ = ["AgentDesk", "AgentDeskError", "CustomerChannel", "HandoffService", "RESOLVED_INTENT"]
