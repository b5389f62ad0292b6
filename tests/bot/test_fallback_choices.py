"""Not understood -> the likeliest readings as buttons (bot/actions/fallback.py,
bot/intent_choices.yml), on real rasa-sdk Trackers; the payloads through Rasa's own
button-payload parser; the file's checks naming file and line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.training_data.message import Message
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.fallback import (
    NEVER_OFFERED,
    ActionClarifyOrHandoff,
    intent_choices,
    load_intent_choices,
    parse_intent_choices,
)
from bot.remedy_policy import PolicyError

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
DEMO = "U00000000000000000000000000000001"
T0 = 1764000000.0


# every test here runs against a fresh orders database (tests/bot/conftest.py)
pytestmark = pytest.mark.usefixtures("orders_db")


def parse(
    text: str, intent: str, ranking: List[Dict[str, Any]], entities: Optional[List[Dict[str, Any]]] = None, **extra: Any
) -> Dict[str, Any]:
    top = ranking[0]["confidence"] if ranking else 0.0
    return {
        "text": text,
        "intent": {"name": intent, "confidence": top},
        "intent_ranking": ranking,
        "entities": entities or [],
        **extra,
    }


def fallback(text: str, ranking: List[Dict[str, Any]], **kwargs: Any) -> Dict[str, Any]:
    """As the FallbackClassifier leaves it: nlu_fallback first, the real intents after."""
    return parse(text, "nlu_fallback", [{"name": "nlu_fallback", "confidence": 0.45}] + ranking, **kwargs)


def user_event(data: Dict[str, Any], at: float = 0.0) -> Dict[str, Any]:
    return {"event": "user", "text": data["text"], "parse_data": data, "timestamp": T0 + at}


def tracker(latest: Dict[str, Any], language: str = "ja", before: Optional[List[Dict[str, Any]]] = None) -> Tracker:
    events = (before or []) + [user_event(latest, at=60)]
    return Tracker(DEMO, {"language": language, "failed_attempts": 0}, latest, events, False, None, {}, "action_listen")


def run(t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionClarifyOrHandoff().run(dispatcher, t, DOMAIN))
    return dispatcher.messages, events


def rasa_reads(payload: str):
    """What Rasa's RegexMessageHandler makes of a tapped button's payload."""
    message = YAMLStoryReader.unpack_regex_message(
        Message(data={"text": payload}), Domain.load(str(ROOT / "domain.yml"))
    )
    return message.get("intent")["name"], {e["entity"]: e["value"] for e in message.get("entities") or []}


MISSING_OR_CANCEL = [
    {"name": "report_missing_item", "confidence": 0.40},
    {"name": "greet", "confidence": 0.22},  # small talk: never a choice
    {"name": "cancel_order", "confidence": 0.21},
    {"name": "inform", "confidence": 0.08},
    {"name": "report_wrong_item", "confidence": 0.04},  # below the floor
]


def test_a_japanese_message_gets_its_likeliest_readings_in_japanese():
    messages, events = run(tracker(fallback("あのー卵のやつ", MISSING_OR_CANCEL)))
    assert events == []
    [message] = messages
    assert message["response"] == "utter_clarify_choices"
    assert message["buttons"] == [
        {"title": "商品が足りない", "payload": "/report_missing_item"},
        {"title": "注文をキャンセルしたい", "payload": "/cancel_order"},
        {"title": "担当者と話す", "payload": "/request_human"},
    ]


def test_an_english_message_gets_them_in_english_three_at_most():
    ranking = [
        {"name": "report_late_delivery", "confidence": 0.30},
        {"name": "check_order_status", "confidence": 0.28},
        {"name": "EXTERNAL_agent_resolved", "confidence": 0.2},  # the gateway's: never a choice
        {"name": "cancel_order", "confidence": 0.15},
        {"name": "report_missing_item", "confidence": 0.12},  # a fourth: left out
    ]
    messages, _ = run(tracker(fallback("where's my food at", ranking), language="en"))
    assert messages[0]["response"] == "utter_clarify_choices"
    assert [(b["title"], b["payload"]) for b in messages[0]["buttons"]] == [
        ("Delivery is late", "/report_late_delivery"),
        ("Order status", "/check_order_status"),
        ("Cancel an order", "/cancel_order"),
        ("Talk to a person", "/request_human"),
    ]


def test_the_ranking_is_read_by_confidence_whatever_its_order():
    ranking = [{"name": "cancel_order", "confidence": 0.1}, {"name": "report_damaged_item", "confidence": 0.3}]
    messages, _ = run(tracker(fallback("箱がつぶれてキャンセル", ranking)))
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/report_damaged_item", "/cancel_order", "/request_human"]


def test_the_item_the_customer_named_goes_with_every_reading():
    entities = [{"entity": "item", "value": "別卵", "start": 0, "end": 2, "extractor": "DIETClassifier"}]
    messages, _ = run(tracker(fallback("別卵…", MISSING_OR_CANCEL, entities=entities)))
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads == ['/report_missing_item{"item": "別卵"}', '/cancel_order{"item": "別卵"}', "/request_human"]
    # Rasa reads the tap as that intent with the item: the `item` slot is filled from it
    assert rasa_reads(payloads[0]) == ("report_missing_item", {"item": "別卵"})


def test_several_entities_and_values_are_all_kept():
    entities = [
        {"entity": "item", "value": "別卵"},
        {"entity": "item", "value": "ポテト"},
        {"entity": "item", "value": "別卵"},
        {"entity": "order_id", "value": "1001"},
    ]
    messages, _ = run(tracker(fallback("1001 eggs fries??", MISSING_OR_CANCEL, entities=entities), language="en"))
    payload = messages[0]["buttons"][0]["payload"]
    assert payload == '/report_missing_item{"item": ["別卵", "ポテト"], "order_id": "1001"}'
    message = YAMLStoryReader.unpack_regex_message(
        Message(data={"text": payload}), Domain.load(str(ROOT / "domain.yml"))
    )
    assert message.get("intent")["name"] == "report_missing_item"
    assert sorted((e["entity"], e["value"]) for e in message.get("entities")) == [
        ("item", "ポテト"),
        ("item", "別卵"),
        ("order_id", "1001"),
    ]


def test_an_unclear_answer_to_the_choices_goes_to_a_person():
    first = fallback("あのー卵のやつ", MISSING_OR_CANCEL)
    before = [
        {"event": "session_started"},
        user_event(first),
        {"event": "bot", "text": "確認させてください。", "metadata": {"utter_action": "utter_clarify_choices"}},
    ]
    messages, events = run(tracker(fallback("うーん", MISSING_OR_CANCEL), before=before))
    assert any(m.get("custom", {}).get("handoff", {}).get("reason") == "repeated_misunderstanding" for m in messages)
    assert not any(m.get("response") == "utter_clarify_choices" for m in messages)
    assert any(e.get("event") == "pause" for e in events)


def test_a_tapped_choice_is_understood_so_the_next_miss_is_a_first_miss_again():
    before = [
        user_event(fallback("あのー", MISSING_OR_CANCEL)),
        {"event": "bot", "text": "?", "metadata": {"utter_action": "utter_clarify_choices"}},
        user_event(
            parse("/report_missing_item", "report_missing_item", [{"name": "report_missing_item", "confidence": 1.0}]),
            at=30,
        ),
    ]
    messages, events = run(tracker(fallback("えっと", MISSING_OR_CANCEL), before=before))
    assert messages[0]["response"] == "utter_clarify_choices" and events == []


@pytest.mark.parametrize(
    "data",
    [
        fallback("???", []),  # no ranking at all
        fallback(
            "こんにちはー",
            [
                {"name": "greet", "confidence": 0.4},
                {"name": "thank", "confidence": 0.3},
                {"name": "inform", "confidence": 0.2},
            ],
        ),  # only small talk and inform
        fallback("hmm", [{"name": "report_missing_item", "confidence": 0.05}]),  # below the floor
        # nonsense (bot/components/unfamiliar_input.py): the ranking is the model guessing
        fallback("ぴよぴよぽぽぽ", MISSING_OR_CANCEL, unfamiliar_input=True),
        parse("x", "nlu_fallback", []),
    ],
)
def test_without_a_usable_reading_the_usual_question_stays(data):
    messages, events = run(tracker(data))
    assert [m["response"] for m in messages] == ["utter_clarify"] and events == []
    assert not messages[0].get("buttons")  # utter_clarify brings the problem buttons of domain.yml


def test_out_of_scope_keeps_its_answer():
    data = parse(
        "明日の天気は？",
        "out_of_scope",
        [{"name": "out_of_scope", "confidence": 0.9}, {"name": "check_order_status", "confidence": 0.05}],
    )
    messages, events = run(tracker(data))
    assert [m["response"] for m in messages] == ["utter_out_of_scope"] and events == []


# --- the domain and the rules ------------------------------------------------------------------
def test_the_question_is_in_the_domain_in_both_languages_without_buttons_of_its_own():
    variations = DOMAIN["responses"]["utter_clarify_choices"]
    assert variations[0].get("condition") is None and "どれ" in variations[0]["text"]
    english = [v for v in variations if v.get("condition") == [{"type": "slot", "name": "language", "value": "en"}]]
    assert len(english) == 1 and english[0]["text"].isascii()
    assert all("buttons" not in v for v in variations)  # the action adds them


def test_every_choice_is_an_intent_of_the_domain_that_starts_its_own_rule():
    intents = set(DOMAIN["intents"])
    starts = set()
    for path in (ROOT / "bot" / "data").glob("rules_*.yml"):
        for rule in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            steps = rule.get("steps") or []
            if not rule.get("condition") and steps and "intent" in steps[0]:
                starts.add(steps[0]["intent"])
    for intent in list(intent_choices().labels) + ["request_human"]:
        assert intent in intents, intent
        assert intent in starts, f"no rule starts with {intent}: a tap of it would not be answered"


def test_the_shipped_labels_fit_line():
    choices = load_intent_choices(ROOT / "bot" / "intent_choices.yml")
    for labels in list(choices.labels.values()) + [choices.person]:
        assert set(labels) == {"ja", "en"}
        assert all(0 < len(label.encode("utf-16-le")) // 2 <= 20 for label in labels.values())


# --- bot/intent_choices.yml's checks ---------------------------------------------------------
GOOD = """\
version: 1
min_confidence: 0.1
choices:
  report_missing_item:
    ja: 商品が足りない
    en: Something is missing
person:
  ja: 担当者と話す
  en: Talk to a person
"""


def test_a_label_too_long_for_line_is_named_with_file_and_line(tmp_path):
    bad = tmp_path / "intent_choices.yml"
    bad.write_text(GOOD.replace("Something is missing", "Some of my order is missing"), encoding="utf-8")
    with pytest.raises(PolicyError) as error:
        load_intent_choices(bad)
    assert str(error.value).startswith(f"{bad}:6: choices.report_missing_item.en: ")
    assert "at most 20" in str(error.value)


@pytest.mark.parametrize(
    "change,where",
    [
        (("    en: Something is missing\n", ""), r"intent_choices.yml:5: choices.report_missing_item: missing `en`"),
        (
            ("report_missing_item:", "EXTERNAL_agent_resolved:"),
            r"intent_choices.yml:4: choices.EXTERNAL_agent_resolved: "
            r"this intent cannot be offered",
        ),
        (("report_missing_item:", "greet:"), r"intent_choices.yml:4: choices.greet: this intent cannot be offered"),
        (("min_confidence: 0.1", "min_confidence: 2"), r"intent_choices.yml:2: min_confidence: must be 1 or less"),
        (("min_confidence: 0.1", "max_choices: 0"), r"intent_choices.yml:2: max_choices: must be 1 or more"),
        (
            ("    ja: 商品が足りない\n", "    ja: 商品が足りない\n    fr: Il manque\n"),
            r"intent_choices.yml:6: choices.report_missing_item.fr: unknown field",
        ),
        (
            ("    ja: 商品が足りない\n", "    ja: [商品]\n"),
            r"intent_choices.yml:5: choices.report_missing_item.ja: "
            r"expected a single value",
        ),
        (("  en: Talk to a person\n", '  en: "  "\n'), r"intent_choices.yml:9: person.en: expected a button label"),
        (("  report_missing_item:", "  report_missing_item: [\n"), r"intent_choices.yml:\d+: not valid YAML"),
    ],
)
def test_mistakes_name_the_file_and_the_line(change, where):
    with pytest.raises(PolicyError, match=where):
        parse_intent_choices(GOOD.replace(*change), "bot/intent_choices.yml")


def test_the_good_file_reads():
    choices = parse_intent_choices(GOOD)
    assert choices.labels == {"report_missing_item": {"ja": "商品が足りない", "en": "Something is missing"}}
    assert choices.max_choices == 3 and choices.min_confidence == 0.1
    assert "request_human" in NEVER_OFFERED  # the person button is always there, never a reading
