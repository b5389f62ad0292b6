#!/usr/bin/env python
"""Measures the handoff decision on the labelled conversations (tests/data/handoff/conversations.yml).

Every conversation goes through the real Rasa server and action server over HTTP, as the
LINE gateway sends it (REST channel: sender, message, metadata with the LINE user id,
display name and language; button taps as their payloads). A handoff is the custom payload
`{"handoff": {...}}` in the bot's answer. Then: precision, recall and F1 of "handed to a
person" overall, per category (safety must be 1.0) and which conversations were wrong.

    .venv-bot/bin/python -m scripts.evaluate_handoff                 # starts its own stack
    .venv-bot/bin/python -m scripts.evaluate_handoff --json results/handoff.json
    .venv-bot/bin/python -m scripts.evaluate_handoff --rasa-url http://127.0.0.1:5005 \\
        --token "$RASA_TOKEN" --orders-url sqlite:///var/orders.db   # a stack already running

Without --rasa-url it starts the action server (on a fresh SQLite orders database) and Rasa
with the trained model (devkit/stack.py; training first if the model is stale). The demo
orders are recreated before each conversation when the orders database is known, so that
one conversation's remedies do not change the next one's policy decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import yaml

from devkit import stack

ROOT = Path(__file__).resolve().parent.parent


DEFAULT_SET = ROOT / "tests" / "data" / "handoff" / "conversations.yml"
CATEGORIES = ("calm", "mildly_annoyed", "frustrated", "safety", "out_of_policy")
CUSTOMERS = {
    "demo": ("U00000000000000000000000000000001", "デモ 太郎"),
    "english": ("U00000000000000000000000000000002", "Emma"),
    "guest": (None, "ゲスト"),  # a fresh LINE user id per conversation
}


class LabelledSetError(ValueError):
    """A mistake in the labelled set, with the conversation it is in."""


# --- the labelled set -------------------------------------------------------------------------
def load_conversations(path: Path = DEFAULT_SET) -> List[Dict[str, Any]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    conversations = data.get("conversations") or []
    seen = set()
    for conv in conversations:
        where = f"{path}: {conv.get('id', '?')}"
        if not conv.get("id") or conv["id"] in seen:
            raise LabelledSetError(f"{where}: every conversation needs a unique id")
        seen.add(conv["id"])
        if conv.get("category") not in CATEGORIES:
            raise LabelledSetError(f"{where}: category must be one of {', '.join(CATEGORIES)}")
        if conv.get("language") not in ("ja", "en"):
            raise LabelledSetError(f"{where}: language must be ja or en")
        if conv.get("customer") not in CUSTOMERS:
            raise LabelledSetError(f"{where}: customer must be one of {', '.join(CUSTOMERS)}")
        if not isinstance(conv.get("expect_handoff"), bool):
            raise LabelledSetError(f"{where}: expect_handoff must be true or false")
        messages = conv.get("messages") or []
        if not 1 <= len(messages) <= 6:
            raise LabelledSetError(f"{where}: give 2-4 customer messages")
        for message in messages:
            if not isinstance(message, (str, int)) and not (isinstance(message, dict) and "tap" in message):
                raise LabelledSetError(f'{where}: a message is a line of text or {{tap: "button text"}}')
    return conversations


# --- talking to the bot -------------------------------------------------------------------------
@dataclass
class Outcome:
    id: str
    category: str
    language: str
    expected: bool
    handed_off: bool = False
    reason: Optional[str] = None
    at_message: Optional[int] = None  # 1-based: which customer message led to the handoff
    frustration: Optional[Dict[str, Any]] = None  # as on the handoff case
    max_score: Optional[float] = None  # the highest frustration score after any message
    skipped_taps: List[str] = field(default_factory=list)
    transcript: List[Dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def correct(self) -> bool:
        return self.error is None and self.handed_off == self.expected


class Bot:
    """Rasa's REST channel, and its HTTP API for restarting a conversation (needs the token)."""

    def __init__(
        self, rasa_url: str, token: Optional[str] = None, reset_orders: Optional[Callable[[], None]] = None
    ) -> None:
        self.url = rasa_url.rstrip("/")
        self.token = token
        self.reset_orders = reset_orders

    def say(self, sender: str, text: str, metadata: Dict[str, Any]) -> List[Dict[str, Any]]:
        body = {"sender": sender, "message": text, "metadata": metadata}
        return stack.post_json(f"{self.url}/webhooks/rest/webhook", body) or []

    def events(self, sender: str) -> Optional[List[Dict[str, Any]]]:
        """The conversation's events (needs the token), for the scores after each message."""
        if not self.token:
            return None
        return stack.get_json(f"{self.url}/conversations/{sender}/tracker?token={self.token}").get("events")

    def restart(self, sender: str, metadata: Dict[str, Any]) -> None:
        if self.token:
            stack.post_json(
                f"{self.url}/conversations/{sender}/tracker/events?token={self.token}", {"event": "restart"}
            )
        else:  # the restart intent works over the webhook too, even in a paused conversation
            self.say(sender, "/restart", metadata)


def _buttons(messages: Sequence[Dict[str, Any]]) -> List[Dict[str, str]]:
    return [b for m in messages for b in m.get("buttons") or []]


def _handoff(messages: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    for message in messages:
        custom = message.get("custom") or {}
        if isinstance(custom, dict) and "handoff" in custom:
            return custom["handoff"]
    return None


def run_conversation(bot: Bot, conv: Dict[str, Any]) -> Outcome:
    outcome = Outcome(conv["id"], conv["category"], conv["language"], conv["expect_handoff"])
    line_id, name = CUSTOMERS[conv["customer"]]
    sender = line_id or f"U{uuid.uuid4().hex}"
    metadata = {"line_user_id": sender, "display_name": name, "language": conv["language"]}
    if bot.reset_orders:
        bot.reset_orders()
    try:
        bot.restart(sender, metadata)
        offered: List[Dict[str, str]] = []
        for number, message in enumerate(conv["messages"], start=1):
            if isinstance(message, dict):
                wanted = str(message["tap"])
                button = next((b for b in offered if wanted in b.get("title", "")), None)
                if button is None:
                    outcome.skipped_taps.append(wanted)
                    continue
                text = button["payload"]
            else:
                text = str(message)
            reply = bot.say(sender, text, metadata)
            outcome.transcript.append({"customer": text, "bot": [m.get("text") for m in reply if m.get("text")]})
            offered = _buttons(reply) or offered
            case = _handoff(reply)
            if case is not None:
                outcome.handed_off, outcome.reason, outcome.at_message = True, case.get("reason"), number
                outcome.frustration = case.get("frustration")
                break
        outcome.max_score = max_score(bot.events(sender))
    except Exception as error:  # noqa: BLE001 - one broken conversation must not hide the others
        outcome.error = f"{type(error).__name__}: {error}"
    return outcome


def max_score(events: Optional[List[Dict[str, Any]]]) -> Optional[float]:
    """The highest frustration score the conversation reached (after each customer message,
    as the frustration policy saw it), with the weights of bot/remedy_policy.yml."""
    if not events:
        return None
    from bot.frustration import assess
    from bot.remedy_policy import load_policy

    settings = load_policy().frustration
    scores = [assess(events[: n + 1], settings).score for n, e in enumerate(events) if e.get("event") == "user"]
    return max(scores) if scores else 0.0


def run_all(bot: Bot, conversations: Sequence[Dict[str, Any]], progress: bool = False) -> List[Outcome]:
    outcomes = []
    for conv in conversations:
        outcome = run_conversation(bot, conv)
        outcomes.append(outcome)
        if progress:
            mark = "ok " if outcome.correct else "XX "
            print(
                f"  {mark}{outcome.id:<28} expected {str(outcome.expected):<5} got {str(outcome.handed_off):<5} "
                f"{outcome.reason or ''}",
                file=sys.stderr,
                flush=True,
            )
    return outcomes


# --- figures ----------------------------------------------------------------------------------
def _ratio(numerator: int, denominator: int) -> Optional[float]:
    return round(numerator / denominator, 3) if denominator else None


def figures(outcomes: Sequence[Outcome]) -> Dict[str, Any]:
    """Precision, recall, F1 of the handoff (positive = handed to a person), per category too."""

    def counts(items: Sequence[Outcome]) -> Dict[str, int]:
        return {
            "tp": sum(o.expected and o.handed_off for o in items),
            "fp": sum(not o.expected and o.handed_off for o in items),
            "fn": sum(o.expected and not o.handed_off for o in items),
            "tn": sum(not o.expected and not o.handed_off for o in items),
        }

    def scores(c: Dict[str, int]) -> Dict[str, Optional[float]]:
        precision = _ratio(c["tp"], c["tp"] + c["fp"])
        recall = _ratio(c["tp"], c["tp"] + c["fn"])
        f1 = None
        if precision is not None and recall is not None and precision + recall > 0:
            f1 = round(2 * precision * recall / (precision + recall), 3)
        return {"precision": precision, "recall": recall, "f1": f1}

    overall = counts(outcomes)
    result: Dict[str, Any] = {
        "conversations": len(outcomes),
        **overall,
        **scores(overall),
        "accuracy": _ratio(overall["tp"] + overall["tn"], len(outcomes)),
        "by_category": {},
        "by_language": {},
        "wrong": [
            {
                "id": o.id,
                "category": o.category,
                "expected": o.expected,
                "handed_off": o.handed_off,
                "reason": o.reason,
                "error": o.error,
                "max_score": o.max_score,
            }
            for o in outcomes
            if not o.correct
        ],
        "reasons": {},
        # How close the calm and mildly annoyed conversations came to the frustration threshold.
        "threshold": _threshold(),
        "highest_score_without_expected_handoff": max(
            (o.max_score for o in outcomes if not o.expected and o.max_score is not None), default=None
        ),
    }
    for category in CATEGORIES:
        items = [o for o in outcomes if o.category == category]
        if items:
            c = counts(items)
            highest = [o.max_score for o in items if o.max_score is not None]
            result["by_category"][category] = {
                "conversations": len(items),
                **c,
                "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
                "accuracy": _ratio(c["tp"] + c["tn"], len(items)),
                "max_score": {"min": min(highest), "max": max(highest)} if highest else None,
            }
    for language in ("ja", "en"):
        items = [o for o in outcomes if o.language == language]
        if items:
            c = counts(items)
            result["by_language"][language] = {"conversations": len(items), **c, **scores(c)}
    for o in outcomes:
        if o.reason:
            result["reasons"][o.reason] = result["reasons"].get(o.reason, 0) + 1
    return result


def _threshold() -> float:
    from bot.remedy_policy import load_policy

    return load_policy().frustration.threshold


def table(result: Dict[str, Any]) -> str:
    def show(value: Optional[float]) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    lines = [
        f"Handoff decision on {result['conversations']} labelled conversations "
        f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']}, tn {result['tn']})",
        f"  overall    precision {show(result['precision'])}  recall {show(result['recall'])}  "
        f"F1 {show(result['f1'])}  accuracy {show(result['accuracy'])}",
    ]
    for language, row in result["by_language"].items():
        lines.append(
            f"  {language:<10} precision {show(row['precision'])}  recall {show(row['recall'])}  "
            f"F1 {show(row['f1'])}  ({row['conversations']})"
        )
    lines.append("  category         n  handed off  recall  accuracy  frustration score (highest per conversation)")
    for category, row in result["by_category"].items():
        spread = row.get("max_score")
        spread_text = f"{spread['min']:.2f} - {spread['max']:.2f}" if spread else "-"
        lines.append(
            f"  {category:<15} {row['conversations']:>2}  {row['tp'] + row['fp']:>10}  "
            f"{show(row['recall']):>6}  {show(row['accuracy']):>8}  {spread_text}"
        )
    if result.get("highest_score_without_expected_handoff") is not None:
        lines.append(
            f"  frustration threshold {result['threshold']:.2f}; highest score in a conversation that "
            f"should stay with the bot: {result['highest_score_without_expected_handoff']:.2f}"
        )
    lines.append("  reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(result["reasons"].items())))
    if result["wrong"]:
        lines.append("  wrong:")
        for w in result["wrong"]:
            got = "handed off" if w["handed_off"] else "kept"
            extra = f" ({w['reason']})" if w["reason"] else ""
            extra += f", highest score {w['max_score']:.2f}" if w["max_score"] is not None else ""
            extra += f" ERROR {w['error']}" if w["error"] else ""
            lines.append(
                f"    {w['id']:<28} {w['category']:<15} expected {'handoff' if w['expected'] else 'none'}, {got}{extra}"
            )
    return "\n".join(lines)


# --- the stack ----------------------------------------------------------------------------------
def reset_orders_database(url: str) -> None:
    """Recreate the demo data (times relative to now), as tests/support/rasa_stack.py does."""
    from bot.store import db as store_db
    from bot.store.models import Base

    engine = store_db.make_engine(url)
    Base.metadata.drop_all(engine)
    store_db.init_db(engine)
    engine.dispose()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="the labelled conversations")
    parser.add_argument("--rasa-url", help="a running Rasa server (default: start the stack here)")
    parser.add_argument("--token", help="its API token (to restart conversations)")
    parser.add_argument("--orders-url", help="the orders database of that stack, recreated before each conversation")
    parser.add_argument("--model", help="model to start Rasa with (default: the trained, up-to-date one)")
    parser.add_argument("--only", help="comma-separated conversation ids")
    parser.add_argument("--json", type=Path, help="write the figures (and each outcome) here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    conversations = load_conversations(args.set)
    if args.only:
        wanted = set(args.only.split(","))
        conversations = [c for c in conversations if c["id"] in wanted]

    services: List[stack.Service] = []
    try:
        if args.rasa_url:
            reset = (lambda: reset_orders_database(args.orders_url)) if args.orders_url else None
            bot = Bot(args.rasa_url, args.token, reset)
        else:
            workdir = Path(tempfile.mkdtemp(prefix="evaluate-handoff-"))
            orders_url = f"sqlite:///{workdir / 'orders.db'}"
            model = args.model or stack.trained_model()
            print(f"starting the action server and Rasa ({Path(model).name}); logs in {workdir}", file=sys.stderr)
            actions = stack.start_action_server(workdir, env={"ORDERS_DATABASE_URL": orders_url})
            services.append(actions)
            rasa = stack.start_rasa(model, actions.url, workdir)
            services.append(rasa)
            bot = Bot(rasa.url, rasa.token, lambda: reset_orders_database(orders_url))
        started = time.monotonic()
        outcomes = run_all(bot, conversations, progress=not args.quiet)
        result = figures(outcomes)
        result["seconds"] = round(time.monotonic() - started, 1)
    finally:
        for service in reversed(services):
            service.stop()

    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({**result, "outcomes": [asdict(o) for o in outcomes]}, ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
    safety = result["by_category"].get("safety", {}).get("recall")
    return 0 if safety in (None, 1.0) and not any(w["error"] for w in result["wrong"]) else 1


if __name__ == "__main__":
    sys.exit(main())
