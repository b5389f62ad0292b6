"""A person now, and why: one module (bot/escalation.py) with its limits in bot/handoff.yml."""

from pathlib import Path

import pytest

from bot import escalation
from bot.actions import services
from bot.remedy_policy.hours import parse_hours
from bot.remedy_policy.loader import PolicyError

HANDOFF_YML = Path(__file__).resolve().parents[2] / "bot" / "handoff.yml"


@pytest.fixture
def handoff_file(tmp_path, monkeypatch):
    """Writes a handoff.yml with the given escalation limits and points the bot at it."""

    def write(**limits):
        text = HANDOFF_YML.read_text(encoding="utf-8")
        for name, value in limits.items():
            text = text.replace(f"  {name}: ", f"  {name}: {value}  # was ", 1)
        path = tmp_path / "handoff.yml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("HANDOFF_HOURS_PATH", str(path))
        services.reset()

    yield write
    services.reset()


def test_the_shipped_limits_are_two_misses_two_unclear_turns_three_identity_failures():
    limits = parse_hours(HANDOFF_YML.read_text(encoding="utf-8")).escalation
    assert (limits.misunderstood_answers, limits.unclear_turns, limits.identity_failures) == (2, 2, 3)


def test_product_owners_change_the_limits_in_yaml(handoff_file):
    handoff_file(misunderstood_answers=3, unclear_turns=4)
    assert escalation.after_misunderstood_answer(2, "repeated_misunderstanding") is None
    assert escalation.after_misunderstood_answer(3, "repeated_misunderstanding") == "repeated_misunderstanding"
    assert escalation.after_unclear_turns(3, "nlu_fallback") is None
    assert escalation.after_unclear_turns(4, "out_of_scope") == "out_of_scope"
    assert escalation.after_unclear_turns(4, "nlu_fallback") == "repeated_misunderstanding"


def test_a_bad_limit_names_the_file_and_line():
    text = HANDOFF_YML.read_text(encoding="utf-8").replace("identity_failures: 3", "identity_failures: 0")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "identity_failures: 0" in row)
    with pytest.raises(PolicyError, match=rf"handoff.yml:{line}: escalation.identity_failures"):
        parse_hours(text)


def test_the_intents_that_ask_for_a_person():
    assert escalation.for_intent("report_safety_issue") == "safety"
    assert escalation.for_intent("express_frustration") == "frustration"
    assert escalation.for_intent("greet") is None and escalation.for_intent(None) is None
