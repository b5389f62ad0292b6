"""Goodwill: an amount an agent decides (the Goodwill modal: kind, amount, reason),
checked by the bot's policy.

- Signed like an approval (core/remedy_approvals.py): remedy "goodwill" with the gesture
  in the record; the bot checks it against the policy (bot/remedy_policy.yml). Applied:
  the customer is told, the card shows it. Refused: only the thread is told why.
- Above an agent's own limit it waits on the case (`pending_goodwill`) for a
  supervisor's Approve goodwill, re-signed with both approvers (the same kind, amount and
  reason; the same gesture submitted again from the modal keeps who approved it so far).
- One goodwill per case; approvals of a case run one at a time (the approvals' lock).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Dict, List, Sequence

from contracts.approvals import AgentApproval, Approver, Goodwill, add_approver, agent_notices, sign_approval
from contracts.vocabulary import GOODWILL, remedy_label
from gateway.core.case_steps import CaseSteps
from gateway.core.cases import OPEN, RESOLVED, Case, CaseConflict
from gateway.core.remedy_approvals import APPROVED_INTENT, RemedyApprovals, refusal_text


class Goodwills:
    def __init__(self, steps: CaseSteps, approvals: RemedyApprovals) -> None:
        self.steps = steps
        self.approvals = approvals  # signing key, `approvable`, the per-case lock

    async def goodwill(self, case_id: str, goodwill: Goodwill, agent_id: str, agent_name: str) -> Case:
        """Asks the bot to give `goodwill` (from the Goodwill modal), signed like an approval
        (remedy "goodwill" with the gesture in the record). The bot checks it against the
        policy: applied (the customer is told), refused, or waiting for a supervisor (kept
        on the case as `pending_goodwill`; the card then offers "Approve goodwill")."""
        case = await self.approvals.approvable(case_id)
        if case is None:
            return await self.steps.get(case_id)
        async with self.approvals.lock(case_id):
            case = await self.steps.get(case_id)  # as it is after any click before this one
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
        case = await self.approvals.approvable(case_id)
        if case is None:
            return await self.steps.get(case_id)
        async with self.approvals.lock(case_id):
            case = await self.steps.get(case_id)
            pending = case.pending_goodwill
            if not pending:
                raise CaseConflict(case, "no goodwill is waiting for approval")
            goodwill = Goodwill(str(pending["kind"]), int(pending["amount"]), str(pending["reason"]))
            so_far = [Approver(**a) for a in pending.get("approvers") or []]
            return await self._give_goodwill(case, goodwill, so_far, agent_id, agent_name)

    async def _give_goodwill(
        self, case: Case, goodwill: Goodwill, so_far: List[Approver], agent_id: str, agent_name: str
    ) -> Case:
        steps = self.steps
        case_id = case.case_id
        if case.status == RESOLVED:
            raise CaseConflict(case, "the case is already resolved")
        if any(a.get("remedy") == GOODWILL for a in case.approved):
            raise CaseConflict(case, "a goodwill was already given for this case")
        if case.status == OPEN:
            case = await steps.claim(case, agent_id, agent_name)
        approvers = add_approver(so_far, Approver(agent_id, agent_name))
        record = sign_approval(
            self.approvals.approval_key,
            AgentApproval(
                case_id=case_id,
                sender_id=case.user_id,
                remedy=GOODWILL,
                approvers=tuple(approvers),
                issued_at=steps.clock(),
                goodwill=goodwill,
            ),
        )
        what = goodwill_label(goodwill)
        responses = await steps.run_in_bot(
            case.user_id, APPROVED_INTENT, agent_name, {"approved_remedy": GOODWILL, "agent_approval": record}
        )
        for_customer, notices = agent_notices(responses)
        if not responses:
            await steps.safe_desk(
                steps.desk.post_in_thread(
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

            case = await steps.cases.update(case_id, keep)
            await steps.safe_desk(steps.desk.update_card(case))
            for notice in notices:
                await steps.safe_desk(
                    steps.desk.post_in_thread(case, goodwill_notice_text(notice, goodwill, approvers))
                )
            return case
        delivered = await steps.customers.send_bot_responses(case.user_id, for_customer)

        def note(c: Case) -> None:
            c.approved.append(
                {
                    "remedy": GOODWILL,
                    **asdict(goodwill),
                    "by": ", ".join(a.name for a in approvers),
                    "approvers": [asdict(a) for a in approvers],
                    "at": steps.clock(),
                    "delivered": delivered,
                }
            )
            c.pending_goodwill = None

        case = await steps.cases.update(case_id, note)
        told = " / ".join(r["text"] for r in for_customer if r.get("text")) or "(nothing)"
        await steps.safe_desk(steps.desk.update_card(case))
        await steps.safe_desk(
            steps.desk.post_in_thread(
                case, f"✅ {agent_name} gave goodwill: {what} ({goodwill.reason}). The customer was told: {told}"
            )
        )
        return case


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
    return f"⚠️ Goodwill {what} was not given: {refusal_text(notice)}. Nothing was sent to the customer."


__all__ = ["Goodwills", "goodwill_label", "goodwill_notice_text"]
