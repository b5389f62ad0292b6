"""Suggested replies on the case card: the reply book's drafts (gateway/agent_replies.yml).

A draft is offered in the customer's language with what the case knows filled in (their
name, the order, the agent's name, the remedy applied or offered). The agent edits it in
a modal; the submitted text goes out as a thread reply does (core/relay.py
`agent_reply`, keyed by the modal's view id, so the same submission sends once) and is
shown in the thread.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from contracts.case_context import CaseContext
from contracts.vocabulary import GOODWILL, remedy_label
from gateway.core.case_steps import CaseSteps
from gateway.core.cases import Case, CaseConflict
from gateway.core.relay import Relay
from gateway.core.replies import ReplyBook, case_values, customer_language


class SuggestedReplies:
    def __init__(self, steps: CaseSteps, replies: ReplyBook, relay: Relay) -> None:
        self.steps = steps
        self.replies = replies
        self.relay = relay

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
        case = await self.steps.get(case_id)
        if not case.channel or not case.thread_ts:
            raise CaseConflict(case, "the case has no thread yet")
        outcome = await self.relay.agent_reply(case.channel, case.thread_ts, view_id, agent_id, agent_name, text)
        if outcome in ("delivered", "not_delivered"):
            quoted = "\n".join(f"> {line}" for line in text.splitlines() or [""])
            done = "sent to the customer" if outcome == "delivered" else "could NOT be delivered"
            await self.steps.safe_desk(
                self.steps.desk.post_in_thread(case, f"✉️ {agent_name}'s suggested reply, {done} / 返信案:\n{quoted}")
            )
        return outcome


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


__all__ = ["SuggestedReplies", "remedy_values"]
