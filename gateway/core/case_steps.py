"""The two sides of a case and the steps every part of a handoff takes the same way.

- `AgentDesk`: the agents' side (gateway/slack/desk.py); every failure to post is an
  `AgentDeskError`, and the case state is saved whatever Slack does (`safe_desk`).
- `CustomerChannel`: the customer's side (gateway/customer.py): an agent's text by push
  with their name, the bot's answer to an agent's action, read marks.
- `CaseSteps`: finding a case, claiming it (the card and the thread say so; the
  customer's waiting messages show read), and running an intent in the paused bot for an
  agent (approve, goodwill, resolve).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional, Protocol

from gateway.core.cases import OPEN, Case, CaseStore
from gateway.core.rasa_client import RasaClient

log = logging.getLogger(__name__)


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


class CaseSteps:
    """What the parts of a handoff share: the case store, Rasa, both sides, the clock."""

    def __init__(
        self,
        cases: CaseStore,
        rasa: RasaClient,
        desk: AgentDesk,
        customers: CustomerChannel,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cases = cases
        self.rasa = rasa
        self.desk = desk
        self.customers = customers
        self.clock = clock

    async def get(self, case_id: str) -> Case:
        case = await self.cases.get(case_id)
        if case is None:
            raise KeyError(case_id)
        return case

    async def claim(self, case: Case, agent_id: str, agent_name: str) -> Case:
        before = case.status
        case = await self.cases.claim(case.case_id, agent_id, agent_name, self.clock())
        if before == OPEN:
            await self.safe_desk(self.desk.update_card(case))
            await self.safe_desk(self.desk.post_in_thread(case, f"🙋 {agent_name} claimed this case."))
            if case.unread_token:
                # a person has the case open now: LINE shows the customer their messages read
                await self.customers.mark_read(case.unread_token)
        return case

    async def run_in_bot(
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

    @staticmethod
    async def safe_desk(call: Any) -> None:
        try:
            await call
        except AgentDeskError as exc:
            log.warning("Slack update failed (%s); the case state is saved", exc)


__all__ = ["AgentDesk", "AgentDeskError", "CaseSteps", "CustomerChannel"]
