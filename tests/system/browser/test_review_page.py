"""The review page in a browser: the queue from `make review`'s CSV, a row labelled into
(a copy of) the training data by the real scripts/import_review.py, the queue refreshed
by a script run, the last evaluation's summary and confusion matrix, both languages.

Needs no Rasa: the page only reads files and runs scripts.
"""

from __future__ import annotations

import codecs
import csv
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from contracts.review import REVIEW_COLUMNS
from tests.system.browser.conftest import ROOT

COLUMNS = list(REVIEW_COLUMNS)
# Messages no training file has (the import must add them, not skip them as duplicates).
ROWS = [
    {
        "id": "r1",
        "conversation": "c7f1",
        "language": "ja",
        "message": "たまごどこいったの？入ってないんだけど",
        "predicted_intent": "out_of_scope",
        "confidence": "0.41",
        "reason": "low_confidence",
        "timestamp": "2025-01-10T12:00:00+09:00",
        "correct_intent": "",
    },
    {
        "id": "r2",
        "conversation": "c7f1",
        "language": "ja",
        "message": "さっきからずっと待ってるんだけど来ない",
        "predicted_intent": "greet",
        "confidence": "0.38",
        "reason": "fallback",
        "timestamp": "2025-01-10T12:01:00+09:00",
        "correct_intent": "",
    },
    {
        "id": "r3",
        "conversation": "a9e2",
        "language": "en",
        "message": "the gyoza box came crushed flat",
        "predicted_intent": "report_wrong_item",
        "confidence": "0.52",
        "reason": "rephrased",
        "timestamp": "2025-01-11T19:30:00+09:00",
        "correct_intent": "",
    },
]
SUMMARY = """# Evaluation 2025-01-12

Candidate model `20250112-nlu.tar.gz` against the baseline.

## Intents

| language | accuracy | macro F1 |
|---|---|---|
| ja | 0.931 | 0.902 |
| en | 0.948 | 0.921 |

- no regression above **2%**
- 14 intents evaluated
"""
# Writes a new queue where --out says, as scripts/review.py does (stands in for it: the
# real one reads the tracker store, which this test has none of).
FAKE_REVIEW = """import csv, sys
out = sys.argv[sys.argv.index("--out") + 1]
rows = list(csv.DictReader(open(out, encoding="utf-8-sig")))
rows.append({"id": "r4", "conversation": "b1", "language": "ja", "message": "ポテトのサイズが違う気がする",
             "predicted_intent": "greet", "confidence": "0.30", "reason": "low_confidence",
             "timestamp": "2025-01-12T09:00:00+09:00", "correct_intent": ""})
w = csv.DictWriter(open(out, "w", encoding="utf-8-sig", newline=""), fieldnames=list(rows[0]))
w.writeheader(); w.writerows(rows)
print(f"review: {len(rows)} message(s) to review -> {out}")
"""


def tiny_png(path: Path, size: int = 64) -> None:
    """A real PNG (a grey gradient), when no evaluation image is at hand."""
    raw = b"".join(b"\x00" + bytes((x * 4 + y) % 256 for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def review_files(tmp_path):
    queue = tmp_path / "review" / "review.csv"
    queue.parent.mkdir()
    with queue.open("w", encoding="utf-8", newline="") as f:
        f.write(codecs.BOM_UTF8.decode("utf-8"))  # as scripts/review.py writes it
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(ROWS)
    evaluation = tmp_path / "evaluate"
    (evaluation / "ja").mkdir(parents=True)
    (evaluation / "summary.md").write_text(SUMMARY, encoding="utf-8")
    matrix = ROOT / "results" / "nlu" / "heldout_ja" / "intent_confusion_matrix.png"
    if matrix.exists():
        shutil.copy(matrix, evaluation / "ja" / "intent_confusion_matrix.png")
    else:
        tiny_png(evaluation / "ja" / "intent_confusion_matrix.png")
    nlu = tmp_path / "nlu"
    shutil.copytree(ROOT / "bot" / "data" / "nlu", nlu)  # the import writes here, never bot/data
    fake_review = tmp_path / "fake_review.py"
    fake_review.write_text(FAKE_REVIEW, encoding="utf-8")
    return {"queue": queue, "evaluation": evaluation, "nlu": nlu, "fake_review": fake_review, "tmp": tmp_path}


def test_a_misread_message_is_labelled_into_the_training_data_and_the_queue_refreshes(
    start_workbench, review_files, page, screenshot
):
    f = review_files
    wb = start_workbench(
        [
            "--review-csv",
            str(f["queue"]),
            "--evaluate-dir",
            str(f["evaluation"]),
            "--review-script",
            str(f["fake_review"]),
            f"--import-arg=--nlu-dir={f['nlu']}",
        ]
    )
    page.goto(f"{wb.url}/review?lang=ja")
    expect(page.locator("h1").first).to_have_text("ボットが誤解したメッセージ")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("たまごどこいったの")
    # the select offers the domain's intents, not the gateway-only ones
    options = page.locator("#intent-r1 option").all_inner_texts()
    assert "report_missing_item" in options and "request_human" in options
    assert "EXTERNAL_agent_resolved" not in options and "relayed_to_agent" not in options
    # the last evaluation: the Markdown summary as HTML, the ja matrix as an image
    expect(page.locator(".markdown h2")).to_have_text("Evaluation 2025-01-12")
    expect(page.locator(".markdown table td").first).to_have_text("ja")
    expect(page.locator(".markdown li strong")).to_have_text("2%")
    image = page.locator('img[src^="/review/matrix/ja.png"]')
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 0
    expect(page.locator(".matrices")).to_contain_text("画像がありません")  # no en image
    screenshot(page, "review", full_page=True)

    # label the first row with the keyboard only: focus the select, pick, press the button
    page.focus("#intent-r1")
    page.select_option("#intent-r1", "report_missing_item")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    result = page.locator("#result")
    expect(result).to_contain_text("import_review.py")
    expect(result).to_contain_text("added 1 example(s)")
    expect(result).to_have_class("result ok")
    expect(page.locator('tr[data-row-id="r1"]')).to_contain_text("追加済み")
    target = (f["nlu"] / "ja").glob("*.yml")
    assert any("たまごどこいったの？入ってないんだけど" in p.read_text(encoding="utf-8") for p in target)
    screenshot(page, "review-labelled", full_page=True)

    # refresh: the review script runs with --out the queue, and its new row shows
    page.get_by_role("button", name="キューを更新").click()
    expect(page.locator("#result")).to_contain_text("4 message(s) to review")
    expect(page.locator("table.queue tbody tr")).to_have_count(4)
    expect(page.locator('tr[data-row-id="r4"]')).to_contain_text("ポテトのサイズが違う気がする")

    # the language toggle: the same page in English, the labels too
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1").first).to_have_text("Messages the bot misunderstood")
    expect(page.get_by_role("button", name="Refresh the queue")).to_be_visible()
    expect(page.locator('tr[data-row-id="r2"] button')).to_have_text("Add to training data")
    screenshot(page, "review-en", full_page=True)


def test_a_missing_script_is_reported_plainly(start_workbench, review_files, page):
    f = review_files
    wb = start_workbench(
        [
            "--review-csv",
            str(f["queue"]),
            "--evaluate-dir",
            str(f["tmp"] / "none"),
            "--import-script",
            str(f["tmp"] / "import_review.py"),
        ]
    )
    page.goto(f"{wb.url}/review?lang=en")
    expect(page.locator("#evaluation + p")).to_contain_text("No evaluation yet")
    page.select_option("#intent-r3", "report_damaged_item")
    page.locator('tr[data-row-id="r3"] button').click()
    result = page.locator("#result")
    expect(result).to_have_class("result error")
    expect(result).to_contain_text("import_review.py does not exist (yet): nothing was run.")
    expect(page.locator('tr[data-row-id="r3"] button')).to_be_visible()  # not marked as added
