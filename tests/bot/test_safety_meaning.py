"""Safety from the meaning: recall and false positives on a held-out set, per language.

tests/data/nlu/safety_heldout.yml holds safety cases told in ordinary words and ordinary
complaints that share their words; it is never trained on and the patterns in
bot/safety_lexicon.yml were not written from it. Run with -s to see the figures:
    .venv-bot/bin/python -m pytest tests/bot/test_safety_meaning.py -q -s
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from bot.components.japanese_tokenizer import JapaneseTokenizer
from bot.components.safety_patterns import PatternError, load_patterns
from bot.components.safety_signals import SafetySignals, load_lexicon, load_safety

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "tests" / "data" / "nlu" / "safety_heldout.yml"
MIN_RECALL = 0.95
MAX_FALSE_POSITIVE_RATE = 0.05


@pytest.fixture(scope="module")
def tokenizer() -> JapaneseTokenizer:
    return JapaneseTokenizer(JapaneseTokenizer.get_default_config())


def run(tokenizer: JapaneseTokenizer, component: SafetySignals, text: str) -> Tuple[bool, Optional[List[str]]]:
    """The message as the pipeline hands it over: tokenized, classified as a late delivery."""
    message = Message(
        data={
            "text": text,
            "intent": {"name": "report_late_delivery", "confidence": 0.9},
            "intent_ranking": [{"name": "report_late_delivery", "confidence": 0.9}],
        }
    )
    tokenizer.process([message])
    component.process([message])
    return message.get("intent")["name"] == "report_safety_issue", message.get("safety_signals")


def figures(tokenizer: JapaneseTokenizer, component: SafetySignals) -> Dict[str, Dict[str, object]]:
    heldout = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    result = {}
    for language in ("ja", "en"):
        cases, ordinary = heldout[language]["safety"], heldout[language]["not_safety"]
        missed = [t for t in cases if not run(tokenizer, component, t)[0]]
        false = [t for t in ordinary if run(tokenizer, component, t)[0]]
        result[language] = {
            "recall": 1 - len(missed) / len(cases),
            "fpr": len(false) / len(ordinary),
            "n": (len(cases), len(ordinary)),
            "missed": missed,
            "false": false,
        }
    return result


def test_the_heldout_set_is_big_enough_and_not_in_the_training_data():
    heldout = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    training = set()
    for path in (ROOT / "bot" / "data" / "nlu").glob("*/*.yml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            training.add(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip().lstrip("- ")).lower())
    for language in ("ja", "en"):
        for kind in ("safety", "not_safety"):
            lines = heldout[language][kind]
            assert len(lines) >= 40, f"{language}.{kind}: at least 40 messages"
            assert len(set(lines)) == len(lines), f"{language}.{kind}: a message twice"
            assert not {t.strip().lower() for t in lines} & training, "held-out lines found in bot/data/nlu"


def test_recall_and_false_positives_per_language(tokenizer):
    before = figures(tokenizer, SafetySignals(load_lexicon()))  # the word list alone
    after = figures(tokenizer, SafetySignals(load_safety()))  # words and patterns
    for language in ("ja", "en"):
        b, a = before[language], after[language]
        print(
            f"\nsafety held-out {language} (n={a['n'][0]} safety, {a['n'][1]} ordinary): "
            f"lexicon only recall {b['recall']:.3f} FPR {b['fpr']:.3f} -> "
            f"lexicon+patterns recall {a['recall']:.3f} FPR {a['fpr']:.3f}"
        )
        for text in a["missed"]:
            print(f"  missed: {text}")
        for text in a["false"]:
            print(f"  false positive: {text}")
    for language in ("ja", "en"):
        assert after[language]["recall"] >= MIN_RECALL, (language, after[language]["missed"])
        assert after[language]["fpr"] <= MAX_FALSE_POSITIVE_RATE, (language, after[language]["false"])


@pytest.fixture(scope="module")
def safety(tokenizer):
    component = SafetySignals(load_safety())
    return lambda text: run(tokenizer, component, text)


# The issue: an injury in ordinary words (a cut, bleeding) must be a safety case in the turn it
# is told, with or without a photo, not a late delivery two turns later.
@pytest.mark.parametrize(
    "text",
    [
        "届いた箱の縁で手のひらがスパッと切れてしまって",
        "指先から血がどんどん出てくる",
        "写真送ります。唇が切れて血がにじんでる",
        "the edge of the tray cut my daughter's palm",
        "my thumb is bleeding from the broken lid",
        "photo attached, the inside of my cheek is cut",
    ],
)
def test_the_issue_a_cut_and_bleeding_reach_a_person(safety, text):
    is_safety, signals = safety(text)
    assert is_safety and signals


def test_a_pattern_is_recorded_like_a_lexicon_word(safety):
    is_safety, signals = safety("口の中がざくっと切れた")
    assert is_safety
    assert any(s.startswith("pattern:harm_to_body: 口") for s in signals), signals


# Decided: ordinary words without a body part, figures of speech and single MeCab words
# (品切れ, 口コミ, 血圧) are not safety cases.
@pytest.mark.parametrize(
    "text",
    [
        "品切れでした",
        "在庫切れって何",
        "痛い出費だわ",
        "まじムカつく",
        "頭にくるほど遅い",
        "口コミと違う",
        "血圧が上がりそう",
        "プラスチックのストローが入ってない",
        "the box was cut open",
        "cut the price please",
        "my patience is gone",
        "it hurts to wait so long",
        "what a pain in the neck",
        "no plastic fork in the bag",
    ],
)
def test_ordinary_complaints_that_share_words_are_not(safety, text):
    assert safety(text) == (False, None)


def test_a_figure_of_speech_is_no_pattern_but_a_lexicon_word_still_counts(safety):
    # 「胃が痛くなるほど待った」: the patterns skip it (ほど), the lexicon's 胃が痛 keeps it a
    # safety case: the lexicon is certainty, and a person's minute is the cheaper mistake.
    is_safety, signals = safety("胃が痛くなるほど待った")
    assert is_safety and signals == ["胃が痛"]
    assert safety("頭が痛くなるほど待った") == (False, None)


def test_the_component_built_by_rasa_reads_the_patterns(tokenizer):
    component = SafetySignals.create({"lexicon": None}, None, None, None)
    assert run(tokenizer, component, "舌がピリピリする")[0]


def test_pattern_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "safety_lexicon.yml"
    path.write_text(
        "safety:\n  ja: [a]\n  en: [a]\nsafety_patterns:\n  ja:\n    groups:\n      body: [口]\n"
        "    rules:\n      - name: r\n        all: [body, harm]\n",
        encoding="utf-8",
    )
    with pytest.raises(
        PatternError, match=r"safety_lexicon.yml:10: safety_patterns.ja.rules.r.all: no group named 'harm'"
    ):
        load_patterns(path)
    path.write_text("safety_patterns:\n  ja:\n    groups:\n      body: [口, '']\n    rules: []\n", encoding="utf-8")
    with pytest.raises(PatternError, match=r"safety_lexicon.yml:4: safety_patterns.ja.groups.body.words"):
        load_patterns(path)
    path.write_text("safety_patterns:\n  fr:\n    groups: {}\n", encoding="utf-8")
    with pytest.raises(PatternError, match=r"safety_lexicon.yml:2: safety_patterns.fr: unknown language"):
        load_patterns(path)
