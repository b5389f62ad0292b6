"""The customer's side of a handoff: what agents and agent-triggered bot turns send on LINE.

Replies are free but need a fresh reply token, which an agent's answer never has, so
these go by push (each with its own X-Line-Retry-Key, so a retried push is not shown
twice). An agent's text carries LINE's `sender` name, so the customer sees who answers.
"""
from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Dict, List

from connectors.line import messages as line_messages
from connectors.line.api import LineApi, LineApiError

log = logging.getLogger(__name__)
SENDER_NAME_MAX = 20  # Messaging API: sender.name is 1-20 characters


def sender_name(agent_name: str, language_suffix: str = "（サポート）") -> str:
    """LINE refuses sender names containing "LINE"; keep it short and recognisable."""
    name = re.sub(r"(?i)line|ＬＩＮＥ", "", agent_name).strip() or "Support"
    full = f"{name}{language_suffix}"
    return full if len(full) <= SENDER_NAME_MAX else name[:SENDER_NAME_MAX]


class LineCustomerChannel:
    def __init__(self, line: LineApi) -> None:
        self.line = line

    async def send_agent_text(self, user_id: str, text: str, agent_name: str) -> bool:
        messages = [dict(m, sender={"name": sender_name(agent_name)})
                    for m in (line_messages.text_message(t) for t in line_messages.split_text(text))]
        return await self._push(user_id, line_messages.batches(messages))

    async def send_bot_responses(self, user_id: str, responses: List[Dict[str, Any]]) -> bool:
        return await self._push(user_id, line_messages.convert(responses))

    async def _push(self, user_id: str, batches: List[List[Dict[str, Any]]]) -> bool:
        for batch in batches:
            if not batch:
                continue
            try:
                await self.line.push(user_id, batch, retry_key=str(uuid.uuid4()))
            except LineApiError as exc:
                log.error("LINE push to a customer failed after retries (HTTP %s)", exc.status)
                return False
        return True


__all__ = ["LineCustomerChannel", "sender_name"]
