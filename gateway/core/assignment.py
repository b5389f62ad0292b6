"""Who has a case: Reassign gives it to another member; Escalate tells the supervisors once.

- Reassign: the case's agent becomes the chosen member of the handoff channel (checked by
  gateway/slack/app.py); an unclaimed case is claimed for them. The thread says who did it.
- Escalate: the supervisors are told once (their channel, or, none set, a broadcast from
  the thread to the handoff channel; gateway/slack/desk.py); a second press is a conflict. When they could not be told
  the escalation is undone, so Escalate can be pressed again.
"""

from __future__ import annotations

from gateway.core.case_steps import AgentDeskError, CaseSteps
from gateway.core.cases import OPEN, Case, CaseConflict


class Assignment:
    def __init__(self, steps: CaseSteps) -> None:
        self.steps = steps

    async def reassign(self, case_id: str, to_id: str, to_name: str, agent_id: str, agent_name: str) -> Case:
        """The case's agent becomes `to_id` (checked to be a member of the handoff channel
        by the caller); an unclaimed case is claimed for them."""
        steps = self.steps
        case = await steps.get(case_id)
        if case.status == OPEN:
            case = await steps.claim(case, to_id, to_name)
        else:
            case = await steps.cases.reassign(case_id, to_id, to_name, steps.clock())
            await steps.safe_desk(steps.desk.update_card(case))
        await steps.safe_desk(steps.desk.post_in_thread(case, f"↪ {agent_name} reassigned this case to <@{to_id}>"))
        return case

    async def escalate(self, case_id: str, agent_id: str, agent_name: str) -> Case:
        """Tells the supervisors about the case (once: a second press is a conflict)."""
        steps = self.steps
        case = await steps.cases.escalate(case_id, agent_name, steps.clock())
        try:
            await steps.desk.escalate(case, agent_name)
        except AgentDeskError as exc:

            def undo(c: Case) -> None:
                c.escalated_at = c.escalated_by = None

            case = await steps.cases.update(case_id, undo)
            raise CaseConflict(case, f"the supervisors could not be told ({exc}); press Escalate again") from None
        await steps.safe_desk(steps.desk.update_card(case))
        await steps.safe_desk(steps.desk.post_in_thread(case, f"⬆ escalated to supervisors by {agent_name}"))
        return case


__all__ = ["Assignment"]
