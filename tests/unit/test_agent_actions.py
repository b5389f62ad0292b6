"""What the bot does when an agent acts in Slack (bot/actions/agent.py), on real rasa-sdk
Trackers against a real (SQLite) orders database."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Dict, Optional

import pytest

from bot.actions import services
from bot.actions.agent import ActionAgentApprovedRemedy, ActionAgentResolved, ActionRecordSatisfaction
from contracts.approvals import AgentApproval, Approver, sign_approval
from tests.unit.test_actions import DEMO, ROOT, STRANGER, run, slots_of, tracker

# every test here runs against a fresh orders database (tests/unit/conftest.py)
pytestmark = pytest.mark.usefixtures("orders_db")

KEY = "unit-test-approval-key"
AGENT = Approver("U0AGENT001", "佐藤 花子")
SUPERVISOR = Approver("U0SUPER001", "Alex Kim")
# What a forged tracker claims: an amount far above the order's ¥4,800.
FORGED_OFFERS = {"remedies": [], "needs_approval": [{"kind": "refund_item", "amount": 999999, "needs_approval": True}]}


@pytest.fixture(autouse=True)
def approval_key(monkeypatch):
    monkeypatch.setenv("AGENT_APPROVAL_KEY", KEY)
    monkeypatch.delenv("SLACK_SUPERVISOR_IDS", raising=False)


def open_case(order: str = "1002") -> str:
    """A missing-item case; on 1002 for the 特上にぎり寿司 (¥4,800) alone."""
    now = datetime.now(timezone.utc)
    items = [i.item_id for i in services.repository().order_by_number(order).items if i.unit_price == 4800]
    return services.repository().open_claim(1, order, "missing_item", items, now)


def approval(
    case_id: str,
    remedy: str = "refund_item",
    approvers=(AGENT,),
    sender: str = DEMO,
    key: str = KEY,
    issued_at: Optional[float] = None,
) -> str:
    return sign_approval(
        key, AgentApproval(case_id, sender, remedy, tuple(approvers), time.time() if issued_at is None else issued_at)
    )


def approve(case_id: str, record: Optional[str], remedy: str = "refund_item", sender: str = DEMO):
    slots = {
        "case_id": case_id,
        "order_id": "1002",
        "approved_remedy": remedy,
        "agent_name": "佐藤 花子",
        "agent_approval": record,
        "offers": FORGED_OFFERS,
    }
    return run(
        ActionAgentApprovedRemedy(), tracker(sender=sender, slots=slots, intent="EXTERNAL_agent_approved_remedy")
    )


def notice(messages) -> Dict[str, Any]:
    return messages[0]["custom"]["agent_notice"]


def test_an_approved_refund_above_the_limit_is_applied_once_at_the_engines_amount():
    case_id = open_case()
    messages, events = approve(case_id, approval(case_id))
    assert messages[0]["response"] == "utter_remedy_applied"
    assert "¥4,800" in messages[0]["confirmation"]  # the engine's price, not the slot's ¥999,999
    assert any(e.get("event") == "pause" for e in events)
    # a second approval (double click, or another agent) applies nothing more
    messages, _ = approve(case_id, approval(case_id))
    assert messages[0]["response"] == "utter_remedy_already_applied"
    applied = services.repository().remedy_for_case(case_id)
    assert (applied.kind, applied.amount) == ("refund_item", 4800)
    outcome = services.repository().case_outcome(case_id)
    assert outcome["approved_remedy"] == "refund_item" and outcome["approved_by"] == "佐藤 花子"


@pytest.mark.parametrize(
    "record",
    [
        None,
        "",
        "refund_item",
        "e30.AAAA",
        "forged",  # replaced below by a record signed with another key
        "other-case",
        "other-remedy",
        "other-customer",
        "stale",
    ],
)
def test_an_approval_the_gateway_did_not_sign_for_this_case_applies_nothing(record):
    case_id = open_case()
    made = {
        "forged": lambda: approval(case_id, key="not-the-key"),
        "other-case": lambda: approval(open_case()),
        "other-remedy": lambda: approval(case_id, remedy="store_credit"),
        "other-customer": lambda: approval(case_id, sender=STRANGER),
        "stale": lambda: approval(case_id, issued_at=time.time() - 3600),
    }
    messages, events = approve(case_id, made[record]() if record in made else record)
    assert notice(messages) == {"kind": "refused", "remedy": "refund_item", "reason": "approval_not_verified"}
    assert not any(m.get("response") or m.get("text") for m in messages)  # the customer is told nothing
    assert services.repository().remedy_for_case(case_id) is None


def test_approving_a_remedy_the_policy_does_not_offer_for_the_case_applies_nothing():
    case_id = open_case()
    messages, _ = approve(case_id, approval(case_id, remedy="cancel_order"), remedy="cancel_order")
    assert notice(messages)["reason"] == "not_offered_now"
    assert services.repository().remedy_for_case(case_id) is None


def test_another_customers_case_is_not_applied_even_with_a_signed_approval_for_this_conversation():
    case_id = open_case()  # デモ 太郎's order 1002
    messages, _ = approve(case_id, approval(case_id, sender=STRANGER), sender=STRANGER)
    assert notice(messages)["reason"] == "not_offered_now"
    assert services.repository().remedy_for_case(case_id) is None


def test_above_an_agents_own_limit_a_supervisor_must_approve_too(tmp_path, monkeypatch):
    policy = (ROOT / "bot" / "policy.yml").read_text(encoding="utf-8")
    strict = tmp_path / "policy.yml"
    strict.write_text(
        policy.replace("agent_limit: 10000", "agent_limit: 4000").replace(
            "supervisors: []", f"supervisors: [{SUPERVISOR.slack_user_id}]"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("REMEDY_POLICY_PATH", str(strict))
    services.reset()
    case_id = open_case()
    messages, _ = approve(case_id, approval(case_id))
    assert notice(messages) == {
        "kind": "needs_supervisor",
        "remedy": "refund_item",
        "amount": 4800,
        "value": 4800,
        "agent_limit": 4000,
        "approvers": ["佐藤 花子"],
    }
    assert services.repository().remedy_for_case(case_id) is None
    # the supervisor alone is not two people; the same agent twice is not either
    for approvers in ((SUPERVISOR,), (AGENT, AGENT)):
        messages, _ = approve(case_id, approval(case_id, approvers=approvers))
        assert notice(messages)["kind"] == "needs_supervisor"
    messages, _ = approve(case_id, approval(case_id, approvers=(AGENT, SUPERVISOR)))
    assert messages[0]["response"] == "utter_remedy_applied"
    assert services.repository().remedy_for_case(case_id).amount == 4800
    assert services.repository().case_outcome(case_id)["approved_by"] == "佐藤 花子, Alex Kim"


def test_resolve_names_the_agent_asks_for_satisfaction_and_forgets_the_case_details():
    case_id = services.repository().open_claim(1, "1001", "missing_item", [], datetime.now(timezone.utc))
    slots = {
        "case_id": case_id,
        "order_id": "1001",
        "agent_name": "Alex Kim",
        "problem": "missing_item",
        "handoff_reason": "frustration",
    }
    messages, events = run(ActionAgentResolved(), tracker(slots=slots, intent="EXTERNAL_agent_resolved"))
    assert [m["response"] for m in messages] == ["utter_case_resolved", "utter_ask_satisfaction"]
    assert messages[0]["agent_name"] == "Alex Kim"
    cleared = slots_of(events)
    assert cleared["order_id"] is None and cleared["handoff_reason"] is None
    assert "case_id" not in cleared  # kept for the satisfaction answer
    assert services.repository().case_outcome(case_id)["resolved_by"] == "Alex Kim"


def test_the_satisfaction_answer_is_kept_with_the_case():
    case_id = services.repository().open_claim(1, "1001", "missing_item", [], datetime.now(timezone.utc))
    messages, events = run(ActionRecordSatisfaction(), tracker(slots={"case_id": case_id}, intent="deny"))
    assert messages[0]["response"] == "utter_satisfaction_sorry"
    assert slots_of(events)["case_id"] is None
    assert services.repository().case_outcome(case_id)["satisfaction"] == "not_satisfied"
    case_2 = services.repository().open_claim(1, "1001", "missing_item", [], datetime.now(timezone.utc))
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
        parse_hours(
            "version: 1\nhours: {open: '10:00', close: '22:00', days: [mon]}\ntimezone: Mars/Base\n"
            "usual_wait_minutes: 5\n"
        )
    with pytest.raises(PolicyError, match=r"handoff.yml:\d+: hours: `close` must be after `open`"):
        parse_hours(
            "timezone: Asia/Tokyo\nhours:\n  open: '22:00'\n  close: '10:00'\n  days: [mon]\nusual_wait_minutes: 5\n"
        )
    with pytest.raises(PolicyError, match=r"hours.days: unknown value 'funday'"):
        parse_hours(
            "timezone: Asia/Tokyo\nhours:\n  open: '10:00'\n  close: '22:00'\n  days: [funday]\nusual_wait_minutes: 5\n"
        )
