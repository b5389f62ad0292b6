"""Plays the customer tasks of tasks.yml over the real stack and judges their end state.

One task = one whole conversation: signed LINE webhooks (text and postbacks, the postbacks
being exactly what the gateway sent, signature included) to the real gateway process,
which talks to Rasa and the action server; the end state is read from the orders
database (remedy rows, their claim's order and items) and from the Slack emulator (the
case card and its reason). The helpers of the gateway end-to-end tests are reused.

The customer is a script, but a patient one: when the bot asks something the script did
not foresee (which order? which item? a yes/no) and the task lists the answer in
`if_asked`, the customer taps it. Each such tap is one more customer turn, so a bot that
asks for what it was already told pays for it in turns (and in the asked-again count).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

from contracts.vocabulary import REASONS
from tests.support.line_stack import texts_of, wait_for
from tests.system.line.test_slack_handoff import answer, case_cards

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
TASKS_FILE = ROOT / "tests" / "data" / "tasks.yml"
BASELINE_FILE = ROOT / "tests" / "data" / "tasks_baseline.json"
REPORT_FILE = ROOT / "results" / "tasks" / "report.json"

EXPECT_KINDS = ("remedy", "handoff", "no_remedy")
MAX_EXTRA_TAPS = 3  # taps of `if_asked` answers the patient customer makes at most
REPLY_TIMEOUT_S = 30.0  # the bot answers a turn within this (usually well under a second)
CARD_TIMEOUT_S = 15.0  # the Slack card of an opened case appears within this

# The bot asking which order / which item (measured, not tuned on: buttons by their
# payload, questions by the words a person would read as that question).
ORDER_QUESTION = re.compile(
    r"どのご注文|どの注文|注文番号.{0,20}(教え|お知らせ|送って|入力)|which order|"
    r"what is the order number|(tell|send) me the order number|the order number\?",
    re.I,
)
ITEM_QUESTION = re.compile(r"どの商品|which item", re.I)
ORDER_PAYLOAD = re.compile(r'"order_id"\s*:\s*"?(\w+)')
ITEM_PAYLOAD = re.compile(r'"item"\s*:\s*"item:(\w+)')
REMEDY_PAYLOAD = re.compile(r'"remedy"\s*:')


# --- the tasks --------------------------------------------------------------------------


def load_tasks(path: Path = TASKS_FILE) -> List[Dict[str, Any]]:
    tasks = yaml.safe_load(path.read_text(encoding="utf-8"))["tasks"]
    seen = set()
    for task in tasks:
        where = f"{path.name}: task {task.get('id')!r}"
        assert task.get("id") and task["id"] not in seen, f"{where}: missing or repeated id"
        seen.add(task["id"])
        assert task.get("language") in ("ja", "en"), f"{where}: language must be ja or en"
        assert re.fullmatch(r"U[0-9a-f]{32}", str(task.get("user", ""))), f"{where}: user is a LINE user id"
        assert task.get("turns"), f"{where}: no turns"
        for turn in task["turns"]:
            assert isinstance(turn, dict) and len(turn) == 1 and set(turn) <= {"say", "tap"}, (
                f"{where}: each turn is `say: text` or `tap: label`"
            )
            assert not isinstance(next(iter(turn.values())), bool), (
                f"{where}: quote yes/no/on/off in a turn (YAML reads them as true/false)"
            )
        expect = task.get("expect") or {}
        assert sum(k in expect for k in EXPECT_KINDS) == 1, f"{where}: expect one of {EXPECT_KINDS}"
        assert set(expect) <= {*EXPECT_KINDS, "reply_contains", "settled"}, f"{where}: unknown expect key"
        if "remedy" in expect:
            assert {"kind", "amount"} <= set(expect["remedy"]), f"{where}: remedy needs kind and amount"
        assert int(task.get("fewest_turns", 0)) >= 1, f"{where}: fewest_turns"
        assert set(task.get("given") or []) <= {"order", "item"}, f"{where}: given is [order, item]"
    return tasks


# --- what the customer sees -------------------------------------------------------------


def _walk(node: Any) -> Iterable[Dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def quick_replies(messages: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """(label, postback data) of the quick replies shown under the bot's last messages."""
    return [
        (i["action"].get("label", ""), i["action"].get("data", ""))
        for m in messages
        for i in (m.get("quickReply") or {}).get("items", [])
        if i.get("action", {}).get("type") == "postback"
    ]


def card_buttons(messages: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """(label, postback data) of the buttons inside Flex cards."""
    return [
        (n["action"].get("label", ""), n["action"].get("data", ""))
        for m in messages
        if m.get("type") == "flex"
        for n in _walk(m.get("contents"))
        if isinstance(n.get("action"), dict) and n["action"].get("type") == "postback"
    ]


def find_button(messages: List[Dict[str, Any]], label: str, cards: bool = True) -> Optional[str]:
    """The postback data of the first button whose LABEL (what the customer reads; not its
    data, which the customer never sees) contains `label`, quick replies first."""
    wanted = label.casefold()
    buttons = quick_replies(messages) + (card_buttons(messages) if cards else [])
    for shown, data in buttons:
        if wanted in shown.casefold():
            return data
    return None


def labels(messages: List[Dict[str, Any]]) -> List[str]:
    return [label for label, _ in quick_replies(messages) + card_buttons(messages)]


def what_customer_reads(messages: List[Dict[str, Any]]) -> str:
    """The texts, and the texts of the Flex cards (alt text included)."""
    parts = [texts_of(messages)]
    for m in messages:
        if m.get("type") == "flex":
            parts.append(m.get("altText", ""))
            parts += [n["text"] for n in _walk(m.get("contents")) if n.get("type") == "text" and "text" in n]
    return "\n".join(p for p in parts if p)


def asks_for(messages: List[Dict[str, Any]]) -> List[str]:
    """What this bot turn asks the customer for: 'order' and/or 'item'."""
    text = what_customer_reads(messages)
    datas = [d for _, d in quick_replies(messages) + card_buttons(messages)]
    orders = {m.group(1) for d in datas for m in [ORDER_PAYLOAD.search(d)] if m}
    items = {m.group(1) for d in datas for m in [ITEM_PAYLOAD.search(d)] if m}
    asked = []
    if len(orders) >= 2 or ORDER_QUESTION.search(text):
        asked.append("order")
    if len(items) >= 2 or ITEM_QUESTION.search(text):
        asked.append("item")
    return asked


def still_asking(messages: List[Dict[str, Any]]) -> List[str]:
    """What this answer still waits for: an order, an item, a remedy choice (empty when the
    bot has let the matter go)."""
    waiting = list(asks_for(messages))
    datas = [d for _, d in quick_replies(messages) + card_buttons(messages)]
    if "order" not in waiting and any(ORDER_PAYLOAD.search(d) for d in datas):
        waiting.append("order")
    if "item" not in waiting and any(ITEM_PAYLOAD.search(d) for d in datas):
        waiting.append("item")
    if any(REMEDY_PAYLOAD.search(d) for d in datas):
        waiting.append("remedy")
    return waiting


# --- the end state ----------------------------------------------------------------------


def orders_db_path(orders_url: str) -> str:
    return orders_url.removeprefix("sqlite:///")


def remedies_applied(orders_url: str) -> List[Dict[str, Any]]:
    """Every remedy row (the database is recreated before each task, so all are this
    task's), with its claim's order number and item names."""
    with sqlite3.connect(orders_db_path(orders_url)) as db:
        rows = db.execute(
            "SELECT r.kind, r.amount, o.number, c.item_ids, cu.line_user_id FROM remedies r "
            "JOIN claims c ON c.id = r.claim_id LEFT JOIN orders o ON o.id = c.order_id "
            "LEFT JOIN customers cu ON cu.id = c.customer_id ORDER BY r.id"
        ).fetchall()
        names = {i: (ja, en) for i, ja, en in db.execute("SELECT id, name_ja, name_en FROM order_items")}
    out = []
    for kind, amount, number, item_ids, line_user in rows:
        ids = json.loads(item_ids or "[]")
        out.append(
            {
                "kind": kind,
                "amount": amount,
                "order": number,
                "line_user_id": line_user,
                "items": [names.get(int(i), (str(i), str(i)))[0] for i in ids if str(i).isdigit()],
                "item_names": [names.get(int(i), (str(i), str(i))) for i in ids if str(i).isdigit()],
            }
        )
    return out


def handoffs_recorded(orders_url: str) -> List[Tuple[str, str]]:
    with sqlite3.connect(orders_db_path(orders_url)) as db:
        return db.execute("SELECT case_number, reason FROM handoffs ORDER BY id").fetchall()


def open_case_id(redis_client: Any, user: str) -> Optional[str]:
    """The case the gateway opened for this customer (its owner key), if any."""
    value = redis_client.get(f"gw:case:owner:{user}")
    return value.decode() if isinstance(value, bytes) else value


def reason_of_card(card: Dict[str, Any]) -> str:
    header = next((b["text"]["text"] for b in card.get("blocks") or [] if b.get("type") == "header"), "")
    for reason, label in REASONS.items():
        if label.bilingual() in header:
            return reason
    return header


# --- one task -----------------------------------------------------------------------------


@dataclass
class Outcome:
    id: str
    language: str
    known_gap: Optional[str]
    success: bool = False
    why: str = ""
    turns_used: int = 0
    fewest_turns: int = 0
    extra_taps: List[str] = field(default_factory=list)
    asked_again: List[Dict[str, Any]] = field(default_factory=list)
    remedies: List[Dict[str, Any]] = field(default_factory=list)
    handoff_reason: Optional[str] = None
    case_id: Optional[str] = None
    last_reply: str = ""
    transcript: List[Dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


class Player:
    """Plays one task as its customer over the LINE webhook client and judges it."""

    def __init__(
        self, task: Dict[str, Any], client: Any, line: Any, slack: Any, redis_client: Any, orders_url: str
    ) -> None:
        self.task = task
        self.client, self.line, self.slack = client, line, slack
        self.redis, self.orders_url = redis_client, orders_url
        self.user = task["user"]
        self.given = set(task.get("given") or [])
        self.out = Outcome(task["id"], task["language"], task.get("known_gap"), fewest_turns=int(task["fewest_turns"]))
        self.last_messages: List[Dict[str, Any]] = []

    # the conversation ------------------------------------------------------------------
    async def _send(self, kind: str, value: str, data: Optional[str] = None) -> List[Dict[str, Any]]:
        if kind == "say":
            event, res = await self.client.send_text(self.user, value)
            assert res.status == 200, f"the gateway refused a webhook: {res.status}"
        else:
            event = await self.client.postback_event(self.user, data)
            res = await self.client.post([event])
            assert res.status == 200, f"the gateway refused a webhook: {res.status}"
        self.out.turns_used += 1
        turn = self.out.turns_used
        self.out.transcript.append({"turn": turn, kind: value})
        messages = await answer(self.line, event, timeout=REPLY_TIMEOUT_S)
        self.last_messages = messages
        self.out.transcript.append({"bot": what_customer_reads(messages), "buttons": labels(messages)})
        for what in asks_for(messages):
            if what in self.given:
                self.out.asked_again.append({"turn": turn, "asked": what})
        return messages

    def _ended(self) -> bool:
        """An end state is reached: money moved, or a person has the case."""
        return bool(remedies_applied(self.orders_url)) or bool(open_case_id(self.redis, self.user))

    def _patient_answer(self, messages: List[Dict[str, Any]]) -> Optional[Tuple[str, str]]:
        """An `if_asked` answer among the quick replies just shown, not tapped before."""
        if len(self.out.extra_taps) >= MAX_EXTRA_TAPS:
            return None
        for label in self.task.get("if_asked") or []:
            if label in self.out.extra_taps:
                continue
            data = find_button(messages, str(label), cards=False)
            if data:
                return str(label), data
        return None

    async def play(self) -> Outcome:
        start = time.monotonic()
        try:
            await self._play()
            await self._judge()
        except AssertionError as error:
            self.out.success, self.out.why = False, self.out.why or str(error).splitlines()[0]
        self.out.seconds = round(time.monotonic() - start, 2)
        return self.out

    async def _play(self) -> None:
        turns = list(self.task["turns"])
        messages: List[Dict[str, Any]] = []
        while not self._ended():
            if turns:
                ((kind, value),) = turns[0].items()
                value = str(value)
                if kind == "say":
                    turns.pop(0)
                    messages = await self._send("say", value)
                    continue
                data = find_button(messages, value)
                if data:
                    turns.pop(0)
                    messages = await self._send("tap", value, data)
                    continue
            # the script has no answer to what the bot shows: the patient customer's
            patient = self._patient_answer(messages)
            if patient is None:
                if turns:
                    self.out.why = (
                        f"no button {value!r} to tap (the bot showed {labels(messages)}; "
                        f"it said {what_customer_reads(messages)[:160]!r})"
                    )
                return
            self.out.extra_taps.append(patient[0])
            messages = await self._send("tap", patient[0], patient[1])
        self.out.last_reply = what_customer_reads(messages)

    # the verdict --------------------------------------------------------------------------
    async def _judge(self) -> None:
        expect = self.task["expect"]
        out = self.out
        if not out.last_reply and out.transcript:
            out.last_reply = next((t["bot"] for t in reversed(out.transcript) if "bot" in t), "")
        out.remedies = remedies_applied(self.orders_url)
        out.case_id = open_case_id(self.redis, self.user)
        if out.case_id:
            card = await self._card(out.case_id)
            out.handoff_reason = reason_of_card(card) if card else None
            if out.handoff_reason is None:
                recorded = dict(handoffs_recorded(self.orders_url))
                out.handoff_reason = recorded.get(out.case_id, "(no Slack card)")
        problems: List[str] = []
        if out.why:
            problems.append(out.why)
        if "remedy" in expect:
            problems += self._check_remedy(expect["remedy"])
        elif "handoff" in expect:
            problems += self._check_handoff(expect["handoff"])
        else:
            if out.remedies:
                problems.append(f"a remedy was applied: {self._remedy_text(out.remedies)}")
            if out.case_id:
                problems.append(f"handed to a person ({out.handoff_reason}) though nothing needed one")
        if expect.get("settled") and not out.case_id:
            waiting = still_asking(self.last_messages)
            if waiting:
                problems.append(
                    f"the bot still asks for {'/'.join(waiting)} after the customer let it go: {out.last_reply[:120]!r}"
                )
        wanted = expect.get("reply_contains")
        if wanted:
            options = [wanted] if isinstance(wanted, str) else list(wanted)
            if not any(str(o).casefold() in out.last_reply.casefold() for o in options):
                problems.append(f"the last answer holds none of {options}: {out.last_reply[:160]!r}")
        out.success = not problems
        out.why = "; ".join(dict.fromkeys(problems))

    def _check_remedy(self, want: Dict[str, Any]) -> List[str]:
        got = self.out.remedies
        if self.out.case_id and not got:
            return [f"handed to a person ({self.out.handoff_reason}) instead of {want['kind']} ¥{want['amount']}"]
        if len(got) != 1:
            return [f"expected one remedy {want['kind']} ¥{want['amount']}, got {self._remedy_text(got) or 'none'}"]
        r = got[0]
        problems = []
        if (r["kind"], r["amount"]) != (want["kind"], int(want["amount"])):
            problems.append(f"applied {self._remedy_text(got)}, expected {want['kind']} ¥{want['amount']}")
        if want.get("order") and str(want["order"]) != r["order"]:
            problems.append(f"remedy on order #{r['order']}, expected #{want['order']}")
        if want.get("items"):
            # each claimed item by its Japanese or English name, nothing more, nothing less
            wanted = list(want["items"])
            claimed = [n for n in r["item_names"] if not any(w in n for w in wanted)]
            missing = [w for w in wanted if not any(w in n for n in r["item_names"])]
            if claimed or missing:
                problems.append(f"remedy for {r['items']}, expected {wanted}")
        return problems

    def _check_handoff(self, want: Any) -> List[str]:
        problems = []
        if self.out.remedies:
            problems.append(f"a remedy was applied: {self._remedy_text(self.out.remedies)}")
        if not self.out.case_id:
            return problems + [f"no case opened (expected a handoff: {want})"]
        reasons = [want] if isinstance(want, str) else list(want)
        if "any" not in reasons and self.out.handoff_reason not in reasons:
            problems.append(f"handed off for {self.out.handoff_reason}, expected {reasons}")
        return problems

    async def _card(self, case_id: str) -> Optional[Dict[str, Any]]:
        try:
            return await wait_for(
                lambda: (case_cards(self.slack, case_id) or [None])[0],
                CARD_TIMEOUT_S,
                what="the Slack card of the case",
            )
        except AssertionError:
            return None

    @staticmethod
    def _remedy_text(rows: List[Dict[str, Any]]) -> str:
        return ", ".join(f"{r['kind']} ¥{r['amount']} on #{r['order']} {r['items']}" for r in rows)


# --- the figures --------------------------------------------------------------------------


def summarise(outcomes: List[Outcome]) -> Dict[str, Any]:
    by_language: Dict[str, Any] = {}
    for language in ("ja", "en", "all"):
        mine = [o for o in outcomes if language == "all" or o.language == language]
        if not mine:
            continue
        won = [o for o in mine if o.success]
        by_language[language] = {
            "tasks": len(mine),
            "succeeded": len(won),
            "success_rate": round(len(won) / len(mine), 4),
            "known_gaps": sum(1 for o in mine if o.known_gap),
            # over the tasks that succeeded: the customer's turns against the fewest possible
            "mean_turns_used": round(sum(o.turns_used for o in won) / len(won), 2) if won else None,
            "mean_fewest_turns": round(sum(o.fewest_turns for o in won) / len(won), 2) if won else None,
            "extra_turns": sum(o.turns_used - o.fewest_turns for o in won),
            # bot turns asking for the order or the item the first message had given
            "asked_again": sum(len(o.asked_again) for o in mine),
            "tasks_asked_again": sum(1 for o in mine if o.asked_again),
        }
    return by_language


def write_report(outcomes: List[Outcome], seconds: float, path: Path = REPORT_FILE) -> Dict[str, Any]:
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tasks_file": str(TASKS_FILE.relative_to(ROOT)),
        "seconds": round(seconds, 1),  # the whole session, the stack's start included
        "summary": summarise(outcomes),
        "failures": [{"id": o.id, "known_gap": o.known_gap, "why": o.why} for o in outcomes if not o.success],
        "unexpected_passes": [o.id for o in outcomes if o.success and o.known_gap],
        "tasks": [o.to_json() for o in outcomes],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return report


def summary_lines(report: Dict[str, Any]) -> List[str]:
    lines = [
        f"{'language':<9}{'tasks':>6}{'ok':>5}{'success':>9}{'gaps':>6}"
        f"{'turns used':>12}{'fewest':>8}   asked again (times in tasks)",
        "         (turns: mean customer turns of the tasks that succeeded, and the fewest possible)",
    ]
    for language, s in report["summary"].items():
        lines.append(
            f"{language:<9}{s['tasks']:>6}{s['succeeded']:>5}{s['success_rate'] * 100:>8.1f}%"
            f"{s['known_gaps']:>6}{s['mean_turns_used'] or 0:>12.2f}{s['mean_fewest_turns'] or 0:>8.2f}"
            f"{s['asked_again']:>6} in {s['tasks_asked_again']:>3}"
        )
    for f in report["failures"]:
        lines.append(f"  {'gap ' if f['known_gap'] else 'FAIL'} {f['id']}: {f['why'][:150]}")
    for task_id in report["unexpected_passes"]:
        lines.append(f"  pass {task_id} (marked known_gap: passed this time)")
    lines.append(f"report: {REPORT_FILE.relative_to(ROOT)} (session {report['seconds']:.0f} s)")
    return lines


# Every task's outcome in this session, in the order played (read by the aggregate test
# and by the summary in conftest.py).
OUTCOMES: List[Outcome] = []
