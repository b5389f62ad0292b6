"""The customer's side of a handoff: what agents and agent-triggered bot turns send on LINE.

Replies are free but need a fresh reply token, which an agent's answer never has, so
these go by push (each with its own X-Line-Retry-Key, so a retried push is not shown
twice). An agent's text carries LINE's `sender` name, so the customer sees who answers.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Dict, List, Optional

from gateway.customer_input import PostbackSigner
from gateway.line import messages as line_messages
from gateway.line.api import LineApi, LineApiError

log = logging.getLogger(__name__)
SENDER_NAME_MAX = 20
# Namespace of the push retry keys derived from an agent's Slack message (any fixed UUID).
_RETRY_KEY_NS = uuid.UUID("0b6f5f7c-3f51-4a57-8f0e-7d2b61c9a2e4")  # Messaging API: sender.name is 1-20 characters


def sender_name(agent_name: str, language_suffix: str = "（サポート）") -> str:
    """LINE refuses sender names containing "LINE"; keep it short and recognisable."""
    name = re.sub(r"(?i)line|ＬＩＮＥ", "", agent_name).strip() or "Support"
    full = f"{name}{language_suffix}"
    return full if len(full) <= SENDER_NAME_MAX else name[:SENDER_NAME_MAX]


class LineCustomerChannel:
    def __init__(self, line: LineApi, postbacks: Optional[PostbackSigner] = None, *, mark_as_read: bool = True) -> None:
        self.line = line
        self.mark_as_read = mark_as_read  # chat on (gateway/config.py line_mark_as_read)
        # the bot's buttons in agent-triggered turns are signed like any (customer_input.py)
        self.postbacks = postbacks or PostbackSigner.ephemeral()

    async def send_agent_text(
        self,
        user_id: str,
        text: str,
        agent_name: str,
        idempotency_key: Optional[str] = None,
        quote_token: Optional[str] = None,
    ) -> bool:
        """`idempotency_key` (the agent's Slack message) makes the retry keys repeatable:
        the same reply pushed again after a gateway restart is accepted by LINE once.
        `quote_token`: the customer's message this answers, quoted by the first message."""
        messages = [
            dict(m, sender={"name": sender_name(agent_name)})
            for m in (line_messages.text_message(t) for t in line_messages.split_text(text))
        ]
        messages = line_messages.quoting(messages, quote_token)
        return await self._push(user_id, line_messages.batches(messages), idempotency_key)

    async def mark_read(self, read_token: str) -> None:
        """Marks the customer's messages read up to the one with `read_token` (never fails)."""
        if not self.mark_as_read:
            return
        try:
            await self.line.mark_as_read(read_token)
        except LineApiError as exc:
            log.warning("could not mark a customer's messages read (HTTP %s)", exc.status)

    async def send_bot_responses(self, user_id: str, responses: List[Dict[str, Any]]) -> bool:
        return await self._push(user_id, self.postbacks.sign_batches(line_messages.convert(responses), user_id))

    async def _push(
        self, user_id: str, batches: List[List[Dict[str, Any]]], idempotency_key: Optional[str] = None
    ) -> bool:
        for index, batch in enumerate(batches):
            if not batch:
                continue
            key = uuid.uuid5(_RETRY_KEY_NS, f"{idempotency_key}:{index}") if idempotency_key else uuid.uuid4()
            try:
                await self.line.push(user_id, batch, retry_key=str(key))
            except LineApiError as exc:
                log.error("LINE push to a customer failed after retries (HTTP %s)", exc.status)
                return False
        return True


__all__ = ["LineCustomerChannel", "sender_name"]
