"""What the bot does when an agent acts in Slack (bot/actions/agent.py), on real rasa-sdk
Trackers against a real (SQLite) orders database."""
from __future__ import annotations

from datetime import datetime, timezone

from bot.actions import services
from bot.actions.agent import ActionAgentApprovedRemedy, ActionAgentResolved, ActionRecordSatisfaction
from tests.unit.test_actions import orders_db, run, slots_of, tracker  # noqa: F401  (fixture)

NIGIRI_REFUND = {"kind": "refund_item", "amount": 4800, "eta": None, "needs_approval": True}


def open_case(order: str = "1002") -> str:
    now = datetime.now(timezone.utc)
    return services.repository().open_claim(1, order, "missing_item", [], now)


def test_an_approved_refund_above_the_limit_is_applied_once_and_the_case_stays_with_the_agent():
    case_id = open_case()
    slots = {"case_id": case_id, "order_id": "1002", "approved_remedy": "refund_item",
             "agent_name": "佐藤 花子", "offers": {"remedies": [], "needs_approval": [NIGIRI_REFUND]}}
    messages, events = run(ActionAgentApprovedRemedy(), tracker(slots=slots, intent="EXTERNAL_agent_approved_remedy"))
    assert messages[0]["response"] == "utter_remedy_applied"
    assert "¥4,800" in messages[0]["confirmation"]
    assert any(e.get("event") == "pause" for e in events)
    # a second approval (double click, or another agent) applies nothing more
    messages, _ = run(ActionAgentApprovedRemedy(), tracker(slots=slots, intent="EXTERNAL_agent_approved_remedy"))
    assert messages[0]["response"] == "utter_remedy_already_applied"
    applied = services.repository().remedy_for_case(case_id)
    assert (applied.kind, applied.amount) == ("refund_item", 4800)
    outcome = services.repository().case_outcome(case_id)
    assert outcome["approved_remedy"] == "refund_item" and outcome["approved_by"] == "佐藤 花子"


def test_approving_a_remedy_that_was_never_priced_applies_nothing():
    case_id = open_case()
    slots = {"case_id": case_id, "order_id": "1002", "approved_remedy": "store_credit",
             "offers": {"remedies": [], "needs_approval": [NIGIRI_REFUND]}}
    messages, _ = run(ActionAgentApprovedRemedy(), tracker(slots=slots))
    assert messages[0]["response"] == "utter_agent_approval_unknown"
    assert services.repository().remedy_for_case(case_id) is None


def test_resolve_names_the_agent_asks_for_satisfaction_and_forgets_the_case_details():
    case_id = open_case("1001")
    slots = {"case_id": case_id, "order_id": "1001", "agent_name": "Alex Kim", "problem": "missing_item",
             "handoff_reason": "frustration"}
    messages, events = run(ActionAgentResolved(), tracker(slots=slots, intent="EXTERNAL_agent_resolved"))
    assert [m["response"] for m in messages] == ["utter_case_resolved", "utter_ask_satisfaction"]
    assert messages[0]["agent_name"] == "Alex Kim"
    cleared = slots_of(events)
    assert cleared["order_id"] is None and cleared["handoff_reason"] is None
    assert "case_id" not in cleared  # kept for the satisfaction answer
    assert services.repository().case_outcome(case_id)["resolved_by"] == "Alex Kim"


def test_the_satisfaction_answer_is_kept_with_the_case():
    case_id = open_case("1001")
    messages, events = run(ActionRecordSatisfaction(), tracker(slots={"case_id": case_id}, intent="deny"))
    assert messages[0]["response"] == "utter_satisfaction_sorry"
    assert slots_of(events)["case_id"] is None
    assert services.repository().case_outcome(case_id)["satisfaction"] == "not_satisfied"
    case_2 = open_case("1001")
    messages, _ = run(ActionRecordSatisfaction(), tracker(slots={"case_id": case_2}, intent="affirm"))
    assert messages[0]["response"] == "utter_satisfaction_thanks"
    assert services.repository().case_outcome(case_2)["satisfaction"] == "satisfied"




# --- what the customer is told about the wait (bot/handoff.yml) -----------------------------

def test_within_working_hours_the_customer_hears_the_usual_wait():
    from bot.actions.handoff import wait_message

    noon_tokyo = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    assert wait_message(noon_tokyo, "ja") == {"response": "utter_handoff_wait", "wait_minutes": 15}


def test_outside_working_hours_the_customer_hears_when_the_team_starts():
    from bot.actions.handoff import wait_message

    late_evening = datetime(2026, 11, 25, 14, 30, tzinfo=timezone.utc)  # 23:30 in Tokyo
    ja = wait_message(late_evening, "ja")
    assert ja["response"] == "utter_handoff_wait_closed" and ja["opens_at"] == "明日10:00"
    assert (ja["open_time"], ja["close_time"]) == ("10:00", "22:00")
    early_morning = datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)  # 07:00 in Tokyo
    assert wait_message(early_morning, "en")["opens_at"] == "10:00 today"
    assert wait_message(early_morning, "ja")["opens_at"] == "本日10:00"
    assert wait_message(late_evening, "en")["opens_at"] == "10:00 tomorrow"


def test_handoff_hours_file_errors_name_the_file_and_line():
    import pytest

    from bot.policy.hours import parse_hours
    from bot.policy.loader import PolicyError

    with pytest.raises(PolicyError, match=r"handoff.yml:3: timezone: unknown time zone"):
        parse_hours("version: 1\nhours: {open: '10:00', close: '22:00', days: [mon]}\ntimezone: Mars/Base\n"
                    "usual_wait_minutes: 5\n")
    with pytest.raises(PolicyError, match=r"handoff.yml:\d+: hours: `close` must be after `open`"):
        parse_hours("timezone: Asia/Tokyo\nhours:\n  open: '22:00'\n  close: '10:00'\n  days: [mon]\n"
                    "usual_wait_minutes: 5\n")
    with pytest.raises(PolicyError, match=r"hours.days: unknown value 'funday'"):
        parse_hours("timezone: Asia/Tokyo\nhours:\n  open: '10:00'\n  close: '22:00'\n  days: [funday]\n"
                    "usual_wait_minutes: 5\n")
