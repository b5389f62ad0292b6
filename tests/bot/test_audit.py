"""The quality audit of closed cases (bot/audit/, patterns in bot/audit.yml) on conversations
seeded through the real action-server path into a real orders database (SQLite; also
PostgreSQL with ORDERS_TEST_POSTGRES=1, as tests/bot/test_store.py), and the weekly
report `make audit-report` writes from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path

import pytest
from rasa_sdk import Tracker

from bot.actions import services
from bot.actions.handoff import ActionHandoff, transcript
from bot.audit import audit_case, audit_period
from bot.audit.findings import AuditCase
from bot.audit.patterns import AuditPatternsError, load_patterns, parse_patterns
from bot.audit.transcript import case_events, turns_from_events
from bot.store import make_engine
from contracts.audit import PATTERNS, Finding, pattern_label
from tests.bot import audit_conversations as conversations
from tests.bot.test_actions import run as run_action
from tests.bot.test_actions import tracker as action_tracker
from tests.bot.test_store import postgres_server, url  # noqa: F401 - fixtures (sqlite, postgresql)

ROOT = Path(__file__).resolve().parents[2]
NOW = conversations.NOW
PERIOD = (NOW - timedelta(days=1), NOW + timedelta(days=1))


@pytest.fixture
def seeded(url, monkeypatch):  # noqa: F811 - the fixture imported above
    """Every seeded conversation in a fresh database: (database URL, label -> case number)."""
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    services.reset()
    monkeypatch.setattr(services, "now", lambda: NOW)
    cases = conversations.seed()
    yield url, cases
    services.reset()


def test_seeded_conversations_produce_exactly_the_expected_findings(seeded):
    url, cases = seeded
    engine = make_engine(url)
    try:
        result = audit_period(engine, *PERIOD)
    finally:
        engine.dispose()
    label_of = {number: label for label, number in cases.items()}
    found = {(label_of[f.case_id], f.pattern, f.turn_index) for f in result.findings}
    assert found == conversations.EXPECTED
    # every seeded case was closed in the period and read, the clean ones too, with turns
    assert sorted(c.case_id for c in result.cases) == sorted(cases.values())
    assert result.without_transcript == 0
    assert result.counts == {name: sum(1 for _, p, _ in conversations.EXPECTED if p == name) for name in PATTERNS}
    clean = {cases[label] for label in conversations.CLEAN}
    assert not [f for f in result.findings if f.case_id in clean]


def test_each_finding_shows_its_turn_scrubbed_and_says_why(seeded):
    url, cases = seeded
    engine = make_engine(url)
    try:
        result = audit_period(engine, *PERIOD)
    finally:
        engine.dispose()
    worst = cases["worst_en"]
    by_pattern = {f.pattern: f for f in result.findings if f.case_id != worst}
    asked = by_pattern["asked_again"]
    # the agent's own words, with the customer's name masked; why: the first message had it
    assert asked.role == "agent" and asked.speaker == "佐藤 花子"
    assert asked.turn_text == "<name>様、恐れ入りますが注文番号を教えていただけますか？"
    assert "order" in asked.explanation and "turn 0" in asked.explanation
    assert conversations.PHONE not in asked.explanation and "<phone>" in asked.explanation
    assert by_pattern["bare_cant"].turn_text == "Sorry, we can't refund that order."
    assert "can't" in by_pattern["bare_cant"].explanation
    assert by_pattern["coupon_first"].role == "bot" and "coupon" in by_pattern["coupon_first"].explanation
    assert by_pattern["passed_around"].speaker == "Ken Ito"
    assert "35 min" in by_pattern["slow_first_reply"].explanation
    assert by_pattern["unanswered_question"].turn_text == "届けてもらう場合、いつ届きますか？"
    assert "utter_clarify" in by_pattern["unanswered_question"].explanation
    assert by_pattern["unsatisfied"].turn_text == "[tapped] 解決していない"
    # the workbench reads them as JSON
    for finding in result.findings:
        assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding


def test_the_transcript_kept_holds_agent_turns_and_what_the_bot_said_last(seeded):
    _, cases = seeded
    turns = services.repository().case_transcript(cases["clean_agent_ja"])
    roles = [t["role"] for t in turns]
    assert roles == ["customer", "bot", "bot", "agent", "customer", "bot", "bot", "customer", "bot"]
    assert turns[3]["agent_name"] == "佐藤 花子"
    # the satisfaction question and the thanks came from the actions themselves (pending)
    assert turns[6]["response"] == "utter_ask_satisfaction" and turns[6]["text"] == "今回の対応で問題は解決しましたか？"
    assert turns[8]["response"] == "utter_satisfaction_thanks"
    assert turns[7]["text"] == "[tapped] 解決した"


def test_a_case_reads_only_its_own_turns_of_a_longer_conversation():
    c = conversations
    events = [
        c.user("別卵がない", "report_missing_item", 90),
        c.action("action_start_claim"),
        c.slot("case_id", None),
        c.slot("case_id", "C-OLD"),
        c.bot("utter_anything_else", "ja", 89),
        c.user("いいえ", "deny", 88),
        c.user("配達が遅いです", "report_late_delivery", 10),
        c.action("action_start_claim"),
        c.slot("case_id", None),
        c.bot("utter_choose_order", "ja", 9),
        c.slot("case_id", "C-NEW"),
    ]
    turns = turns_from_events(case_events(events, "C-NEW"))
    assert [t["text"] for t in turns] == ["配達が遅いです", "どのご注文についてですか？"]
    # a case closed by its satisfaction answer ends there: the next one starts after it
    after = [
        c.slot("case_id", "C-1"),
        c.user("はい", "affirm", 5),
        c.slot("case_id", None),
        c.user("担当者", "request_human", 1),
    ]
    assert [t["text"] for t in turns_from_events(case_events(after, "C-2"))] == ["担当者"]
    # the agents' card reads the same turns: an agent's reply is the agent's
    reply = c.agent("お届けします", "佐藤 花子", "U0AGENT001", 3)
    card = transcript(
        Tracker("U1", {}, {}, [c.user("担当者", "request_human", 5), reply], False, None, {}, "action_listen")
    )
    assert [t.role for t in card] == ["customer", "agent"]


def test_a_handoff_after_hours_is_timed_from_the_next_opening():
    # handed over at 23:00 in Tokyo (closed), first reply at 10:05 the next morning: 5 minutes
    handed = datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)
    replied = datetime(2026, 11, 25, 1, 5, tzinfo=timezone.utc)
    turns = [
        {"role": "customer", "text": "担当者", "time": (handed - timedelta(minutes=1)).isoformat()},
        {
            "role": "bot",
            "text": "おつなぎします",
            "response": "utter_handoff_request_human",
            "time": handed.isoformat(),
        },
        {
            "role": "agent",
            "text": "別卵をお届けします",
            "agent_name": "A",
            "agent_id": "U1",
            "time": replied.isoformat(),
        },
    ]
    assert audit_case(AuditCase("C-1", turns, closed_at=replied, satisfaction="satisfied")) == []
    late = [*turns[:2], {**turns[2], "time": (replied + timedelta(minutes=30)).isoformat()}]
    assert [(f.pattern, f.turn_index) for f in audit_case(AuditCase("C-1", late, closed_at=replied))] == [
        ("slow_first_reply", 2)
    ]


def test_the_patterns_file_loads_and_a_mistake_names_the_file_and_line(tmp_path):
    patterns = load_patterns()
    assert patterns.coupon_remedies == frozenset({"coupon"}) and patterns.sla_minutes == 15
    text = (ROOT / "bot" / "audit.yml").read_text(encoding="utf-8")
    broken = text.replace("  sla_minutes: 15", "  sla_minutes: soon")
    line = next(n for n, row in enumerate(broken.splitlines(), start=1) if "sla_minutes: soon" in row)
    with pytest.raises(AuditPatternsError, match=rf"^bot/audit.yml:{line}: slow_first_reply.sla_minutes: "):
        parse_patterns(broken)
    path = tmp_path / "audit.yml"
    path.write_text(text.replace("    en: [coupon,", "    fr: [coupon,"), encoding="utf-8")
    with pytest.raises(AuditPatternsError, match=r"audit.yml:\d+: coupon_first.words.fr: unknown field"):
        load_patterns(path)
    path.write_text(text.replace("'(?:注文|#|＃)", "'(?:注文"), encoding="utf-8")
    with pytest.raises(AuditPatternsError, match=r"asked_again.order.said_patterns.ja: not a valid pattern"):
        load_patterns(path)


def test_the_report_script_writes_html_and_markdown_naming_the_findings(seeded, tmp_path):
    url, cases = seeded
    out = tmp_path / "audit"
    completed = subprocess.run(
        [sys.executable, "-m", "scripts.audit_report", "--from", conversations.DAY, "--to", conversations.DAY]
        + ["--out-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "ORDERS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"{len(cases)} closed cases, {len(conversations.EXPECTED)} findings" in completed.stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    shown = unescape(html)  # what the browser shows
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for text in (shown, markdown):
        for name in PATTERNS:
            assert pattern_label(name).en in text
        for label, _, _ in conversations.EXPECTED:
            assert cases[label] in text  # every case with a finding is shown
        assert "Sorry, we can't refund that order." in text and "[tapped] 解決していない" in text
        assert conversations.PHONE not in text and "デモ" not in text
    assert html.count('src="data:image/png;base64,') == 2  # both charts inside the one file
    assert "| Coupon as the first or only remedy | クーポンが最初・唯一の提案 | 1 |" in markdown
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert len(findings["findings"]) == len(conversations.EXPECTED) and findings["counts"]["bare_cant"] == 2
    # the worst case comes first, with its four findings in the order of the patterns
    worst = markdown.split("## Worst cases", 1)[1].split("### ")[1]
    assert worst.startswith(f"{cases['worst_en']}: 4 finding(s)")
    assert [
        row.split(" | ")[0].lstrip("| ") for row in worst.splitlines() if row.startswith("| ") and "---" not in row
    ][1:] == [
        'A bare "can\'t" without a next step',
        "Asked for what the customer had already said",
        "First human reply later than the SLA",
        "Not satisfied with the outcome",
    ]


def test_a_handoff_keeps_the_case_transcript_with_what_the_customer_is_told(orders_db):
    t = action_tracker(intent="request_human", text="担当者と話したいです")
    messages, events = run_action(ActionHandoff(), t)
    case_id = next(e["value"] for e in events if e.get("name") == "case_id")
    turns = services.repository().case_transcript(case_id)
    assert turns[0] == {
        "role": "customer",
        "text": "担当者と話したいです",
        "time": turns[0]["time"],
        "intent": "request_human",
    }
    # the handoff's own messages, rendered from the domain as the customer reads them
    assert [t["response"] for t in turns[1:]] == ["utter_handoff_request_human", messages[1]["response"]]
    assert turns[1]["text"] == "かしこまりました。担当者におつなぎします。"
    assert "{" not in turns[2]["text"]  # the wait, filled in


@pytest.mark.parametrize(
    "said, then, bare",
    [
        ("申し訳ありません、返金はできません。", None, True),  # a refund named, and still stops
        ("返金はできませんが、代わりに別卵をお送りします。", None, False),
        ("Sorry, I can't refund that.", None, True),
        ("I can't refund that, but I can offer a fresh delivery.", None, False),
        ("Sorry, we can't change the order.", "I'm connecting you with a member of our team.", False),
    ],
)
def test_a_cant_is_bare_only_without_a_next_step_from_the_same_speaker(said, then, bare):
    turns = [{"role": "customer", "text": "..."}, {"role": "agent", "text": said, "agent_name": "A", "agent_id": "U1"}]
    if then:
        turns.append({"role": "agent", "text": then, "agent_name": "A", "agent_id": "U1"})
    turns.append({"role": "bot", "text": "from our team: finished", "response": "utter_case_resolved"})
    found = [f.pattern for f in audit_case(AuditCase("C-1", turns, satisfaction="satisfied"))]
    assert ("bare_cant" in found) is bare
