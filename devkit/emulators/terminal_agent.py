"""Act as a Slack agent in the terminal, against the local Slack API emulator + gateway.

Used by terminal_chat (make run without Slack credentials): what the gateway posts to the
handoff channel (case cards, thread messages) is printed as `slack>` lines, and these
commands act as the agent 佐藤 花子 (U0AGENT001), through signed Slack requests exactly as
Slack would send them:

    /claim            claim the latest case
    /agent TEXT       reply in the case thread (reaches the customer on LINE)
    /note TEXT        an internal note in the thread (never sent to the customer)
    /approve N        press the N-th Approve button of the card
    /resolve          resolve: the bot takes the conversation back
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import aiohttp

from devkit.emulators.slack_client import SlackEventsClient

DEMO_AGENT = "U0AGENT001"
COMMANDS = ("/claim", "/agent", "/note", "/approve", "/resolve")


def card_summary(message: Dict[str, Any]) -> List[str]:
    """The readable lines of a Block Kit card (headers, sections, fields, buttons)."""
    lines: List[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind in ("header", "section") and block.get("text"):
            lines.append(block["text"]["text"])
        for field in block.get("fields") or []:
            lines.append(field["text"].replace("\n", ": ", 1))
        if kind == "actions":
            lines.append("buttons: " + " | ".join(e["text"]["text"] for e in block.get("elements") or []))
    return lines or [message.get("text", "")]


class TerminalAgent:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        slack_emulator_url: str,
        events_url: str,
        signing_secret: str,
        channel: str,
        agent_id: str = DEMO_AGENT,
    ) -> None:
        self.session = session
        self.emulator_url = slack_emulator_url.rstrip("/")
        self.channel = channel
        self.agent_id = agent_id
        self.client = SlackEventsClient(events_url, signing_secret, api_emulator_url=self.emulator_url, session=session)
        self.seen: Dict[str, str] = {}  # ts -> last printed rendering
        self.card: Optional[Dict[str, Any]] = None

    async def poll_once(self) -> List[str]:
        """New or changed messages of the handoff channel, as printable lines."""
        async with self.session.get(f"{self.emulator_url}/_emulator/messages", params={"channel": self.channel}) as r:
            messages = await r.json()
        out: List[str] = []
        for m in messages:
            is_card = not m.get("thread_ts") or m.get("thread_ts") == m.get("ts")
            rendering = json.dumps([m.get("text"), m.get("blocks"), m.get("reactions")], ensure_ascii=False)
            if self.seen.get(m["ts"]) == rendering:
                continue
            changed = m["ts"] in self.seen
            self.seen[m["ts"]] = rendering
            if is_card:
                self.card = m
                out.append(f"slack> {'(card updated)' if changed else 'NEW CASE'}")
                out += [f"slack>   {line}" for line in card_summary(m)]
            elif not changed:
                who = "agent" if m.get("user") == self.agent_id else "bot"
                out.append(f"slack> [thread] {who}: {m.get('text') or ' '.join(card_summary(m))}")
            elif m.get("reactions"):
                out.append(f"slack> [thread] {', '.join(r['name'] for r in m['reactions'])} on: {m.get('text')}")
        return out

    async def command(self, line: str) -> str:
        if self.card is None:
            return "(no case yet: the bot hands one over when the customer needs a person)"
        word, _, rest = line.partition(" ")
        ts = self.card["ts"]
        buttons = [
            e for b in self.card.get("blocks") or [] if b.get("type") == "actions" for e in b.get("elements") or []
        ]
        if word in ("/agent", "/note"):
            text = rest.strip() if word == "/agent" else f"// {rest.strip()}"
            status, _ = await self.client.thread_reply(self.channel, ts, self.agent_id, text)
            return f"(sent to the thread: HTTP {status})"
        if word == "/approve":
            approve = [b for b in buttons if b["action_id"].startswith("case_approve")]
            try:
                button = approve[int(rest.strip() or "1") - 1]
            except (ValueError, IndexError):
                return f"(approve which? {len(approve)} approve button(s) on the card)"
        else:
            wanted = {"/claim": "case_claim", "/resolve": "case_resolve"}[word]
            button = next((b for b in buttons if b["action_id"] == wanted), None)
            if button is None:
                return f"(the card has no {word[1:]} button now)"
        status, _ = await self.client.press_button(
            button["action_id"],
            button["value"],
            user_id=self.agent_id,
            channel=self.channel,
            message_ts=ts,
            message=self.card,
        )
        return f"(pressed {button['text']['text']}: HTTP {status})"


__all__ = ["COMMANDS", "TerminalAgent", "card_summary"]
