"""Seeded conversations for the quality audit (tests/bot/test_audit.py, and the report's
screenshot in tests/system/browser/test_audit_report.py, which runs this module in the bot's
environment: `python -m tests.bot.audit_conversations URL`).

Each case goes through the real action-server path to its end: the events are what Rasa's
tracker holds (customer turns with their NLU, the bot's responses with their names, the
agents' replies the gateway appended with their names), and the case is closed by the
real code: a remedy applied and the transcript kept (bot/actions/case_record.py), or
action_agent_resolved then action_record_satisfaction on a real rasa-sdk Tracker.
One case per pattern of bot/audit.yml and two clean ones in each language; EXPECTED is
exactly what the audit must find in them: (case label, pattern, turn index).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import services
from bot.actions.agent import ActionAgentResolved, ActionRecordSatisfaction
from bot.actions.case_record import keep_transcript
from bot.remedy_policy.types import RemedyOffer

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
# 12:00 in Tokyo on a working day: inside the agents' hours (bot/handoff.yml)
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
DAY = "2026-11-25"
JA_USER = "U00000000000000000000000000000001"  # デモ 太郎 (demo data)
EN_USER = "U00000000000000000000000000000002"
PHONE = "090-1234-5678"

Event = Dict[str, Any]

# (case label, pattern, turn index): everything the audit must find, and nothing else.
EXPECTED: Set[Tuple[str, str, int]] = {
    ("coupon_first_ja", "coupon_first", 3),
    ("bare_cant_en", "bare_cant", 3),
    ("asked_again_ja", "asked_again", 3),
    ("passed_around_en", "passed_around", 4),
    ("unanswered_ja", "unanswered_question", 4),
    ("slow_reply_en", "slow_first_reply", 3),
    ("unsatisfied_ja", "unsatisfied", 6),
    # the worst case: several patterns in one
    ("worst_en", "asked_again", 3),
    ("worst_en", "slow_first_reply", 3),
    ("worst_en", "bare_cant", 5),
    ("worst_en", "unsatisfied", 8),
}
CLEAN = ("clean_remedy_ja", "clean_agent_ja", "clean_remedy_en", "clean_agent_en")


def at(minutes_before: float) -> float:
    return (NOW - timedelta(minutes=minutes_before)).timestamp()


def user(text: str, intent: str, minutes: float, entities: Sequence[Tuple[str, Any]] = ()) -> Event:
    return {
        "event": "user",
        "text": text,
        "timestamp": at(minutes),
        "parse_data": {
            "intent": {"name": intent, "confidence": 0.99},
            "entities": [{"entity": name, "value": value} for name, value in entities],
            "text": text,
        },
    }


def relayed(text: str, minutes: float) -> Event:
    """A customer message the gateway relayed to the agent (gateway/core/handoff.py)."""
    event = user(text, "relayed_to_agent", minutes)
    event["metadata"] = {"relayed": "to_agent"}
    return event


def bot(response: str, language: str, minutes: float, buttons: Sequence[Dict[str, str]] = (), **values: Any) -> Event:
    """A response as Rasa utters it: rendered from domain.yml, its name in the metadata."""
    variations = DOMAIN["responses"][response]
    chosen = next(
        (v for v in variations if any(c.get("value") == language for c in v.get("condition") or [])),
        variations[0],
    )
    text = chosen["text"].format(**values) if values else chosen["text"]
    shown = list(buttons) or list(chosen.get("buttons") or [])
    return {
        "event": "bot",
        "text": text,
        "timestamp": at(minutes),
        "data": {"buttons": shown},
        "metadata": {"utter_action": response},
    }


def agent(text: str, name: str, agent_id: str, minutes: float) -> Event:
    """An agent's Slack reply, as the gateway appends it to the tracker."""
    return {
        "event": "bot",
        "text": text,
        "timestamp": at(minutes),
        "metadata": {"agent_id": agent_id, "agent_name": name},
    }


def remedy_buttons(kinds: Sequence[str], labels: Dict[str, str]) -> List[Dict[str, str]]:
    buttons = [{"title": labels[k], "payload": "/inform" + json.dumps({"remedy": k})} for k in kinds]
    return buttons + [{"title": "どれも希望しない", "payload": "/deny"}]


def tap(payload: str, intent: str, minutes: float, entities: Sequence[Tuple[str, Any]] = ()) -> Event:
    return user(payload, intent, minutes, entities)


def slot(name: str, value: Any) -> Event:
    return {"event": "slot", "name": name, "value": value}


def action(name: str) -> Event:
    return {"event": "action", "name": name}


JA_LABELS = {"send_item": "別卵をお届け", "refund_item": "¥80を返金", "coupon": "次回クーポン", "store_credit": "残高"}
EN_LABELS = {"send_item": "Send the egg", "refund_item": "Refund ¥80", "coupon": "Coupon", "store_credit": "Credit"}


def tracker(sender: str, events: List[Event], slots: Dict[str, Any], intent: str = "inform") -> Tracker:
    latest = next((e["parse_data"] for e in reversed(events) if e["event"] == "user"), {"intent": {"name": intent}})
    return Tracker(sender, slots, latest, events, False, None, {}, "action_listen")


# --- how cases end --------------------------------------------------------------------------
def remedied(sender: str, customer_id: int, order: Optional[str], events: List[Event], kind: str, said: str) -> str:
    """The bot applied the customer's choice: the remedy on record, the transcript kept
    (as apply_and_confirm does it)."""
    repository = services.repository()
    case_id = repository.open_claim(customer_id, order, "missing_item", [], NOW - timedelta(minutes=30))
    events = [events[0], action("action_start_claim"), slot("case_id", None), *events[1:], slot("case_id", case_id)]
    repository.apply_remedy(case_id, RemedyOffer(kind=kind, amount=80), NOW)
    dispatcher = CollectingDispatcher()
    dispatcher.utter_message(response="utter_remedy_applied", confirmation=said, case_id=case_id)
    language = "en" if sender == EN_USER else "ja"
    keep_transcript(tracker(sender, events, {"language": language, "case_id": case_id}), case_id, dispatcher, DOMAIN)
    return case_id


def resolved(
    sender: str,
    customer_id: int,
    events: List[Event],
    handoff_minutes: float,
    agent_name: str,
    satisfied: bool,
) -> str:
    """A case handed to a person, resolved by the agent, then the satisfaction answer: the
    real action_agent_resolved and action_record_satisfaction."""
    repository = services.repository()
    language = "en" if sender == EN_USER else "ja"
    case_id = repository.open_claim(customer_id, None, "handoff", [], NOW - timedelta(minutes=handoff_minutes))
    repository.record_handoff(case_id, customer_id, "request_human", {}, NOW - timedelta(minutes=handoff_minutes))
    events = [*events, slot("case_id", case_id)]
    slots = {"language": language, "case_id": case_id, "agent_name": agent_name}
    run(ActionAgentResolved(), tracker(sender, events, slots, "EXTERNAL_agent_resolved"))
    events += [
        bot("utter_case_resolved", language, 1, agent_name=agent_name),
        bot("utter_ask_satisfaction", language, 1),
    ]
    answer = bot("utter_ask_satisfaction", language, 1)["data"]["buttons"][0 if satisfied else 1]["payload"]
    events.append(tap(answer, "affirm" if satisfied else "deny", 0.5))
    run(ActionRecordSatisfaction(), tracker(sender, events, slots))
    return case_id


def run(act: Any, t: Tracker) -> None:
    asyncio.run(act.run(CollectingDispatcher(), t, DOMAIN))


# --- the conversations -------------------------------------------------------------------------
def seed(only: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Seeds every conversation (or the `only` ones) into the orders database of
    ORDERS_DATABASE_URL, closing at NOW; returns case label -> case number."""
    ja, en = "ja", "en"
    cases: Dict[str, Callable[[], str]] = {}

    offer_ja = remedy_buttons(["send_item", "refund_item", "store_credit", "coupon"], JA_LABELS)
    cases["clean_remedy_ja"] = lambda: remedied(
        JA_USER,
        1,
        "1001",
        [
            user("親子丼の別卵が入っていませんでした", "report_missing_item", 10, [("item", "別卵")]),
            bot("utter_offer_remedies", ja, 9, offer_ja, items="別卵", options="1. 別卵をお届け\n2. ¥80を返金"),
            tap('/inform{"remedy": "send_item"}', "inform", 8, [("remedy", "send_item")]),
        ],
        "send_item",
        "別卵を30分以内にお届けします。",
    )
    cases["clean_agent_ja"] = lambda: resolved(
        JA_USER,
        1,
        [
            user("担当者と話したい", "request_human", 20),
            bot("utter_handoff_request_human", ja, 20),
            bot("utter_handoff_wait", ja, 20, wait_minutes=15),
            agent("佐藤です。ご注文#1001の件、別卵をすぐにお届けします。", "佐藤 花子", "U0AGENT001", 15),
            relayed("ありがとうございます", 14),
        ],
        20,
        "佐藤 花子",
        satisfied=True,
    )
    offer_en = remedy_buttons(["send_item", "refund_item", "coupon"], EN_LABELS)
    cases["clean_remedy_en"] = lambda: remedied(
        EN_USER,
        2,
        None,
        [
            user("My order came without the egg", "report_missing_item", 10, [("item", "egg")]),
            bot("utter_offer_remedies", en, 9, offer_en, items="egg", options="1. Send the egg\n2. Refund ¥80"),
            tap('/inform{"remedy": "refund_item"}', "inform", 8, [("remedy", "refund_item")]),
        ],
        "refund_item",
        "We refunded ¥80 to your card.",
    )
    cases["clean_agent_en"] = lambda: resolved(
        EN_USER,
        2,
        [
            user("I want to talk to a person", "request_human", 20),
            bot("utter_handoff_request_human", en, 20),
            bot("utter_handoff_wait", en, 20, wait_minutes=15),
            agent("Hi, this is Alex. I will send the missing egg right away.", "Alex Kim", "U0AGENT002", 16),
            relayed("Thanks!", 15),
        ],
        20,
        "Alex Kim",
        satisfied=True,
    )

    # coupon_first: the offer's first button is the coupon (turn 3)
    coupon_first = remedy_buttons(["coupon", "refund_item"], JA_LABELS)
    cases["coupon_first_ja"] = lambda: remedied(
        JA_USER,
        1,
        "1001",
        [
            user("別卵が入っていませんでした", "report_missing_item", 10, [("item", "別卵")]),
            bot("utter_confirm_order", ja, 9, order_number="1001", shop="鶏そば", when="12:00", items="親子丼"),
            tap("/affirm", "affirm", 9),
            bot("utter_offer_remedies", ja, 8, coupon_first, items="別卵", options="1. 次回クーポン\n2. ¥80を返金"),
            tap('/inform{"remedy": "coupon"}', "inform", 7, [("remedy", "coupon")]),
        ],
        "coupon",
        "次回使えるクーポンをお送りしました。",
    )
    # bare_cant: the agent's "we can't" and nothing after it (turn 3)
    cases["bare_cant_en"] = lambda: resolved(
        EN_USER,
        2,
        [
            user("I want a refund for my whole order", "request_human", 20),
            bot("utter_handoff_request_human", en, 20),
            bot("utter_handoff_wait", en, 20, wait_minutes=15),
            agent("Sorry, we can't refund that order.", "Alex Kim", "U0AGENT002", 15),
            relayed("Okay.", 14),
        ],
        20,
        "Alex Kim",
        satisfied=True,
    )
    # asked_again: the order number was in the first message; the agent asks for it (turn 3)
    cases["asked_again_ja"] = lambda: resolved(
        JA_USER,
        1,
        [
            user(f"注文1001の別卵がない。{PHONE}", "request_human", 20, [("order_id", "1001")]),
            bot("utter_handoff_request_human", ja, 20),
            bot("utter_handoff_wait", ja, 20, wait_minutes=15),
            agent("デモ様、恐れ入りますが注文番号を教えていただけますか？", "佐藤 花子", "U0AGENT001", 17),
            relayed("1001です", 16),
            agent("ありがとうございます。別卵をお届けします。", "佐藤 花子", "U0AGENT001", 15),
        ],
        20,
        "佐藤 花子",
        satisfied=True,
    )
    # passed_around: a second agent answers the same case (turn 4)
    cases["passed_around_en"] = lambda: resolved(
        EN_USER,
        2,
        [
            user("Please get me a person", "request_human", 20),
            bot("utter_handoff_request_human", en, 20),
            bot("utter_handoff_wait", en, 20, wait_minutes=15),
            agent("Hi, I'm Alex, let me check your order.", "Alex Kim", "U0AGENT002", 17),
            agent("Hi, this is Ken taking over. I will send the egg now.", "Ken Ito", "U0AGENT003", 12),
        ],
        20,
        "Ken Ito",
        satisfied=True,
    )
    # unanswered_question: "when will it come?" met by the bot's generic clarification (turn 4)
    cases["unanswered_ja"] = lambda: remedied(
        JA_USER,
        1,
        "1001",
        [
            user("別卵が入っていませんでした", "report_missing_item", 10, [("item", "別卵")]),
            bot("utter_confirm_order", ja, 9, order_number="1001", shop="鶏そば", when="12:00", items="親子丼"),
            tap("/affirm", "affirm", 9),
            bot("utter_offer_remedies", ja, 8, offer_ja, items="別卵", options="1. 別卵をお届け\n2. ¥80を返金"),
            user("届けてもらう場合、いつ届きますか？", "check_order_status", 7),
            bot("utter_clarify", ja, 7),
            tap('/inform{"remedy": "send_item"}', "inform", 6, [("remedy", "send_item")]),
        ],
        "send_item",
        "別卵を30分以内にお届けします。",
    )
    # slow_first_reply: handed over 60 minutes ago, the first human reply 35 minutes later (turn 3)
    cases["slow_reply_en"] = lambda: resolved(
        EN_USER,
        2,
        [
            user("I need a person please", "request_human", 60),
            bot("utter_handoff_request_human", en, 60),
            bot("utter_handoff_wait", en, 60, wait_minutes=15),
            agent("Hi, I'm Alex. I will send the missing egg now.", "Alex Kim", "U0AGENT002", 25),
            relayed("Thank you", 24),
        ],
        60,
        "Alex Kim",
        satisfied=True,
    )
    # unsatisfied: "not solved" to the satisfaction question (turn 6)
    cases["unsatisfied_ja"] = lambda: resolved(
        JA_USER,
        1,
        [
            user("担当者をお願いします", "request_human", 20),
            bot("utter_handoff_request_human", ja, 20),
            bot("utter_handoff_wait", ja, 20, wait_minutes=15),
            agent("佐藤です。別卵をお届けします。", "佐藤 花子", "U0AGENT001", 16),
        ],
        20,
        "佐藤 花子",
        satisfied=False,
    )
    # the worst: slow, asked again for the order it was told, a bare "can't", not solved
    cases["worst_en"] = lambda: resolved(
        EN_USER,
        2,
        [
            user("Order 1102 is missing the drink, can you help?", "report_missing_item", 50, [("order_id", "1102")]),
            bot("utter_handoff_request_human", en, 50),
            bot("utter_handoff_wait", en, 50, wait_minutes=15),
            agent("What is the order number?", "Alex Kim", "U0AGENT002", 20),
            relayed("I already told you: 1102", 19),
            agent("Sorry, we can't do anything about a missing drink.", "Alex Kim", "U0AGENT002", 18),
        ],
        50,
        "Alex Kim",
        satisfied=False,
    )
    return {label: build() for label, build in cases.items() if only is None or label in only}


LABELS = (*CLEAN, *sorted({label for label, _, _ in EXPECTED}))


def seed_week(url: str) -> Dict[str, str]:
    """A week of cases for the report's screenshot: on each of the 7 days up to NOW a
    different share of the conversations, so the charts have something to show."""
    global NOW
    os.environ["ORDERS_DATABASE_URL"] = url
    services.reset()
    services.now = lambda: NOW  # every case closes at NOW (12:00 in Tokyo: agents on duty)
    last, seeded = NOW, {}
    try:
        for offset in range(6, -1, -1):
            NOW = last - timedelta(days=offset)
            chosen = [label for n, label in enumerate(LABELS) if offset == 0 or (n + 2 * offset) % (2 + n % 3) != 0]
            seeded.update({f"{label}@{offset}": number for label, number in seed(chosen).items()})
    finally:
        NOW = last
    return seeded


if __name__ == "__main__":
    print(json.dumps(seed_week(sys.argv[1]), ensure_ascii=False))
