"""The two live panes: the customer's LINE phone and the agents' Slack channel.

Nothing here talks to Rasa or the case store: the customer's messages are signed LINE
webhooks posted to the real gateway (line_client.py), what the customer sees is what the
gateway sent to the LINE emulator (its recorded deliveries), the agents' clicks and
replies are signed Slack requests to the gateway (slack_client.py), and the channel is
what the gateway posted to the Slack emulator. So the page shows what the platforms would.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote, urlencode

import aiohttp

from devkit.emulators.line_client import LineWebhookClient, http_tokens
from devkit.emulators.slack_api import DEFAULT_BOT_USER_ID, DEFAULT_USERS
from devkit.emulators.slack_client import SlackEventsClient, new_trigger_id

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
            entry = {"from": "bot", "via": d.get("via"), "message": d.get("message") or {}}
            quoted = self._quoted(user_id, entry["message"].get("quoteToken"))
            if quoted is not None:
                entry["quoted"] = quoted  # LINE shows the message it answers above the reply
            self._append(user_id, entry)
        self._seen[user_id] = len(delivered)

    def _quoted(self, user_id: str, quote_token: Any) -> Optional[Dict[str, Any]]:
        """The customer's message that a reply quotes (by the quoteToken LINE gave it)."""
        if not quote_token:
            return None
        for e in reversed(self._timelines.get(user_id, [])):
            if e["from"] == "customer" and e.get("quote_token") == quote_token:
                return {"text": e["message"].get("text") or "", "type": e["message"].get("type")}
        return None

    async def timeline(self, user_id: str) -> List[Dict[str, Any]]:
        async with self._lock(user_id):
            await self._sync(user_id)
            return list(self._timelines.get(user_id, []))

    async def send_text(self, user_id: str, text: str) -> int:
        """The customer types `text`; returns the gateway's HTTP status."""
        async with self._lock(user_id):
            await self._sync(user_id)  # replies that came first stay above this message
            event = await self.client.text_event(user_id, text)
            self._append(
                user_id,
                {
                    "from": "customer",
                    "message": {"type": "text", "text": text},
                    "quote_token": event["message"]["quoteToken"],
                },
            )
            return await self._post(user_id, event)

    async def tap(self, user_id: str, data: str, display_text: str) -> int:
        """The customer taps a quick reply, a Flex button or a rich menu area: a postback,
        whose displayText LINE shows as the customer's message."""
        async with self._lock(user_id):
            await self._sync(user_id)
            if display_text:
                self._append(user_id, {"from": "customer", "message": {"type": "text", "text": display_text}})
            event = await self.client.postback_event(user_id, data)
            return await self._post(user_id, event)

    async def rich_menu(self, user_id: str) -> Optional[Dict[str, Any]]:
        """The rich menu the customer sees under the chat, as the LINE emulator holds it:
        the one linked to them, else the account's default; None when there is none."""
        async with self.session.get(f"{self.emulator_url}/_emulator/rich_menu", params={"userId": user_id}) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            found = await resp.json()
        return {"id": found["richMenuId"], "source": found["source"], "menu": found["menu"]}

    async def rich_menu_image(self, rich_menu_id: str) -> Tuple[bytes, str]:
        """A rich menu's image from the emulator: (bytes, content type)."""
        url = f"{self.emulator_url}/_emulator/rich_menus/{quote(rich_menu_id, safe='')}/image"
        async with self.session.get(url) as resp:
            resp.raise_for_status()
            return await resp.read(), resp.content_type

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
        supervisor_channel: str = "",
    ) -> None:
        self.session = session
        self.emulator_url = slack_emulator_url.rstrip("/")
        if self.emulator_url.endswith("/api"):
            self.emulator_url = self.emulator_url[: -len("/api")]
        self.channel = channel
        self.supervisor_channel = supervisor_channel
        # the agent pane's interactions: trigger_id / response_url id -> the agent who
        # clicked (the modal a click opens, the private answer to it); views closed here
        self._triggers: Dict[str, str] = {}
        self._responses: Dict[str, str] = {}
        self._dismissed: Dict[str, None] = {}
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
        return await self.act(ts, None, action_id, agent_id)

    async def reply(self, ts: str, text: str, agent_id: str) -> Tuple[int, str]:
        """The agent's reply in the card's thread (a `//` note stays in Slack)."""
        return await self.client.thread_reply(self.channel, ts, agent_id, text)

    # --- the agent pane's controls: the card's elements, modals, private notes -------------
    @staticmethod
    def workspace_users() -> Dict[str, str]:
        """The emulated workspace's people (a users_select lists them): id -> real name."""
        return {u: p.get("real_name") or p.get("name") or u for u, p in DEFAULT_USERS.items()}

    def _interaction(self, agent_id: str, ts: str) -> Dict[str, Any]:
        """A fresh trigger_id and response_url for a block_actions payload, remembered, so
        that the modal the click opens and the private answer to it reach this agent."""
        trigger_id, response_id = new_trigger_id(), secrets.token_hex(8)
        for seen, key in ((self._triggers, trigger_id), (self._responses, response_id)):
            seen[key] = agent_id
            while len(seen) > 500:
                del seen[next(iter(seen))]
        query = urlencode({"channel": self.channel, "ts": ts})
        return {
            "trigger_id": trigger_id,
            "response_url": f"{self.emulator_url}/_emulator/response/{response_id}?{query}",
        }

    async def act(
        self, ts: str, block_id: Optional[str], action_id: str, agent_id: str, value: Optional[str] = None
    ) -> Tuple[int, str]:
        """The agent uses an element of the card's action rows as it is now: a button (its
        own value), a users_select (`value`: a workspace user) or a static_select (`value`:
        one of its options), posted as Slack posts it, with the row's block_id (the tools
        row's carries the case id). (404, reason) when the card or the element is gone."""
        card = await self._message(ts)
        if card is None:
            return 404, "no such card"
        found = next(
            (
                (b, e)
                for b in card.get("blocks") or []
                if b.get("type") == "actions" and (block_id is None or b.get("block_id") == block_id)
                for e in b.get("elements") or []
                if e.get("action_id") == action_id
            ),
            None,
        )
        if found is None:
            return 404, "the card has no such control now"
        block, element = found
        card.pop("user_name", None)
        common: Dict[str, Any] = {
            "user_id": agent_id,
            "channel": self.channel,
            "message_ts": ts,
            "message": card,
            "block_id": str(block.get("block_id") or "case_actions"),
            "user_name": DEFAULT_USERS.get(agent_id, {}).get("name", "agent"),
            **self._interaction(agent_id, ts),
        }
        kind = element.get("type")
        if kind == "button":
            return await self.client.press_button(action_id, str(element.get("value", "")), **common)
        if kind == "users_select":
            if value not in self.workspace_users():
                return 400, "not a user of the workspace"
            return await self.client.select_user(action_id, value, **common)
        if kind == "static_select":
            if not any(o.get("value") == value for o in element.get("options") or []):
                return 400, "not one of the options"
            return await self.client.select_option(action_id, str(value), **common)
        return 400, f"{kind} elements are not supported here"

    async def _get(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.emulator_url}{path}", params=params) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def open_views(self, agent_id: str) -> List[Dict[str, Any]]:
        """The modals open for `agent_id` that this pane's clicks opened (views.open with
        their trigger_id), not submitted nor closed yet, oldest first: {"id", "view"}."""
        return [
            {"id": r["id"], "view": r.get("view") or {}}
            for r in await self._get("/_emulator/views")
            if self._triggers.get(r.get("trigger_id") or "") == agent_id
            and r.get("user") == agent_id
            and not r.get("closed")
            and r.get("id") not in self._dismissed
        ]

    async def submit_view(self, view_id: str, agent_id: str, values: Dict[str, Any]) -> Tuple[int, Any]:
        """The agent presses the modal's submit: a view_submission with `values` ({block_id:
        the input's value}); (HTTP status, the app's answer: None, or response_action)."""
        if not any(v["id"] == view_id for v in await self.open_views(agent_id)):
            return 404, None
        name = DEFAULT_USERS.get(agent_id, {}).get("name", "agent")
        return await self.client.submit_view(view_id, agent_id, values, user_name=name)

    def close_view(self, view_id: str) -> None:
        """The agent cancels the modal (our views do not ask for view_closed)."""
        self._dismissed[view_id] = None
        while len(self._dismissed) > 500:
            del self._dismissed[next(iter(self._dismissed))]

    async def ephemerals(self, agent_id: str) -> List[Dict[str, Any]]:
        """What only `agent_id` sees in the channel, oldest first: chat.postEphemeral to
        them, and the private answers (response_url) to their clicks here. Each has ts,
        thread_ts (the card's thread), text, blocks, via."""
        out = [
            {
                "ts": e.get("message_ts"),
                "thread_ts": e.get("thread_ts"),
                "text": e.get("text") or "",
                "blocks": e.get("blocks"),
                "via": "chat.postEphemeral",
            }
            for e in await self._get("/_emulator/ephemerals")
            if e.get("channel") == self.channel and e.get("user") == agent_id
        ]
        for r in await self._get("/_emulator/responses"):
            body = r.get("body")
            if self._responses.get(r.get("id") or "") != agent_id or not isinstance(body, dict):
                continue
            if body.get("replace_original") in (True, "true") or body.get("delete_original") in (True, "true"):
                continue
            if body.get("response_type") == "in_channel":
                continue
            out.append(
                {
                    "ts": f"{float(r.get('time') or 0):.6f}",
                    "thread_ts": r.get("message_ts"),
                    "text": str(body.get("text") or ""),
                    "blocks": body.get("blocks"),
                    "via": "response_url",
                }
            )
        return sorted(out, key=lambda e: float(e["ts"] or 0))

    async def supervisor_messages(self) -> List[Dict[str, Any]]:
        """The supervisors' channel (SLACK_SUPERVISOR_CHANNEL), where escalations go when
        it is set; [] when it is not."""
        if not self.supervisor_channel:
            return []
        messages = await self._get("/_emulator/messages", channel=self.supervisor_channel)
        for m in messages:
            m["user_name"] = self.name_of(m.get("user"))
        return messages


__all__ = ["AGENTS", "AgentSlack", "CustomerPhone", "DEFAULT_AGENT", "DEFAULT_CUSTOMER", "DEMO_CUSTOMERS"]
