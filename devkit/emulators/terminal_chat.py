"""Chat as a LINE customer in the terminal, against the local LINE API emulator + gateway.

    # emulator and gateway already running (e.g. the emulator on :8091, gateway on :8080):
    .venv-devkit/bin/python -m devkit.emulators.terminal_chat \\
        --gateway http://127.0.0.1:8080 --emulator http://127.0.0.1:8091

    # or let this process host the emulator too (point the gateway's LINE_API_BASE_URL and
    # LINE_DATA_API_BASE_URL at it):
    .venv-devkit/bin/python -m devkit.emulators.terminal_chat --serve-emulator 8091

Type a message and press Enter; the bot's replies appear as they reach the emulator.
Quick replies are numbered: type the number to tap one (sent as a postback, as LINE does).
Commands: /sticker  /follow  /image PATH (with --serve-emulator)  /quit.
The channel secret comes from LINE_CHANNEL_SECRET (the webhook is signed with it).

With --slack-emulator URL you are also the agent in Slack (terminal_agent.py): handoff
cards and thread messages print as `slack>` lines, and /claim, /agent TEXT, /note TEXT,
/approve N and /resolve act on the latest case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, Dict, List, Optional

import aiohttp

from devkit.emulators.line_client import LineWebhookClient, http_tokens
from devkit.emulators.terminal_agent import COMMANDS as AGENT_COMMANDS
from devkit.emulators.terminal_agent import TerminalAgent

DEMO_USER = "U00000000000000000000000000000001"


def render(message: Dict[str, Any]) -> str:
    t = message.get("type")
    if t == "text":
        return message.get("text", "")
    if t == "flex":
        return f"[card] {message.get('altText', '')}"
    if t == "image":
        return f"[image] {message.get('originalContentUrl', '')}"
    if t == "sticker":
        return "[sticker]"
    return f"[{t}]"


class TerminalChat:
    def __init__(self, gateway_url: str, emulator_url: str, secret: str, user_id: str, emulator: Any = None) -> None:
        self.emulator = emulator  # the in-process LineApiEmulator, when hosted here
        self.emulator_url = emulator_url.rstrip("/")
        self.user_id = user_id
        self.session = aiohttp.ClientSession()
        self.client = LineWebhookClient(
            gateway_url.rstrip("/") + "/line/webhook",
            secret,
            token_source=http_tokens(self.emulator_url, self.session),
            session=self.session,
        )
        self.seen = 0
        self.quick_replies: List[Dict[str, Any]] = []
        self.agent: Optional[TerminalAgent] = None  # set when Slack is emulated too

    async def poll(self) -> None:
        while True:
            try:
                async with self.session.get(
                    f"{self.emulator_url}/_emulator/messages", params={"to": self.user_id}
                ) as r:
                    delivered = await r.json()
            except aiohttp.ClientError:
                await asyncio.sleep(1)
                continue
            for d in delivered[self.seen :]:
                m = d["message"]
                via = "" if d.get("via") == "reply" else " (push)"
                print(f"\nbot{via}> {render(m)}")
                items = (m.get("quickReply") or {}).get("items") or []
                if items:
                    self.quick_replies = [i["action"] for i in items]
                    for n, a in enumerate(self.quick_replies, 1):
                        print(f"   [{n}] {a.get('label')}")
                print("you> ", end="", flush=True)
            self.seen = len(delivered)
            if self.agent is not None:
                try:
                    lines = await self.agent.poll_once()
                except aiohttp.ClientError:
                    lines = []
                if lines:
                    print("\n" + "\n".join(lines))
                    print("you> ", end="", flush=True)
            await asyncio.sleep(0.3)

    async def send(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        if line in ("/quit", "/exit", "/stop"):
            return False
        if self.agent is not None and line.split(" ", 1)[0] in AGENT_COMMANDS:
            print(await self.agent.command(line))
            return True
        if line == "/sticker":
            event = await self.client.sticker_event(self.user_id)
        elif line == "/follow":
            event = await self.client.follow_event(self.user_id)
        elif line.startswith("/image"):
            path = line[len("/image") :].strip()
            if self.emulator is None or not path or not os.path.isfile(path):
                print("(usage: /image PATH, with --serve-emulator so the emulator can serve it)")
                return True
            event = await self.client.image_event(self.user_id)
            with open(path, "rb") as f:
                self.emulator.add_content(
                    event["message"]["id"], f.read(), "image/png" if path.endswith(".png") else "image/jpeg"
                )
        elif line.isdigit() and 1 <= int(line) <= len(self.quick_replies):
            action = self.quick_replies[int(line) - 1]
            print(f"you tapped> {action.get('displayText') or action.get('label')}")
            if action.get("type") == "postback":
                event = await self.client.postback_event(self.user_id, action["data"])
            else:
                event = await self.client.text_event(self.user_id, action.get("text", ""))
            self.quick_replies = []
        else:
            event = await self.client.text_event(self.user_id, line)
        res = await self.client.post([event])
        if res.status != 200:
            print(f"(the gateway answered HTTP {res.status}: {res.text[:200]})")
        return True

    async def run(self) -> None:
        poller = asyncio.create_task(self.poll())
        loop = asyncio.get_running_loop()
        print(f"Chatting as {self.user_id}. Numbers pick a quick reply; /quit to leave.")
        if self.agent is not None:
            print("You are also the agent in Slack: /claim, /agent TEXT, /note TEXT, /approve N, /resolve.")
        print("you> ", end="", flush=True)
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line or not await self.send(line):
                    break
        finally:
            poller.cancel()
            await self.session.close()


async def _serve_emulator(port: int, token: str) -> Any:
    from aiohttp import web

    from devkit.emulators.line_api import LineApiEmulator

    # LINE's account link: the accountLink event goes to the gateway (devkit/run.py sets both)
    emu = LineApiEmulator(
        token,
        webhook_url=os.environ.get("LINE_EMULATOR_WEBHOOK_URL") or None,
        channel_secret=os.environ.get("LINE_CHANNEL_SECRET") or None,
    )
    emu.set_profile(DEMO_USER, "デモ 太郎", "ja")
    runner = web.AppRunner(emu.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, emu


async def amain(args: argparse.Namespace) -> None:
    runner: Optional[Any] = None
    emu: Any = None
    emulator_url = args.emulator
    if args.serve_emulator:
        token = os.environ.get("LINE_CHANNEL_ACCESS_TOKEN") or "local-demo-token"
        runner, emu = await _serve_emulator(args.serve_emulator, token)
        emulator_url = f"http://127.0.0.1:{args.serve_emulator}"
        print(f"LINE emulator on {emulator_url} (access token from LINE_CHANNEL_ACCESS_TOKEN)")
    try:
        chat = TerminalChat(args.gateway, emulator_url, args.secret, args.user, emu)
        if args.slack_emulator:
            chat.agent = TerminalAgent(
                chat.session,
                args.slack_emulator,
                args.gateway.rstrip("/") + "/slack/events",
                args.slack_secret,
                args.slack_channel,
            )
        await chat.run()
    finally:
        if runner is not None:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat as a LINE customer in the terminal")
    parser.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--emulator", default=os.environ.get("LINE_API_BASE_URL", "http://127.0.0.1:8091"))
    parser.add_argument(
        "--serve-emulator",
        type=int,
        default=0,
        metavar="PORT",
        help="host the LINE API emulator in this process on PORT",
    )
    parser.add_argument("--user", default=os.environ.get("DEMO_SENDER", DEMO_USER))
    parser.add_argument("--secret", default=os.environ.get("LINE_CHANNEL_SECRET") or "local-demo-secret")
    parser.add_argument(
        "--slack-emulator",
        default="",
        metavar="URL",
        help="the local Slack API emulator's root URL: act as the agent too",
    )
    parser.add_argument("--slack-secret", default=os.environ.get("SLACK_SIGNING_SECRET") or "local-demo-slack-secret")
    parser.add_argument("--slack-channel", default=os.environ.get("SLACK_HANDOFF_CHANNEL") or "C0HANDOFF1")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
