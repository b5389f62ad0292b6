"""The two live panes: the customer's LINE phone and the agents' Slack channel.

Nothing here talks to Rasa or the case store: the customer's messages are signed LINE
webhooks posted to the real gateway (line_client.py), what the customer sees is what the
gateway sent to the LINE emulator (its recorded deliveries), the agents' clicks and
replies are signed Slack requests to the gateway (slack_client.py), and the channel is
what the gateway posted to the Slack emulator. So the page shows what the platforms would.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

from devkit.emulators.line_client import LineWebhookClient, http_tokens
from devkit.emulators.slack_api import DEFAULT_BOT_USER_ID, DEFAULT_USERS
from devkit.emulators.slack_client import SlackEventsClient

# The seeded demo customers (bot/store/seed.py) the phone can be.
DEMO_CUSTOMERS: Dict[str, Dict[str, str]] = {
    "U00000000000000000000000000000001": {"name": "デモ 太郎", "language": "ja"},
    "U00000000000000000000000000000002": {"name": "Emma Brown", "language": "en"},
}
DEFAULT_CUSTOMER = "U00000000000000000000000000000001"
# The emulated workspace's agents who may act in the handoff channel.
AGENTS: Dict[str, str] = {
    "U0AGENT001": DEFAULT_USERS["U0AGENT001"]["real_name"],
    "U0AGENT002": DEFAULT_USERS["U0AGENT002"]["real_name"],
}
DEFAULT_AGENT = "U0AGENT001"


class CustomerPhone:
    """One timeline per customer: what they sent (kept here, as LINE keeps it on the
    phone) merged in arrival order with what the gateway delivered to them."""

    def __init__(
        self, session: aiohttp.ClientSession, gateway_url: str, line_emulator_url: str, channel_secret: str
    ) -> None:
        self.session = session
        self.emulator_url = line_emulator_url.rstrip("/")
        self.client = LineWebhookClient(
            gateway_url.rstrip("/") + "/line/webhook",
            channel_secret,
            token_source=http_tokens(self.emulator_url, session),
            session=session,
        )
        self._timelines: Dict[str, List[Dict[str, Any]]] = {}
        self._seen: Dict[str, int] = {}  # deliveries to the user already in the timeline
        self._locks: Dict[str, asyncio.Lock] = {}

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    def _append(self, user_id: str, entry: Dict[str, Any]) -> None:
        timeline = self._timelines.setdefault(user_id, [])
        entry.setdefault("at", time.time())
        entry["n"] = len(timeline)
        timeline.append(entry)

    async def _sync(self, user_id: str) -> None:
        """Append what the emulator delivered to the user since the last look."""
        async with self.session.get(f"{self.emulator_url}/_emulator/messages", params={"to": user_id}) as resp:
            resp.raise_for_status()
            delivered = await resp.json()
        seen = self._seen.get(user_id, 0)
        if len(delivered) < seen:
            seen = 0  # the emulator restarted: its record began again
        for d in delivered[seen:]:
            self._append(user_id, {"from": "bot", "via": d.get("via"), "message": d.get("message") or {}})
        self._seen[user_id] = len(delivered)

    async def timeline(self, user_id: str) -> List[Dict[str, Any]]:
        async with self._lock(user_id):
            await self._sync(user_id)
            return list(self._timelines.get(user_id, []))

    async def send_text(self, user_id: str, text: str) -> int:
        """The customer types `text`; returns the gateway's HTTP status."""
        async with self._lock(user_id):
            await self._sync(user_id)  # replies that came first stay above this message
            self._append(user_id, {"from": "customer", "message": {"type": "text", "text": text}})
            event = await self.client.text_event(user_id, text)
            return await self._post(user_id, event)

    async def tap(self, user_id: str, data: str, display_text: str) -> int:
        """The customer taps a quick reply or a Flex button: a postback, whose
        displayText LINE shows as the customer's message."""
        async with self._lock(user_id):
            await self._sync(user_id)
            if display_text:
                self._append(user_id, {"from": "customer", "message": {"type": "text", "text": display_text}})
            event = await self.client.postback_event(user_id, data)
            return await self._post(user_id, event)

    async def _post(self, user_id: str, event: Dict[str, Any]) -> int:
        result = await self.client.post([event])
        if result.status != 200:
            self._append(user_id, {"from": "system", "status": result.status})
        return result.status


class AgentSlack:
    """The handoff channel as the Slack emulator holds it, and the agent's actions on it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        gateway_url: str,
        slack_emulator_url: str,
        signing_secret: str,
        channel: str,
    ) -> None:
        self.session = session
        self.emulator_url = slack_emulator_url.rstrip("/")
        if self.emulator_url.endswith("/api"):
            self.emulator_url = self.emulator_url[: -len("/api")]
        self.channel = channel
        self.client = SlackEventsClient(
            gateway_url.rstrip("/") + "/slack/events",
            signing_secret,
            api_emulator_url=self.emulator_url,
            session=session,
        )

    async def messages(self) -> List[Dict[str, Any]]:
        """The channel's messages as they are now (after chat.update), oldest first."""
        async with self.session.get(
            f"{self.emulator_url}/_emulator/messages", params={"channel": self.channel}
        ) as resp:
            resp.raise_for_status()
            messages = await resp.json()
        for m in messages:
            m["user_name"] = self.name_of(m.get("user"))
        return messages

    @staticmethod
    def name_of(user_id: Optional[str]) -> str:
        if user_id == DEFAULT_BOT_USER_ID:
            return "order-support"
        profile = DEFAULT_USERS.get(user_id or "")
        return profile["real_name"] if profile else (user_id or "?")

    async def _message(self, ts: str) -> Optional[Dict[str, Any]]:
        return next((m for m in await self.messages() if m.get("ts") == ts), None)

    async def press(self, ts: str, action_id: str, agent_id: str) -> Tuple[int, str]:
        """Click a button that is on the card now (its value comes from the card itself,
        as in Slack); (404, reason) when the card or the button is not there."""
        card = await self._message(ts)
        if card is None:
            return 404, "no such card"
        found = next(
            (
                (b, e)
                for b in card.get("blocks") or []
                if b.get("type") == "actions"
                for e in b.get("elements") or []
                if e.get("action_id") == action_id
            ),
            None,
        )
        if found is None:
            return 404, "the card has no such button now"
        block, button = found
        card.pop("user_name", None)
        profile = DEFAULT_USERS.get(agent_id, {})
        return await self.client.press_button(
            action_id,
            str(button.get("value", "")),
            user_id=agent_id,
            channel=self.channel,
            message_ts=ts,
            message=card,
            block_id=str(block.get("block_id") or "case_actions"),
            user_name=profile.get("name", "agent"),
        )

    async def reply(self, ts: str, text: str, agent_id: str) -> Tuple[int, str]:
        """The agent's reply in the card's thread (a `//` note stays in Slack)."""
        return await self.client.thread_reply(self.channel, ts, agent_id, text)


__all__ = ["AGENTS", "AgentSlack", "CustomerPhone", "DEFAULT_AGENT", "DEFAULT_CUSTOMER", "DEMO_CUSTOMERS"]
