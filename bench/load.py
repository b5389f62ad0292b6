"""Load: N customers holding whole order-problem conversations at once, through signed LINE
webhooks and the real gateway, side by side with Rasa's REST endpoint alone, in one run.

Starts redis-server, the LINE API emulator (in this process), the action server (a
throwaway SQLite orders database), Rasa servers sharing Redis as tracker store and lock
store, a balancer (devkit/balancer.py) in front of them when there are two,
and one gateway (`python -m gateway`) per Rasa set-up. Then, for each number of
Rasa servers (`--rasa-servers 1,2`), two phases of `--duration` seconds each:

- rest:  each customer POSTs to Rasa's /webhooks/rest/webhook (through the balancer when
         there are two servers) and waits for the answer;
- line:  each customer's messages and taps go as signed LINE webhooks (text events and
         postbacks with the quick reply's data) to the gateway, which answers through the
         emulated reply API; the customer waits for that reply before going on.

A conversation (bench/customers.py gives each one a customer with a fresh order):
    ja: 親子丼に別卵が付いていませんでした -> tap the order -> tap 別卵 -> tap the refund -> ありがとう
    en: my order is missing the fries -> tap the order -> tap "send it now" -> thanks
Half the customers speak each language. When a conversation ends, the customer starts the
next one (as a new customer), until the time is up.

Reported per phase: messages per second (answers received within the time), webhook ack
p50/p99, end to end p50/p95 (webhook posted -> reply call recorded by the emulator; for
rest: request -> response), and what must be zero: messages lost (never answered, or not
in Rasa's tracker), replies duplicated (a second answer to one message, or a message twice
in the tracker), replies out of order (per user, by reply token; or the tracker's order),
remedies applied twice (an order with two remedies in the orders database). Also the CPU
each process used, and how busy the whole (shared) machine was.

Run (gateway environment; the bot runs from .venv-bot):
    .venv-devkit/bin/python -m bench.load [--users 50] [--duration 120] [--rasa-servers 1,2]
Diagnosis: --profile-rasa (cProfile inside the first Rasa server during the phases; slows
it, so not for the figures); --speedups none|all|a,b (which of bot/server/speedups.py
the Rasa servers use, to measure each one). Compare runs by `cpu_ms_per_message`:
on a shared machine the CPU a process spends per message is steadier than messages per
second.

Markdown table on stdout, JSON in bench/results/load-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import aiohttp

from bench.common import (
    CHANNEL_ACCESS_TOKEN,
    CHANNEL_SECRET,
    cpu_seconds,
    machine_busy_seconds,
    percentile,
    resident_mb,
)
from bench.customers import CustomerPool, LoadCustomer
from devkit import stack
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from devkit.stack import EmulatorThread, Stack
from gateway import texts as gateway_texts
from gateway.customer_input import signed_payload
from scripts.endpoints import write_endpoints

ROOT = Path(__file__).resolve().parent.parent


CASE_NUMBER = re.compile(r"C-\d{8}-[0-9A-Z]{4}")
APOLOGIES = {gateway_texts.text("apology", lang) for lang in ("ja", "en")}


# --- the conversations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """What a customer of one language says and taps (see the module docstring)."""

    opening: str
    item: str  # the item to tap when asked which one
    remedy: str  # the remedy to tap
    thanks: str


SCRIPTS = {
    "ja": Script("親子丼に別卵が付いていませんでした", "別卵", "refund_item", "ありがとう"),
    "en": Script("my order is missing the fries", "French fries", "send_item", "thanks"),
}


@dataclass
class Answer:
    """The bot's answer to one message: where it came from and what it offered."""

    kind: str  # "reply" / "push" (LINE) or "rest"
    index: Optional[int]  # the message it answers, when known (reply token)
    messages: List[Dict[str, Any]]
    at: float  # epoch seconds when it was recorded / received

    def texts(self) -> str:
        out = []
        for m in self.messages:
            out.append(str(m.get("text") or ""))
            out.append(str(m.get("altText") or ""))
        return "\n".join(t for t in out if t)

    def choices(self) -> List[Tuple[str, str]]:
        """(label, payload) of every button: REST buttons and remedy card options, LINE
        postback actions (quick replies and Flex buttons)."""
        found: List[Tuple[str, str]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") == "postback" and "data" in node:
                    found.append((str(node.get("label") or ""), str(node["data"])))
                if "payload" in node and ("title" in node or "label" in node):
                    found.append((str(node.get("title") or node.get("label")), str(node["payload"])))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.messages)
        return found

    def is_apology(self) -> bool:
        return any(m.get("text") in APOLOGIES for m in self.messages)


def next_message(script: Script, customer: LoadCustomer, answer: Answer) -> Optional[Tuple[str, bool]]:
    """What the customer sends after `answer`: (text or tapped payload, tapped?), or None
    when the answer is not one this conversation expects (a handoff, an error)."""
    choices = answer.choices()
    for label, data in choices:
        if '"order_id"' in data and customer.order_number in data:
            return data, True
    for label, data in choices:
        if '"item"' in data and label.startswith(script.item):
            return data, True
    for label, data in choices:
        if f'"remedy": "{script.remedy}"' in data:
            return data, True
    if CASE_NUMBER.search(answer.texts()):
        return script.thanks, False
    return None


# --- what a phase records -------------------------------------------------------------------


@dataclass
class Turn:
    user: str
    index: int
    text: str
    sent_at: float = 0.0
    ack_ms: Optional[float] = None
    answered_at: Optional[float] = None

    @property
    def e2e_ms(self) -> Optional[float]:
        return None if self.answered_at is None else (self.answered_at - self.sent_at) * 1000


@dataclass
class Phase:
    name: str
    channel: str  # "rest" or "line"
    rasa_servers: int
    users: int = 0
    speedups: str = "all"  # bot/server/speedups.py in its Rasa servers
    started: float = 0.0
    deadline: float = 0.0
    turns: List[Turn] = field(default_factory=list)
    sent: Dict[str, List[str]] = field(default_factory=dict)  # user -> texts in order
    orders: List[str] = field(default_factory=list)
    conversations_done: int = 0
    conversations_unexpected: int = 0
    unanswered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    apologies: int = 0
    pushes: int = 0
    ack_errors: int = 0
    answered_in_time: int = 0  # answers received before their round's deadline
    measured_s: float = 0.0  # the rounds' durations, summed
    cpu: Dict[str, float] = field(default_factory=dict)  # CPU seconds, summed over rounds
    memory_mb: Dict[str, float] = field(default_factory=dict)  # the most each process held at a round's end

    def turn(self, customer: LoadCustomer, index: int, text: str) -> Turn:
        turn = Turn(customer.line_user_id, index, text)
        self.turns.append(turn)
        # a tap's data is signed by the gateway; Rasa records the payload inside it
        self.sent.setdefault(customer.line_user_id, []).append(signed_payload(text))
        return turn


class NoAnswer(Exception):
    """The bot did not answer within --answer-timeout."""


# --- channels -------------------------------------------------------------------------------


class RestChannel:
    """Rasa's REST endpoint, as the gateway calls it (same metadata)."""

    def __init__(self, rasa_url: str, timeout_s: float) -> None:
        self.url = f"{rasa_url}/webhooks/rest/webhook"
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.session: Optional[aiohttp.ClientSession] = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(timeout=self.timeout, connector=aiohttp.TCPConnector(limit=0))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def prepare(self, customer: LoadCustomer) -> None:
        pass

    async def say(self, phase: Phase, customer: LoadCustomer, turn: Turn, tap: bool) -> Answer:
        assert self.session is not None
        body = {
            "sender": customer.line_user_id,
            "message": turn.text,
            "metadata": {
                "line_user_id": customer.line_user_id,
                "display_name": customer.display_name,
                "language": customer.language,
            },
        }
        turn.sent_at = time.time()
        try:
            async with self.session.post(self.url, json=body) as resp:
                messages = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            raise NoAnswer() from None
        if not isinstance(messages, list):
            raise NoAnswer()
        return Answer("rest", turn.index, messages, time.time())


class LineAnswers:
    """Routes the emulator's recorded reply and push calls to the waiting customers.

    Reads only the requests recorded since the last look (one pass for all customers),
    and stops at a request the emulator is still handling (its status not yet set)."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.cursor = len(emu.requests)
        self.tokens: Dict[str, Tuple[str, int]] = {}  # reply token -> (user, message index)
        self.queues: Dict[str, asyncio.Queue] = {}

    def expect(self, user: str, token: str, index: int) -> None:
        self.tokens[token] = (user, index)
        self.queues.setdefault(user, asyncio.Queue())

    def poll(self) -> None:
        requests = self.emu.requests
        end = len(requests)
        while self.cursor < end:
            entry = requests[self.cursor]
            if entry.get("status") is None:
                break  # still being answered: look again next time
            self.cursor += 1
            body = entry.get("json") or {}
            if entry["status"] != 200:
                continue
            if entry["path"] == "/v2/bot/message/reply":
                user, index = self.tokens.get(body.get("replyToken"), (None, None))
                kind = "reply"
            elif entry["path"] == "/v2/bot/message/push":
                user, index, kind = body.get("to"), None, "push"
            else:
                continue
            if user in self.queues:
                self.queues[user].put_nowait(Answer(kind, index, body.get("messages") or [], entry["time"]))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.poll()
            await asyncio.sleep(0.005)
        self.poll()

    async def answer(self, phase: Phase, user: str, index: int, timeout_s: float) -> Answer:
        """The answer to message `index`: its reply, or a push (the gateway pushes when the
        reply token is spent, e.g. after an apology). Apologies are counted, not answers."""
        queue = self.queues[user]
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoAnswer()
            try:
                answer = await asyncio.wait_for(queue.get(), remaining)
            except asyncio.TimeoutError:
                raise NoAnswer() from None
            if answer.kind == "reply" and answer.index != index:
                if answer.index is not None and answer.index < index:
                    phase.duplicates += 1  # an earlier message answered again
                else:
                    phase.out_of_order += 1  # a later message answered first
                continue
            if answer.is_apology():
                phase.apologies += 1
                continue
            if answer.kind == "push":
                phase.pushes += 1
            return answer

    def leftovers(self) -> int:
        """Answers nobody waited for (after the phase): duplicates, unless apologies."""
        extra = 0
        for queue in self.queues.values():
            while not queue.empty():
                extra += 0 if queue.get_nowait().is_apology() else 1
        return extra


class LineChannel:
    """Signed LINE webhooks to the gateway, answers read from the emulator."""

    def __init__(self, webhook_url: str, emu_thread: EmulatorThread, timeout_s: float) -> None:
        self.webhook_url = webhook_url
        self.emu = emu_thread.emu
        self.timeout_s = timeout_s
        self.answers = LineAnswers(self.emu)
        self.client: Optional[LineWebhookClient] = None
        self._stop = asyncio.Event()
        self._poller: Optional[asyncio.Task] = None

    async def open(self) -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.client = LineWebhookClient(
            self.webhook_url, CHANNEL_SECRET, session=session, token_source=emulator_tokens(self.emu)
        )
        self.client._own_session = True  # close the session with the client
        self.answers = LineAnswers(self.emu)
        self._stop.clear()
        self._poller = asyncio.create_task(self.answers.run(self._stop))

    async def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            await self._poller
        if self.client is not None:
            await self.client.close()

    def prepare(self, customer: LoadCustomer) -> None:
        # the gateway reads the language from the LINE profile, like in production
        self.emu.set_profile(customer.line_user_id, customer.display_name, customer.language)

    async def say(self, phase: Phase, customer: LoadCustomer, turn: Turn, tap: bool) -> Answer:
        assert self.client is not None
        user = customer.line_user_id
        event = await (self.client.postback_event(user, turn.text) if tap else self.client.text_event(user, turn.text))
        self.answers.expect(user, event["replyToken"], turn.index)
        turn.sent_at = time.time()
        try:
            result = await self.client.post([event])
        except aiohttp.ClientError:
            phase.ack_errors += 1
            raise NoAnswer() from None
        turn.ack_ms = result.elapsed_s * 1000
        if result.status != 200:
            phase.ack_errors += 1  # LINE would redeliver; this bench does not
            raise NoAnswer()
        return await self.answers.answer(phase, user, turn.index, self.timeout_s)


# --- running a phase ------------------------------------------------------------------------


async def converse(phase: Phase, channel: Any, pool: CustomerPool, language: str, think_s: float) -> None:
    """One simulated person: conversation after conversation until the deadline."""
    script = SCRIPTS[language]
    while time.time() < phase.deadline:
        customer = await asyncio.to_thread(pool.take, language)
        channel.prepare(customer)
        phase.orders.append(customer.order_number)
        text, tap, index, thanked = script.opening, False, 0, False
        while time.time() < phase.deadline:
            turn = phase.turn(customer, index, text)
            try:
                answer = await channel.say(phase, customer, turn, tap)
            except NoAnswer:
                break  # counted as unanswered below; this customer gives up
            turn.answered_at = answer.at
            if thanked:
                phase.conversations_done += 1
                break
            following = next_message(script, customer, answer)
            if following is None:
                phase.conversations_unexpected += 1
                break
            text, tap = following
            thanked = text == script.thanks
            index += 1
            if think_s:
                await asyncio.sleep(random.uniform(0.5, 1.5) * think_s)


async def run_phase(
    phase: Phase, channel: Any, pool: CustomerPool, users: int, duration_s: float, think_s: float
) -> None:
    await channel.open()
    first_turn = len(phase.turns)
    try:
        phase.started = time.time()
        phase.deadline = phase.started + duration_s

        async def person(slot: int) -> None:
            await asyncio.sleep(random.uniform(0, min(2.0, duration_s / 10)))  # not all at 0 ms
            await converse(phase, channel, pool, "ja" if slot % 2 == 0 else "en", think_s)

        await asyncio.gather(*(person(i) for i in range(users)))
        if isinstance(channel, LineChannel):
            await asyncio.sleep(3.0)  # a late second answer would show up now
            channel.answers.poll()
            phase.duplicates += channel.answers.leftovers()
    finally:
        await channel.close()
    phase.unanswered = sum(1 for t in phase.turns if t.answered_at is None)
    phase.answered_in_time += sum(
        1 for t in phase.turns[first_turn:] if t.answered_at is not None and t.answered_at <= phase.deadline
    )
    phase.measured_s += duration_s


async def tracker_check(rasa_url: str, token: str, sent: Dict[str, List[str]]) -> Dict[str, int]:
    """Compares each user's messages in Rasa's tracker with what was sent: missing,
    duplicated, or in another order."""
    missing = duplicated = reordered = 0
    sem = asyncio.Semaphore(4)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(user: str, texts: List[str]) -> None:
            nonlocal missing, duplicated, reordered
            async with sem:
                async with session.get(f"{rasa_url}/conversations/{user}/tracker", params={"token": token}) as resp:
                    events = (await resp.json())["events"]
            seen = [e.get("text") for e in events if e.get("event") == "user"]
            lacking = Counter(texts) - Counter(seen)
            extra = Counter(seen) - Counter(texts)
            missing += sum(lacking.values())
            duplicated += sum(extra.values())
            if not lacking and not extra and seen != texts:
                reordered += 1

        await asyncio.gather(*(one(u, t) for u, t in sent.items()))
    return {"tracker_missing": missing, "tracker_duplicated": duplicated, "tracker_out_of_order": reordered}


def summarise(phase: Phase, tracker: Dict[str, int], remedies: Dict[str, int]) -> Dict[str, Any]:
    answered = [t for t in phase.turns if t.answered_at is not None]
    acks = [t.ack_ms for t in phase.turns if t.ack_ms is not None]
    e2e = [t.e2e_ms for t in answered]

    def pct(values: List[float], fraction: float) -> Optional[float]:
        return round(percentile(values, fraction), 1) if values else None

    return {
        "phase": phase.name,
        "channel": phase.channel,
        "rasa_servers": phase.rasa_servers,
        "users": phase.users,
        "speedups": phase.speedups,
        "messages_sent": len(phase.turns),
        "messages_answered": len(answered),
        "messages_per_s": round(phase.answered_in_time / phase.measured_s, 2),
        "ack_p50_ms": pct(acks, 0.5),
        "ack_p99_ms": pct(acks, 0.99),
        "e2e_p50_ms": pct(e2e, 0.5),
        "e2e_p95_ms": pct(e2e, 0.95),
        "e2e_mean_ms": round(statistics.mean(e2e), 1) if e2e else None,
        "conversations_done": phase.conversations_done,
        "conversations_unexpected": phase.conversations_unexpected,
        # what must be zero
        "lost": phase.unanswered + tracker["tracker_missing"],
        "duplicated": phase.duplicates + tracker["tracker_duplicated"],
        "out_of_order": phase.out_of_order + tracker["tracker_out_of_order"],
        "remedies_twice": sum(1 for n in remedies.values() if n > 1),
        # the details behind them
        "unanswered": phase.unanswered,
        **tracker,
        "remedies_applied": sum(remedies.values()),
        "apologies": phase.apologies,
        "pushes": phase.pushes,
        "ack_errors": phase.ack_errors,
        "cpu_percent": CpuMeter.percent(phase.cpu),
        "memory_mb": dict(phase.memory_mb),
        # CPU per answered message: comparable between runs even on a shared machine
        "cpu_ms_per_message": {
            n: round(v / max(1, len(answered)) * 1000, 1)
            for n, v in phase.cpu.items()
            if n not in ("wall", "machine_busy", "machine_total")
        },
    }


class CpuMeter:
    """CPU used by each of our processes (and the whole machine) while phases run."""

    def __init__(self, pids: Dict[str, int]) -> None:
        self.pids = pids

    def read(self) -> Dict[str, float]:
        busy, total = machine_busy_seconds()
        return {
            "wall": time.time(),
            "machine_busy": busy,
            "machine_total": total,
            **{n: cpu_seconds(p) for n, p in self.pids.items()},
        }

    @staticmethod
    def add(into: Dict[str, float], before: Dict[str, float], after: Dict[str, float]) -> None:
        for name in after:
            into[name] = into.get(name, 0.0) + after[name] - before[name]

    @staticmethod
    def percent(used: Dict[str, float]) -> Dict[str, float]:
        """Percent of one core per process; the machine's busy share of its 2 cores x 100."""
        wall = used.get("wall") or 1.0
        skip = ("wall", "machine_busy", "machine_total")
        out = {n: round(v / wall * 100, 1) for n, v in used.items() if n not in skip}
        out["ours"] = round(sum(out.values()), 1)
        total = used.get("machine_total") or 0.0
        cores = os.cpu_count() or 1
        out["machine_busy"] = round(used.get("machine_busy", 0.0) / total * cores * 100, 1) if total else 0.0
        return out


# --- inside the Rasa servers: profiling (--profile-rasa); which speed-ups (--speedups) ----

# Written into the run's folder and put on the Rasa servers' PYTHONPATH (sitecustomize runs
# at interpreter start, before Rasa is imported).
# - BENCH_PROFILE_OUT: cProfile starts on SIGUSR1 (model loading stays out of the figures)
#   and is saved on SIGUSR2.
# The bottlenecks the profile showed are removed in bot/server/speedups.py, which every Rasa
# started by devkit/stack.py uses; RASA_SPEEDUPS (--speedups) picks them for a comparison.
RASA_SITE = """
import os, signal
_out = os.environ.get("BENCH_PROFILE_OUT")
if _out:
    import cProfile
    _profile = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda *_: _profile.enable())

    def _save(*_):
        _profile.disable()
        _profile.dump_stats(_out)

    signal.signal(signal.SIGUSR2, _save)
"""


def rasa_env(workdir: Path, profile: bool, speedups: str) -> Dict[str, str]:
    env: Dict[str, str] = {"RASA_SPEEDUPS": speedups}
    if profile:
        site = workdir / "rasa-site"
        site.mkdir(parents=True, exist_ok=True)
        (site / "sitecustomize.py").write_text(RASA_SITE)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        env["BENCH_PROFILE_OUT"] = str(workdir / "rasa-0.prof")
    return env


def profile_summary(path: Path, top: int = 30) -> str:
    """The functions Rasa spent its time in (cumulative, then own time), as text."""
    import io
    import pstats

    if not path.exists():
        return "(no profile was written)"
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the stack ------------------------------------------------------------------------------


def start_stack(
    args: argparse.Namespace, counts: Sequence[int], emu_thread: EmulatorThread, orders_url: str, st: Stack
) -> Dict[Any, Dict[str, str]]:
    """redis, actions, max(counts) Rasa servers on Redis stores, a Rasa balancer when two or
    more, one gateway per Rasa set-up. Returns per count: {"rasa": url, "gateway": url}."""
    work = st.workdir
    redis = st.add("redis", stack.start_redis())
    actions = st.add("actions", stack.start_action_server(work / "actions", env={"ORDERS_DATABASE_URL": orders_url}))
    endpoints = write_endpoints(work / "endpoints.yml", {"REDIS_URL": redis.url})
    model = args.model or stack.trained_model()
    servers = []
    for i in range(max(counts)):
        # one after the other: two model loads at once on a busy 2-core machine can exceed
        # stack.start_rasa's 240 s start-up limit
        servers.append(
            st.add(
                f"rasa-{i}",
                stack.start_rasa(
                    model,
                    actions.url,
                    work / f"rasa-{i}",
                    token=st.token,
                    endpoints=str(endpoints),
                    env=rasa_env(work, args.profile_rasa and i == 0, args.speedups),
                ),
            )
        )
    setups: Dict[Any, Dict[str, str]] = {}
    if args.baseline_speedups:
        # Rasa as before this work (only the speed-ups named), beside the others: "today's"
        # CPU per message measured in the same run, on the same machine
        base = st.add(
            "rasa-base",
            stack.start_rasa(
                model,
                actions.url,
                work / "rasa-base",
                token=st.token,
                endpoints=str(endpoints),
                env=rasa_env(work, False, args.baseline_speedups),
            ),
        )
        setups["base"] = {"rasa": base.url}
    for count in counts:
        rasa_url = servers[0].url
        if count > 1:
            rasa_url = st.add(
                f"rasa-balancer-{count}",
                stack.start_balancer([s.url for s in servers[:count]], work, f"rasa-balancer-{count}"),
            ).url
        port = stack.free_port()
        env = stack.gateway_env(
            port,
            line_api_url=emu_thread.url,
            redis_url=redis.url,
            rasa_url=rasa_url,
            rasa_token=st.token,
            actions_url=actions.url,
            attachments_dir=work / "attachments",
            channel_secret=CHANNEL_SECRET,
            channel_access_token=CHANNEL_ACCESS_TOKEN,
            log_level="WARNING",
        )
        gateway = st.add(f"gateway-{count}", stack.start_gateway(env, port, work / f"gateway-{count}.log"))
        setups[count] = {"rasa": rasa_url, "gateway": gateway.webhook_url}
    setups[0] = {"rasa": servers[0].url}  # trackers are read from any server (shared Redis)
    return setups


# --- report ---------------------------------------------------------------------------------


def markdown(rows: List[Dict[str, Any]], args: argparse.Namespace) -> str:
    def f(value: Any) -> str:
        return "—" if value is None else (f"{value:.0f}" if isinstance(value, float) and value >= 100 else str(value))

    head = (
        "| phase | customers | Rasa servers | msg/s | ack p50 ms | ack p99 ms | e2e p50 ms | e2e p95 ms "
        "| conversations | lost | duplicated | out of order | remedies twice | apologies "
        "| machine busy % (all cores) |"
    )
    lines = [head, "|" + "|".join("---" for _ in range(head.count("|") - 1)) + "|"]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                f(v)
                for v in (
                    r["channel"] if r["speedups"] == "all" else f"{r['channel']} (speed-ups: {r['speedups']})",
                    r["users"],
                    r["rasa_servers"],
                    r["messages_per_s"],
                    r["ack_p50_ms"],
                    r["ack_p99_ms"],
                    r["e2e_p50_ms"],
                    r["e2e_p95_ms"],
                    f"{r['conversations_done']} (+{r['conversations_unexpected']} unexpected)",
                    r["lost"],
                    r["duplicated"],
                    r["out_of_order"],
                    r["remedies_twice"],
                    r["apologies"],
                    r["cpu_percent"]["machine_busy"],
                )
            )
            + " |"
        )
    names = [n for n in rows[0]["cpu_percent"] if n != "machine_busy"]
    lines += [
        "",
        "CPU % per process during each phase (100 % = one core):",
        "",
        "| phase | " + " | ".join(names) + " |",
        "|" + "|".join("---" for _ in range(len(names) + 1)) + "|",
    ]
    for r in rows:
        lines.append(f"| {r['phase']} | " + " | ".join(str(r["cpu_percent"][n]) for n in names) + " |")
    procs = [n for n in names if n != "ours"]
    lines += [
        "",
        "CPU ms per answered message, and memory (MB resident, the most at a round's end):",
        "",
        "| phase | " + " | ".join(f"{n} ms" for n in procs) + " | " + " | ".join(f"{n} MB" for n in procs) + " |",
        "|" + "|".join("---" for _ in range(2 * len(procs) + 1)) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | "
            + " | ".join(str(r["cpu_ms_per_message"].get(n, "—")) for n in procs)
            + " | "
            + " | ".join(str(r["memory_mb"].get(n, "—")) for n in procs)
            + " |"
        )
    lines += ["", "Targets:", *targets(rows)]
    lines += [
        "",
        f"{args.users} customers at once, {args.duration:.0f} s per phase in {args.rounds} "
        f"rounds, think time {args.think} s; ja/en half each; e2e = message sent -> answer "
        f"recorded; machine busy = all processes on this shared machine, {os.cpu_count()} cores "
        "= 100 % each.",
    ]
    return "\n".join(lines)


async def measure(
    args: argparse.Namespace,
    counts: Sequence[int],
    setups: Dict[Any, Dict[str, str]],
    emu_thread: EmulatorThread,
    pool: CustomerPool,
    st: Stack,
) -> List[Dict[str, Any]]:
    meter = CpuMeter(st.pids)
    levels = user_levels(args.users)
    warm = Phase("warm-up", "warm", 0)
    for count in counts:  # model graph, action imports, profile cache paths, DB connections
        for channel in (
            RestChannel(setups[count]["rasa"], args.answer_timeout),
            LineChannel(setups[count]["gateway"], emu_thread, args.answer_timeout),
        ):
            await run_phase(warm, channel, pool, 4, 8.0, 0)
    if "base" in setups:
        await run_phase(warm, RestChannel(setups["base"]["rasa"], args.answer_timeout), pool, 4, 8.0, 0)

    def named(name: str, users: int) -> str:
        return name if len(levels) == 1 else f"{name}@{users}"

    phases: Dict[Tuple[int, Any, str], Phase] = {}
    for users in levels:
        for count in counts:
            for kind in args.channels.split(","):
                phases[(users, count, kind)] = Phase(
                    named(f"{kind}-{count}", users), kind, count, users=users, speedups=args.speedups
                )
        if "base" in setups:
            phases[(users, "base", "rest")] = Phase(
                named("rest-base-1", users), "rest", 1, users=users, speedups=args.baseline_speedups
            )
    per_round = args.duration / args.rounds
    if args.profile_rasa:
        os.kill(st.pids["rasa-0"], signal.SIGUSR1)
    for users in levels:
        # Rounds alternate the set-ups, so a burst of other work on this shared machine does
        # not fall on one set-up only.
        for round_no in range(args.rounds):
            for (level, setup, kind), phase in phases.items():
                if level != users:
                    continue
                channel = (
                    RestChannel(setups[setup]["rasa"], args.answer_timeout)
                    if kind == "rest"
                    else LineChannel(setups[setup]["gateway"], emu_thread, args.answer_timeout)
                )
                print(
                    f"round {round_no + 1}/{args.rounds}, {phase.name}: {users} customers for {per_round:.0f} s ...",
                    flush=True,
                )
                before = meter.read()
                await run_phase(phase, channel, pool, users, per_round, args.think)
                CpuMeter.add(phase.cpu, before, meter.read())
                for name, pid in st.pids.items():
                    phase.memory_mb[name] = max(phase.memory_mb.get(name, 0.0), resident_mb(pid))
    if args.profile_rasa:
        os.kill(st.pids["rasa-0"], signal.SIGUSR2)
        await asyncio.sleep(3.0)  # the server writes its profile
        summary = profile_summary(st.workdir / "rasa-0.prof")
        (st.workdir / "rasa-0-profile.txt").write_text(summary)
        print(summary[:12000], flush=True)
    rows = []
    for phase in phases.values():
        tracker = await tracker_check(setups[0]["rasa"], st.token, phase.sent)
        remedies = await asyncio.to_thread(pool.remedies_per_order, phase.orders)
        row = summarise(phase, tracker, remedies)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("cpu_percent", "memory_mb")}), flush=True)
    return rows


def user_levels(text: str) -> List[int]:
    """`--users 50` or a curve `--users 10,25,50,100`."""
    levels = sorted({int(v) for v in str(text).split(",") if v.strip()})
    if not levels or levels[0] < 1:
        raise SystemExit("--users: one or more numbers of customers, e.g. 50 or 10,25,50,100")
    return levels


def targets(rows: List[Dict[str, Any]]) -> List[str]:
    """Issue 18's targets, per number of customers: Rasa's CPU per message against the
    baseline server, and the LINE path against Rasa's REST endpoint with two servers."""
    by = {(r["users"], r["phase"].split("@")[0]): r for r in rows}
    lines = []
    for users in sorted({r["users"] for r in rows}):
        parts = []
        rest, base = by.get((users, "rest-1")), by.get((users, "rest-base-1"))
        if rest and base:
            now, before = rest["cpu_ms_per_message"].get("rasa-0"), base["cpu_ms_per_message"].get("rasa-base")
            if now and before:
                parts.append(f"Rasa CPU/message {now} ms vs {before} ms before ({now / before:.2f}x)")
        for count in (1, 2):
            line, rest_n = by.get((users, f"line-{count}")), by.get((users, f"rest-{count}"))
            if line and rest_n and rest_n["messages_per_s"]:
                ratio = line["messages_per_s"] / rest_n["messages_per_s"]
                parts.append(f"LINE/REST with {count} Rasa: {ratio:.2f}")
        must_be_zero = sum(r[k] for r in rows if r["users"] == users for k in MUST_BE_ZERO)
        parts.append(f"must-be-zero counts: {must_be_zero}")
        lines.append(f"- {users} customers: " + "; ".join(parts))
    return lines


MUST_BE_ZERO = ("lost", "duplicated", "out_of_order", "remedies_twice")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--users", default="50", help="customers at once; a list (10,25,50,100) measures a curve and plots it"
    )
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per phase")
    parser.add_argument(
        "--rasa-servers",
        default="1,2",
        help="Rasa set-ups to compare in this run: 1 = one server, 2 = two behind "
        "the balancer (Redis tracker and lock store in both cases)",
    )
    parser.add_argument("--channels", default="rest,line", help="phases per set-up")
    parser.add_argument(
        "--rounds", type=int, default=2, help="split each phase's time into this many rounds, set-ups alternating"
    )
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean seconds a customer waits after an answer (0: at once)"
    )
    parser.add_argument(
        "--answer-timeout",
        type=float,
        default=120.0,
        help="seconds a customer waits for an answer before counting it lost",
    )
    parser.add_argument(
        "--profile-rasa",
        action="store_true",
        help="cProfile the first Rasa server during the phases (slows it: a diagnosis run, not for the figures)",
    )
    parser.add_argument(
        "--speedups",
        default="all",
        help="bot/server/speedups.py in the Rasa servers: all, none, or names (validator,payloads,...), to measure them",
    )
    parser.add_argument(
        "--baseline-speedups",
        default="",
        help="also a Rasa server with only these speed-ups (e.g. validator: Rasa before issue 18), REST phases",
    )
    parser.add_argument("--model", help="a model .tar.gz (default: stack.trained_model())")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.rasa_servers.split(",")})
    # a plain `kill` still stops every process this run started (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    print(
        f"starting redis, the LINE emulator, the action server, {max(counts)} Rasa server(s), "
        f"balancer and gateways (logs in {workdir}) ...",
        flush=True,
    )
    emu_thread = stack.start_line_emulator(CHANNEL_ACCESS_TOKEN)
    orders_url = f"sqlite:///{workdir / 'orders.db'}"
    pool = CustomerPool(orders_url)
    st = Stack(workdir)
    st.pids["bench+emulator"] = os.getpid()
    try:
        setups = start_stack(args, counts, emu_thread, orders_url, st)
        rows = asyncio.run(measure(args, counts, setups, emu_thread, pool, st))
    finally:
        st.stop()
        emu_thread.stop()
        pool.close()

    table = markdown(rows, args)
    print("\n" + table)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    if len(user_levels(args.users)) > 1:
        from bench.load_curve import plot

        png = plot(rows, out.with_suffix(".png"), " ".join(sys.argv[1:]))
        print(f"plot: {png.relative_to(ROOT)}")
    out.write_text(
        json.dumps(
            {
                "command": " ".join(sys.argv),
                "args": vars(args),
                "customers_seeded": pool.seeded,
                "rows": rows,
                "table": table,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
