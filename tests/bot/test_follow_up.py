"""Follow-ups at the promised time (bot/actions/follow_up.py): real rasa-sdk Trackers
against a real (SQLite) orders database with the demo data."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import services
from bot.actions.claims import ValidateClaimForm
from bot.actions.follow_up import (
    ActionAskFollowUp,
    ActionRecordFollowUp,
    due_at,
    parse_follow_up_texts,
)
from bot.actions.handoff import ActionHandoff
from bot.actions.remedies import ActionCompleteClaim
from bot.formatting import TOKYO, clock
from bot.remedy_policy.loader import PolicyError
from bot.store.repository import AppliedRemedy
from contracts.case_context import CaseContext

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
DEMO = "U00000000000000000000000000000001"
STRANGER = "Uffffffffffffffffffffffffffffffff"

pytestmark = pytest.mark.usefixtures("orders_db")


def tracker(
    sender: str = DEMO,
    slots: Optional[Dict[str, Any]] = None,
    intent: str = "inform",
    text: str = "",
    active_loop: Optional[str] = None,
) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 0.99}, "text": text, "entities": []}
    return Tracker(
        sender,
        {"language": "ja", "failed_attempts": 0, **(slots or {})},
        latest,
        [{"event": "user", "text": text, "parse_data": latest, "timestamp": 1764000000.0}],
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, DOMAIN))
    return dispatcher.messages, events


def slots_of(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def customs(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [m["custom"] for m in messages if m.get("custom")]


def egg_claim(remedy: str = "send_item") -> Dict[str, Any]:
    """The demo customer's claim for the separate egg of order 1001, with `remedy` chosen."""
    dispatcher = CollectingDispatcher()
    t = tracker(slots={"problem": "missing_item", "item": ["別卵"]}, active_loop="claim_form")
    chosen = ValidateClaimForm().validate_order_id("1001", dispatcher, t, DOMAIN)
    return {"problem": "missing_item", **chosen, "remedy": remedy}


def send_the_egg() -> str:
    """The egg sent now ("別卵を今からお届け"): the case number."""
    slots = egg_claim("send_item")
    messages, _ = run(ActionCompleteClaim(), tracker(slots=slots))
    assert messages[0]["response"] == "utter_remedy_applied"
    return slots["case_id"]


def test_a_remedy_with_a_promised_time_asks_the_gateway_to_follow_up_at_that_time():
    slots = egg_claim("send_item")
    messages, _ = run(ActionCompleteClaim(), tracker(slots=slots))
    applied = services.repository().remedy_for_case(slots["case_id"])
    assert applied.kind == "send_item" and applied.eta is not None
    # the customer reads the time; the gateway gets the same moment as epoch seconds
    assert clock(applied.eta) in messages[0]["confirmation"]
    [follow_up] = [c["follow_up"] for c in customs(messages) if "follow_up" in c]
    assert follow_up == {"case_id": slots["case_id"], "due_at": int(applied.eta.timestamp()), "language": "ja"}


def test_a_refund_has_nothing_to_follow_up():
    slots = egg_claim("refund_item")
    messages, _ = run(ActionCompleteClaim(), tracker(slots=slots))
    assert messages[0]["response"] == "utter_remedy_applied"
    assert not [c for c in customs(messages) if "follow_up" in c]


def test_the_question_names_what_was_promised_from_the_database_with_yes_and_no():
    case_id = send_the_egg()
    messages, events = run(
        ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id})
    )
    [asked] = messages
    eta = services.repository().remedy_for_case(case_id).eta
    assert "別卵" in asked["text"] and "届きましたか" in asked["text"] and clock(eta) in asked["text"]
    assert [b["payload"] for b in asked["buttons"]] == ["/affirm", "/deny"]
    assert slots_of(events) == {"follow_up_case": case_id}
    record = services.repository().follow_up(case_id)
    assert record.due_at == eta and record.asked_at is not None and record.answer is None


def test_the_question_follows_the_customers_language():
    case_id = send_the_egg()
    messages, _ = run(
        ActionAskFollowUp(),
        tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id, "language": "en"}),
    )
    assert messages[0]["text"].startswith("Did Extra egg arrive?")
    assert [b["title"] for b in messages[0]["buttons"]] == ["Yes, it came", "No, not yet"]


def test_nothing_is_asked_about_another_customers_case():
    case_id = send_the_egg()
    messages, events = run(
        ActionAskFollowUp(),
        tracker(sender=STRANGER, intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id}),
    )
    assert messages == []
    assert any(e["event"] == "rewind" for e in events)  # the trigger is undone
    assert services.repository().follow_up(case_id) is None


def test_nothing_is_asked_about_a_refund():
    slots = egg_claim("refund_item")
    run(ActionCompleteClaim(), tracker(slots=slots))
    messages, _ = run(
        ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": slots["case_id"]})
    )
    assert messages == []


def test_yes_records_arrived_once_and_thanks():
    case_id = send_the_egg()
    run(ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id}))
    messages, events = run(
        ActionRecordFollowUp(), tracker(intent="affirm", text="はい、届きました", slots={"follow_up_case": case_id})
    )
    assert "届いてよかった" in messages[0]["text"]
    assert slots_of(events) == {"follow_up_case": None}
    assert not any(e["event"] == "followup" for e in events)
    first = services.repository().follow_up(case_id)
    assert first.answer == "arrived" and first.answered_at is not None
    # written once: a later "no" for the same case changes nothing on record
    assert services.repository().record_follow_up_answer(case_id, "not_arrived", services.now()) is False
    assert services.repository().follow_up(case_id).answer == "arrived"
    # and the question is not asked again
    again, _ = run(ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id}))
    assert again == []


def test_no_hands_the_case_to_a_person_with_the_broken_promise_flagged():
    case_id = send_the_egg()
    run(ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id}))
    messages, events = run(
        ActionRecordFollowUp(), tracker(intent="deny", text="いいえ、まだです", slots={"follow_up_case": case_id})
    )
    assert "申し訳" in messages[0]["text"]
    slots = slots_of(events)
    assert slots["handoff_reason"] == "broken_promise" and slots["case_id"] == case_id
    assert slots["order_id"] == "1001" and slots["problem"] == "missing_item"
    assert [e["name"] for e in events if e["event"] == "followup"] == ["action_handoff"]
    assert services.repository().follow_up(case_id).answer == "not_arrived"

    # action_handoff (what Rasa runs next) builds the card for this case, flagged
    handoff_messages, _ = run(ActionHandoff(), tracker(intent="deny", text="いいえ、まだです", slots=slots))
    [context] = [c["handoff"] for c in customs(handoff_messages) if "handoff" in c]
    ctx = CaseContext.from_dict(context)
    assert ctx.case_id == case_id and ctx.reason == "broken_promise"
    assert ctx.flags == ["broken_promise"]
    eta = services.repository().remedy_for_case(case_id).eta
    assert ctx.promise.kind == "send_item" and datetime.fromisoformat(ctx.promise.eta) == eta
    assert [i.name_ja for i in ctx.claimed_items] == ["別卵"]
    # a person has it now: a second trigger asks nothing
    again, _ = run(ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id}))
    assert again == []


def test_a_new_complaint_at_the_question_also_counts_as_not_arrived():
    case_id = send_the_egg()
    run(ActionAskFollowUp(), tracker(intent="EXTERNAL_follow_up_due", slots={"follow_up_case": case_id}))
    _, events = run(
        ActionRecordFollowUp(),
        tracker(intent="report_missing_item", text="まだ卵が来てません", slots={"follow_up_case": case_id}),
    )
    assert slots_of(events)["handoff_reason"] == "broken_promise"
    assert services.repository().follow_up(case_id).answer == "not_arrived"


def test_an_answer_with_no_question_pending_is_an_ordinary_message():
    messages, events = run(ActionRecordFollowUp(), tracker(intent="affirm", slots={"follow_up_case": None}))
    assert messages[0]["response"] == "utter_how_can_i_help"
    _, events = run(ActionRecordFollowUp(), tracker(intent="report_missing_item", slots={"follow_up_case": None}))
    assert [e["name"] for e in events if e["event"] == "followup"] == ["action_start_claim"]


def test_a_parcel_promised_for_a_day_is_asked_about_the_next_morning():
    policy = services.policy()
    eta = datetime(2026, 11, 27, 15, 30, tzinfo=TOKYO)
    parcel = AppliedRemedy("C-1", "replace_item", 0, eta, eta - timedelta(days=2), True)
    assert due_at(policy, parcel) == datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
    meal = AppliedRemedy("C-2", "send_item", 0, eta, eta - timedelta(minutes=40), True)
    assert due_at(policy, meal) == eta


SHIPPED = (ROOT / "bot" / "follow_up.yml").read_text(encoding="utf-8")


def test_the_shipped_texts_load():
    words = parse_follow_up_texts(SHIPPED, "follow_up.yml")
    assert "{items}" in words.texts["question"]["ja"]


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ('ja: "{eta}ごろお届け予定だった{items}は届きましたか？"', 'ja: "届きましたか？"', "question.ja: must name"),
        ('en: "Yes, it came"', 'en: "Yes, it came, {colour}"', "yes_button.en: unknown placeholder {colour}"),
        (
            'ja: "いいえ、まだです"',
            'ja: "いいえ、まだ届いていません。担当者と話したいです"',
            "no_button.ja: at most 20",
        ),
        ("version: 1", "version: 2", "version: unsupported"),
        ("not_arrived:", "not_arived:", "unknown field"),
    ],
)
def test_a_mistake_in_the_texts_names_the_file_and_line(old, new, expected):
    assert old in SHIPPED
    broken = SHIPPED.replace(old, new)
    with pytest.raises(PolicyError) as error:
        parse_follow_up_texts(broken, "bot/follow_up.yml")
    message = str(error.value)
    assert message.startswith("bot/follow_up.yml:") and expected in message
    line = int(message.split(":")[1])
    assert new.split(":")[0].strip() in broken.splitlines()[line - 1]
