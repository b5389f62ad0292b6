"""The handoff decision through the real Rasa server and action server: the labelled
conversations of tests/data/handoff/conversations.yml (scripts/evaluate_handoff.py), and a
couple of concrete conversations."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from scripts.evaluate_handoff import Bot, figures, load_conversations, run_all, table
from tests.support.rasa_stack import DEMO_CUSTOMER, ENGLISH_CUSTOMER, button, handoff_case, reset_orders, texts

# Measured on the shipped model (scripts/evaluate_handoff.py, 57 conversations, 35 that
# should reach a person): precision 1.000, recall 0.943, F1 0.971 (tp 33, fp 0, fn 2);
# recall per category: frustrated 0.833, safety 1.000, out_of_policy 1.000; calm and
# mildly annoyed conversations all kept by the bot unless they asked for a person.
# The floors leave a small margin (about two conversations) for the classifier's wobble
# after a retraining; safety and out-of-policy recall have no margin.
PRECISION_FLOOR = 0.90
RECALL_FLOOR = 0.88


@pytest.fixture(scope="module")
def labelled(rasa_server, orders_url) -> Dict[str, Any]:
    bot = Bot(rasa_server.url, rasa_server.token, lambda: reset_orders(orders_url))
    outcomes = run_all(bot, load_conversations())
    result = figures(outcomes)
    print("\n" + table(result))
    return result


def test_every_safety_case_reaches_a_person(labelled):
    safety = labelled["by_category"]["safety"]
    assert safety["recall"] == 1.0, table(labelled)


def test_the_handoff_decision_keeps_its_precision_and_recall(labelled):
    assert not [w for w in labelled["wrong"] if w["error"]], table(labelled)
    assert labelled["precision"] >= PRECISION_FLOOR, table(labelled)
    assert labelled["recall"] >= RECALL_FLOOR, table(labelled)
    assert labelled["by_category"]["out_of_policy"]["recall"] == 1.0, table(labelled)


def test_three_angry_repeated_japanese_messages_reach_a_person_with_the_reasons(bot):
    chat = bot(DEMO_CUSTOMER, language="ja", display_name="デモ 太郎")
    messages = [
        "別卵が入ってないんだけど",
        "別卵が入ってないんだけど！",
        "だから別卵が入ってないんだけど！最悪",
    ]
    case = None
    for text in messages:
        case = handoff_case(chat.say(text))
        if case is not None:
            break
    assert case is not None, "no handoff after three angry repeats"
    assert case["reason"] in ("frustration", "repeated_misunderstanding")
    frustration = case["frustration"]
    signals = {r["signal"] for r in frustration["reasons"]}
    assert {"repeated_message", "angry_word"} <= signals, frustration
    assert frustration["score"] >= frustration["threshold"]
    assert "frustration" in case["summary"]
    said = [t["text"] for t in case["transcript"] if t["role"] == "customer"]
    assert said == messages[: len(said)]  # the agent reads what the customer wrote
    assert chat.say("まだ？") == []  # paused for the agent


def test_a_calm_english_claim_does_not_hand_off(bot):
    chat = bot(ENGLISH_CUSTOMER, language="en", display_name="Emma")
    reply = chat.say("hi, the fries weren't in my bag")
    assert handoff_case(reply) is None
    reply = chat.say(button(reply, "#1101"))
    assert handoff_case(reply) is None
    reply = chat.say(button(reply, "Send"))
    assert handoff_case(reply) is None
    assert "Case number" in texts(reply)
