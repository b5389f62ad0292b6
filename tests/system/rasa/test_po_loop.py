"""The product owners' loop on real conversations, end to end.

A Rasa server that keeps its conversations in an SQL tracker store (as `make run` does)
talks with customers; `make review`'s script reads the store and lists the messages the
bot misread; labelled rows are imported into (a copy of) the training data; `make
evaluate`'s script tests models on the fixed split, promotes the good one into the running
server without restarting it, and refuses a model that regresses.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from devkit import stack
from scripts import nlu_data, review
from scripts.endpoints import write_endpoints
from tests.support.rasa_stack import DEMO_CUSTOMER, ENGLISH_CUSTOMER, Chat, reset_orders

ROOT = Path(__file__).resolve().parents[3]
PYTHON = str(stack.BOT_PYTHON)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("po-loop")


@pytest.fixture(scope="module")
def kept(action_server, log_dir, workdir, orders_url):
    """Rasa with an SQL tracker store in the test's folder, and its endpoints file."""
    reset_orders(orders_url)
    endpoints = write_endpoints(
        workdir / "endpoints.yml", {"TRACKER_STORE_URL": f"sqlite:///{workdir / 'trackers.db'}"}
    )
    server = stack.start_rasa(stack.trained_model(), action_server.url, log_dir, endpoints=str(endpoints))
    yield server, endpoints
    server.stop()


# Messages no customer of a food shop would write the same way twice: the model should not
# be sure of any of them.
GIBBERISH = {
    "ja": ["ぴよぴよぽぽぽ ふがふが", "もけけ るるる ぱぴぷ"],
    "en": ["qwzx vbnm plok", "flibber jabber wonkus"],
}
FRUSTRATED_JA = [
    "親子丼に別卵が付いていませんでした",
    "もういい加減にしてよ、何回言わせるの",
    "ほんとに最悪、ありえない",
]


def run(args: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=1800,
    )


def status(server: stack.RasaServer) -> dict:
    return stack.get_json(server.api("/status"))


@pytest.fixture(scope="module")
def conversations(kept):
    server, _ = kept
    ja = Chat(server, DEMO_CUSTOMER, {"language": "ja", "display_name": "デモ 太郎"})
    for text in GIBBERISH["ja"]:
        ja.say(text)
    angry = Chat(server, "U" + "a" * 32, {"language": "ja", "display_name": "怒 太郎"})
    for text in FRUSTRATED_JA:
        angry.say(text)
    en = Chat(server, ENGLISH_CUSTOMER, {"language": "en", "display_name": "Emma"})
    en.say("my fries are missing")
    for text in GIBBERISH["en"]:
        en.say(text)
    return [ja, angry, en]


def test_review_lists_the_messages_the_bot_misread_without_identifying_customers(kept, conversations, workdir):
    server, endpoints = kept
    out = workdir / "review.csv"
    result = run(
        ["-m", "scripts.review", "--endpoints", str(endpoints), "--out", str(out)], {"REVIEW_PSEUDONYM_KEY": "test-key"}
    )
    assert result.returncode == 0, result.stdout
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0].keys()) == review.COLUMNS

    # What the tracker store says the model did, read through Rasa's own API.
    expected_low = set()
    for chat in conversations:
        for event in chat.tracker()["events"]:
            if event.get("event") != "user" or event["text"].startswith("/"):
                continue
            intent = event["parse_data"]["intent"]
            if intent["name"] == "nlu_fallback" or intent["confidence"] < 0.6:
                expected_low.add(event["text"])
    trained = {**nlu_data.known_texts("ja"), **nlu_data.known_texts("en")}
    flagged_low = {r["message"] for r in rows if {"fallback", "low_confidence"} & set(r["reason"].split("+"))}
    assert flagged_low == {t for t in expected_low if nlu_data.normalized(t) not in trained}
    gibberish = {t for texts in GIBBERISH.values() for t in texts}
    assert flagged_low & gibberish, "the model was sure of every gibberish message"
    assert "my fries are missing" not in {r["message"] for r in rows}

    # The angry conversation went to a person for frustration; its last message is listed.
    angry_tracker = conversations[1].tracker()
    if angry_tracker["slots"].get("handoff_reason") == "frustration":
        assert any("frustration_handoff" in r["reason"] for r in rows)

    for row in rows:
        assert row["language"] in ("ja", "en")
        assert row["correct_intent"] == ""
        assert row["conversation"].startswith("c-")
        assert float(row["confidence"]) <= 1.0
    text = out.read_text(encoding="utf-8-sig")
    for sender in (DEMO_CUSTOMER, ENGLISH_CUSTOMER, "U" + "a" * 32):
        assert sender not in text
    assert "デモ 太郎" not in text and "Emma" not in text
    languages_of = {r["message"]: r["language"] for r in rows}
    for language, texts in GIBBERISH.items():
        for message in set(texts) & set(languages_of):
            assert languages_of[message] == language


def test_labelled_rows_go_into_the_right_files_and_leave_the_queue(kept, conversations, workdir):
    _, endpoints = kept
    nlu_dir = workdir / "bot" / "data" / "nlu"
    if not nlu_dir.exists():
        shutil.copytree(ROOT / "bot" / "data" / "nlu", nlu_dir)
    out = workdir / "review.csv"
    if not out.exists():
        pytest.fail("the review test writes the file this test labels")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    gibberish = {t for texts in GIBBERISH.values() for t in texts}
    labelled = [dict(r, correct_intent="out_of_scope") for r in rows if r["message"] in gibberish]
    assert labelled
    labelled_file = workdir / "labelled.csv"
    with labelled_file.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.COLUMNS)
        writer.writeheader()
        writer.writerows(labelled + [r for r in rows if r["message"] not in gibberish])

    result = run(["-m", "scripts.import_review", "--file", str(labelled_file), "--nlu-dir", str(nlu_dir)], {})
    assert result.returncode == 0, result.stdout
    for row in labelled:
        examples = [e for e in nlu_data.read_examples(row["language"], nlu_dir) if e.text == row["message"]]
        assert [(e.intent, e.path.name) for e in examples] == [("out_of_scope", "out_of_scope.yml")]
    again = run(["-m", "scripts.import_review", "--file", str(labelled_file), "--nlu-dir", str(nlu_dir)], {})
    assert "nothing new to add" in again.stdout
    # The real training data is untouched (the test works on a copy).
    assert not any(e.text in gibberish for lang in ("ja", "en") for e in nlu_data.read_examples(lang))

    queue = asyncio.run(review.build_queue(endpoints, 0.6, nlu_dir))
    assert not {r.message for r in queue} & {r["message"] for r in labelled}

    wrong = workdir / "wrong.csv"
    with wrong.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=review.COLUMNS)
        writer.writeheader()
        writer.writerow(dict(labelled[0], message="まったく新しい文", correct_intent="report_misssing_item"))
    refused = run(["-m", "scripts.import_review", "--file", str(wrong), "--nlu-dir", str(nlu_dir)], {})
    assert refused.returncode == 1
    assert f"{wrong} row 2: unknown intent 'report_misssing_item'" in refused.stdout
    assert not any(e.text == "まったく新しい文" for e in nlu_data.read_examples(labelled[0]["language"], nlu_dir))


def _tiny_model(workdir: Path) -> Path:
    """An NLU model trained on two examples per intent: much worse than the real one."""
    by_intent = collections.defaultdict(list)
    for language in nlu_data.LANGUAGES:
        for example in nlu_data.read_examples(language):
            if len(by_intent[(language, example.intent)]) < 2:
                by_intent[(language, example.intent)].append(example.text)
    lines = ['version: "3.1"', "nlu:"]
    for (_, intent), texts in by_intent.items():
        lines += [f"  - intent: {intent}", "    examples: |"] + [f"      - {t}" for t in texts]
    data = workdir / "tiny_nlu.yml"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run(
        [
            str(stack.BOT_BIN / "rasa"),
            "train",
            "nlu",
            "--config",
            "config.yml",
            "--nlu",
            str(data),
            "--out",
            str(workdir),
            "--fixed-model-name",
            "tiny",
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=1800,
    )
    return workdir / "tiny.tar.gz"


def test_a_good_model_is_promoted_and_served_live_and_a_regressing_one_is_not(kept, conversations, workdir):
    server, _ = kept
    promoted_dir, results = workdir / "promoted", workdir / "results"
    env = {
        "PROMOTED_MODEL_DIR": str(promoted_dir),
        "EVALUATE_RESULTS_DIR": str(results),
        "RASA_TOKEN": server.token,
        "RASA_URL": server.url,
    }
    before = status(server)
    pid = server.process.pid

    # 1. The trained model, nothing promoted yet: evaluated, promoted, loaded by the running server.
    model = stack.trained_model()
    first = run(["-m", "scripts.evaluate", "--model", model], env)
    assert first.returncode == 0, first.stdout
    assert "PROMOTED (no model was promoted before)" in first.stdout
    assert "now serves it" in first.stdout
    latest = results / "latest"
    for language in ("ja", "en"):
        for report in ("intent_report.json", "intent_confusion_matrix.png", "intent_histogram.png"):
            assert (latest / language / report).stat().st_size > 0
    summary = (latest / "summary.md").read_text(encoding="utf-8")
    assert "**PROMOTED**" in summary and "| ja |" in summary and "| en |" in summary
    assert "Test stories" in summary and "All passed." in summary
    assert "Worst confusions" in summary
    served = status(server)
    assert server.process.pid == pid and server.process.poll() is None  # the same process, not restarted
    assert served["model_file"] != before["model_file"]
    assert Path(served["model_file"]).name == "model.tar.gz"
    record = json.loads((promoted_dir / "promoted.json").read_text())
    assert record["source"] == Path(model).name
    # The promoted model answers customers on the same server.
    chat = Chat(server, "U" + "b" * 32, {"language": "en", "display_name": "Kai"})
    assert "".join(m.get("text", "") for m in chat.say("my fries are missing"))

    # 2. A much worse model: evaluated against the promoted one, not promoted, not served.
    tiny = _tiny_model(workdir)
    second = run(["-m", "scripts.evaluate", "--model", str(tiny), "--no-stories"], env)
    assert second.returncode == 2, second.stdout
    assert "NOT PROMOTED" in second.stdout and "macro F1 fell from" in second.stdout
    summary = (results / "latest" / "summary.md").read_text(encoding="utf-8")
    assert "**NOT PROMOTED**" in summary
    intents = set(nlu_data.domain_intents())
    worse = [
        cells
        for cells in (line.split("|") for line in summary.splitlines() if line.startswith("| "))
        if len(cells) == 7 and cells[2].strip() in intents and cells[5].strip().startswith("-0.")
    ]
    assert worse, "the summary lists the intents that got worse"
    assert json.loads((promoted_dir / "promoted.json").read_text())["source"] == Path(model).name
    assert status(server)["model_id"] == served["model_id"]
