"""The product owners' tools without a server: reading and appending training files,
importing labelled review rows, which messages the review picks, and promotion decisions."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from scripts import evaluate, import_review, nlu_data, review

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = review.COLUMNS


@pytest.fixture
def nlu_dir(tmp_path) -> Path:
    """A copy of the real training files; the tests write only to the copy."""
    target = tmp_path / "bot" / "data" / "nlu"
    shutil.copytree(ROOT / "bot" / "data" / "nlu", target)
    return target


def write_csv(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return path


def test_every_example_is_read_with_its_intent_file_and_line(nlu_dir):
    examples = nlu_data.read_examples("ja", nlu_dir)
    first = examples[0]
    line = first.path.read_text(encoding="utf-8").splitlines()[first.line - 1]
    assert line.strip() == f"- {first.text}"
    assert {e.intent for e in examples} >= {"report_missing_item", "greet", "inform", "report_safety_issue"}
    assert not any(e.text.startswith("intent:") for e in examples)


def test_a_new_example_goes_to_the_intents_own_file_not_the_register_file(nlu_dir):
    assert nlu_data.intent_file("ja", "report_missing_item", nlu_dir).name == "problems.yml"
    assert nlu_data.intent_file("en", "greet", nlu_dir).name == "smalltalk.yml"
    assert nlu_data.intent_file("en", "request_human", nlu_dir).name == "escalation.yml"


def test_import_appends_to_the_right_language_and_file_and_keeps_comments(nlu_dir, tmp_path):
    problems_ja = nlu_dir / "ja" / "problems.yml"
    before = problems_ja.read_text(encoding="utf-8")
    path = write_csv(
        tmp_path / "review.csv",
        [
            {"id": "1", "language": "ja", "message": "たまごきてへんけど", "correct_intent": "report_missing_item"},
            {"id": "2", "language": "en", "message": "yo where my fries at", "correct_intent": "report_missing_item"},
            {"id": "3", "language": "en", "message": "hmm", "correct_intent": ""},
        ],
    )
    added = import_review.import_file(path, nlu_dir)
    assert added == {problems_ja: 1, nlu_dir / "en" / "problems.yml": 1}
    after = problems_ja.read_text(encoding="utf-8")
    assert after.startswith(before.split("\n- intent: report_wrong_item")[0][:200])  # comments untouched
    missing = [e for e in nlu_data.read_examples("ja", nlu_dir) if e.text == "たまごきてへんけど"]
    assert [(e.intent, e.path.name) for e in missing] == [("report_missing_item", "problems.yml")]
    # The file is still valid YAML for Rasa, and the example sits in the intent's block.
    import yaml

    blocks = yaml.safe_load(after)["nlu"]
    block = next(b for b in blocks if b.get("intent") == "report_missing_item")
    assert "- たまごきてへんけど" in block["examples"]
    # Importing the same file again adds nothing.
    assert import_review.import_file(path, nlu_dir) == {}
    assert problems_ja.read_text(encoding="utf-8") == after


def test_an_unknown_intent_is_an_error_naming_the_row_and_nothing_is_written(nlu_dir, tmp_path):
    path = write_csv(
        tmp_path / "review.csv",
        [
            {"id": "1", "language": "ja", "message": "たまごきてへんけど", "correct_intent": "report_missing_item"},
            {"id": "2", "language": "en", "message": "wheres my stuff", "correct_intent": "report_missin_item"},
        ],
    )
    snapshot = {p: p.read_text(encoding="utf-8") for p in nlu_dir.rglob("*.yml")}
    with pytest.raises(import_review.ImportError_) as error:
        import_review.import_file(path, nlu_dir)
    assert f"{path} row 3: unknown intent 'report_missin_item'" in str(error.value)
    assert "did you mean 'report_missing_item'" in str(error.value)
    assert {p: p.read_text(encoding="utf-8") for p in nlu_dir.rglob("*.yml")} == snapshot


def test_a_message_already_trained_under_another_intent_is_refused(nlu_dir, tmp_path):
    existing = next(e for e in nlu_data.read_examples("en", nlu_dir) if e.intent == "request_human")
    path = write_csv(
        tmp_path / "review.csv",
        [
            {"id": "1", "language": "en", "message": nlu_data.plain_text(existing.text), "correct_intent": "greet"},
        ],
    )
    _, errors, _ = import_review.check(path, nlu_dir)
    assert len(errors) == 1
    assert f"already an example of 'request_human' in {existing.path}:{existing.line}" in errors[0]


def test_bad_language_and_yaml_review_files(nlu_dir, tmp_path):
    path = tmp_path / "review.yml"
    path.write_text(
        "- {message: 'bonjour', language: fr, correct_intent: greet}\n"
        "- {message: '', language: en, correct_intent: greet}\n",
        encoding="utf-8",
    )
    _, errors, _ = import_review.check(path, nlu_dir)
    assert errors == [f"{path} item 1: language must be ja or en, not 'fr'", f"{path} item 2: the message is empty"]


def _user(text, intent, confidence, ts, ranking=None):
    return {
        "event": "user",
        "text": text,
        "timestamp": ts,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "intent_ranking": ranking or []},
    }


def test_review_picks_misread_messages_and_pseudonymises_the_customer():
    events = [
        {"event": "slot", "name": "language", "value": "ja", "timestamp": 1},
        {"event": "slot", "name": "customer_name", "value": "デモ 太郎", "timestamp": 1},
        _user("親子丼に別卵が付いていませんでした", "report_missing_item", 0.98, 10),
        _user("太郎です 090-1234-5678 に電話ください", "inform", 0.93, 15),
        _user(
            "ほげほげ",
            "nlu_fallback",
            0.45,
            20,
            [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "greet", "confidence": 0.31}],
        ),
        {"event": "action", "name": "action_clarify_or_handoff", "timestamp": 21},
        _user("卵がないって言ってるの", "report_missing_item", 0.52, 30),
        _user("卵がないって言ってるのに", "express_frustration", 0.91, 50),
        {"event": "action", "name": "action_handoff", "timestamp": 51},
        {"event": "slot", "name": "handoff_reason", "value": "frustration", "timestamp": 51},
        _user("もしもし", "relayed_to_agent", 1.0, 60),
        _user('/choose_order{"order_id":"1001"}', "inform", 1.0, 70),
        _user("ほにゃらら", "goodbye", 0.91, 80),
        {
            "event": "bot",
            "text": "すみません、どのご注文か分かりませんでした。",
            "timestamp": 81,
            "metadata": {"utter_action": "utter_order_not_understood"},
        },
    ]
    rows = review.review_events("U0123456789abcdef", events, b"key", min_confidence=0.6)
    by_text = {r.message: r for r in rows}
    assert set(by_text) == {"ほげほげ", "卵がないって言ってるの", "卵がないって言ってるのに", "ほにゃらら"}
    # Read confidently as goodbye, but the claim form could not use it: worth a look.
    assert by_text["ほにゃらら"].reason == "not_understood"
    assert by_text["ほげほげ"].reason == "fallback"
    assert by_text["ほげほげ"].predicted_intent == "greet"  # the classifier's guess behind the fallback
    assert by_text["卵がないって言ってるの"].reason == "low_confidence+rephrased"
    assert by_text["卵がないって言ってるのに"].reason == "frustration_handoff"
    assert {r.language for r in rows} == {"ja"}
    assert len({r.conversation for r in rows}) == 1
    assert rows[0].conversation.startswith("c-") and "U0123456789abcdef" not in rows[0].conversation
    assert review.pseudonym("U0123456789abcdef", b"key") != review.pseudonym("U0123456789abcdef", b"other key")


def test_review_masks_phone_numbers_emails_and_the_customers_name():
    text = review.scrub("太郎です 090-1234-5678 か taro@example.com に。注文1001", ["デモ 太郎"])
    assert text == "<name>です <phone> か <email> に。注文1001"
    assert review.scrub("call +81 90 1234 5678 about order 70213") == "call <phone> about order 70213"


def _evaluation(ja, en):
    return {
        "languages": {
            "ja": {"macro_f1": ja, "accuracy": ja, "intents": {}, "confusions": []},
            "en": {"macro_f1": en, "accuracy": en, "intents": {}, "confusions": []},
        }
    }


def test_promotion_needs_no_regression_beyond_the_threshold_or_a_forced_promotion():
    previous = _evaluation(0.84, 0.86)
    assert evaluate.decide(_evaluation(0.83, 0.87), previous, 0.02, {"ok": True, "failed": 0}, False)[0]
    promote, reasons = evaluate.decide(_evaluation(0.80, 0.87), previous, 0.02, {"ok": True, "failed": 0}, False)
    assert not promote and reasons == ["ja macro F1 fell from 0.840 to 0.800 (more than the allowed 0.020)"]
    promote, reasons = evaluate.decide(_evaluation(0.85, 0.87), previous, 0.02, {"ok": False, "failed": 2}, False)
    assert not promote and reasons == ["2 test stories failed"]
    promote, reasons = evaluate.decide(_evaluation(0.50, 0.50), previous, 0.02, None, True)
    assert promote and reasons[0].startswith("forced (FORCE_PROMOTE=1) despite: ja macro F1 fell")
    assert evaluate.decide(_evaluation(0.1, 0.1), None, 0.02, None, False) == (True, ["no model was promoted before"])
