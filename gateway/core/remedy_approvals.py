"""An agent approves a remedy the bot could not grant alone (the card's Apply / Approve).

- Approve applies the remedy through the bot's own idempotent remedy path (Rasa's
  trigger_intent -> action), so it is applied once. The gateway signs who approved what
  (contracts/approvals.py, AGENT_APPROVAL_KEY); the action server verifies it and
  re-decides the remedy with the policy engine. Above an agent's own limit it answers
  with a notice for the thread: a supervisor must approve as well.
- A combination (remedies the policy lets an agent apply together) is approved the same
  way, its name ("send_item+refund_delivery_fee") as the remedy.
- One approval of a case at a time in this gateway (`lock`, shared with goodwill.py):
  a double click must not reach Rasa while the first is still running. A second Apply
  after a remedy was applied tells only the thread.
- Without AGENT_APPROVAL_KEY approvals are off and the thread says so (`approvable`).
- `REFUSAL_TEXTS`: what the thread reads for each reason the bot refuses an approval
  or a goodwill (bot/actions/agent.py; tests/bot checks every reason has one).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any, Dict, Optional

from contracts.approvals import AgentApproval, Approver, add_approver, agent_notices, sign_approval
from contracts.vocabulary import GOODWILL, remedy_label
from gateway.core.case_steps import CaseSteps
from gateway.core.cases import OPEN, RESOLVED, Case, CaseConflict

APPROVED_INTENT = "EXTERNAL_agent_approved_remedy"

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


class RemedyApprovals:
    def __init__(self, steps: CaseSteps, approval_key: str = "") -> None:
        self.steps = steps
        self.approval_key = approval_key  # signs agents' approvals for the action server
        self._locks: Dict[str, asyncio.Lock] = {}

    def lock(self, case_id: str) -> asyncio.Lock:
        """One approval (of a remedy or a goodwill) of the case at a time in this gateway."""
        return self._locks.setdefault(case_id, asyncio.Lock())

    async def approvable(self, case_id: str) -> Optional[Case]:
        """The case, if an approval can be signed for it now (None: approvals are off, and
        the thread says so)."""
        case = await self.steps.get(case_id)
        if case.status == RESOLVED:
            raise CaseConflict(case, "the case is already resolved")
        if not self.approval_key:
            await self.steps.safe_desk(
                self.steps.desk.post_in_thread(
                    case, "⚠️ Approvals are off: AGENT_APPROVAL_KEY is not set on the gateway. Nothing was applied."
                )
            )
            return None
        return case

    async def approve(self, case_id: str, remedy: str, agent_id: str, agent_name: str) -> Case:
        """Asks the bot to apply `remedy` for the case, with a signed record of everyone who
        approved it (once, whatever the clicks). The bot decides: applied (the customer is
        told), refused, or waiting for a supervisor (only the thread is told)."""
        case = await self.approvable(case_id)
        if case is None:
            return await self.steps.get(case_id)
        # One approval of a case at a time in this gateway: a double click must not reach
        # Rasa while the first is still running (the second would find the case paused).
        async with self.lock(case_id):
            case = await self.steps.cases.get(case_id) or case  # as it is after any click before this one
            applied = [a for a in case.approved if a.get("remedy") != GOODWILL]
            if applied:
                # the bot applies one remedy per case anyway; the thread says why nothing happens
                await self.steps.safe_desk(
                    self.steps.desk.post_in_thread(
                        case,
                        f"ℹ️ {remedy_label(applied[-1].get('remedy')).en} was already applied by "
                        f"{applied[-1].get('by') or '?'}; nothing more was done.",
                    )
                )
                return case
            return await self._approve(case, remedy, agent_id, agent_name)

    async def _approve(self, case: Case, remedy: str, agent_id: str, agent_name: str) -> Case:
        steps = self.steps
        case_id = case.case_id
        if case.status == OPEN:
            case = await steps.claim(case, agent_id, agent_name)

        def add(c: Case) -> None:
            so_far = [Approver(**a) for a in c.approvals.get(remedy, [])]
            c.approvals[remedy] = [asdict(a) for a in add_approver(so_far, Approver(agent_id, agent_name))]

        case = await steps.cases.update(case_id, add)
        record = sign_approval(
            self.approval_key,
            AgentApproval(
                case_id=case.case_id,
                sender_id=case.user_id,
                remedy=remedy,
                approvers=tuple(Approver(**a) for a in case.approvals[remedy]),
                issued_at=steps.clock(),
            ),
        )
        responses = await steps.run_in_bot(
            case.user_id, APPROVED_INTENT, agent_name, {"approved_remedy": remedy, "agent_approval": record}
        )
        for_customer, notices = agent_notices(responses)
        if not responses:
            await steps.safe_desk(
                steps.desk.post_in_thread(
                    case,
                    f"⚠️ The bot did not answer {agent_name}'s approval of {remedy}; nothing was applied. "
                    "Press Approve again.",
                )
            )
            return case
        if notices:
            for notice in notices:
                await steps.safe_desk(steps.desk.post_in_thread(case, approval_notice_text(notice, agent_name)))
            return case
        delivered = await steps.customers.send_bot_responses(case.user_id, for_customer)

        def note(c: Case) -> None:
            c.approved.append({"remedy": remedy, "by": agent_name, "at": steps.clock(), "delivered": delivered})

        case = await steps.cases.update(case_id, note)
        told = " / ".join(r["text"] for r in for_customer if r.get("text")) or "(nothing)"
        await steps.safe_desk(steps.desk.update_card(case))
        await steps.safe_desk(
            steps.desk.post_in_thread(case, f"✅ {agent_name} approved {remedy}. The customer was told: {told}")
        )
        return case


def refusal_text(notice: Dict[str, Any]) -> str:
    """Why the bot refused, as the thread reads it."""
    return REFUSAL_TEXTS.get(str(notice.get("reason")), str(notice.get("reason") or "refused"))


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
    return f"⚠️ {remedy} was not applied: {refusal_text(notice)}. Nothing was sent to the customer."


__all__ = ["APPROVED_INTENT", "REFUSAL_TEXTS", "RemedyApprovals", "approval_notice_text", "refusal_text"]
