"""The custom NLU components on real text: tokens, language, safety words."""
from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.components.japanese_tokenizer import JapaneseTokenizer
from bot.components.safety_signals import LexiconError, SafetySignals, load_lexicon
from bot.components.scripts import detect_language


@pytest.fixture(scope="module")
def tokenizer() -> JapaneseTokenizer:
    return JapaneseTokenizer(JapaneseTokenizer.get_default_config())


def tokens_of(tokenizer, text):
    return tokenizer.tokenize(Message(data={"text": text}), "text")


def test_japanese_is_segmented_into_words_with_offsets_into_the_original(tokenizer):
    text = "親子丼に別卵が付いていませんでした。"
    tokens = tokens_of(tokenizer, text)
    assert [t.text for t in tokens][:4] == ["親子", "丼", "に", "別"]
    for token in tokens:
        assert text[token.start : token.end] == token.text
    assert "。" not in [t.text for t in tokens]  # punctuation is not a word


def test_lemmas_fold_kana_and_kanji_spellings_together(tokenizer):
    kana = tokens_of(tokenizer, "たまごが入ってない")
    kanji = tokens_of(tokenizer, "卵が入ってない")
    assert kana[0].lemma == kanji[0].lemma == "卵"
    assert kana[2].lemma == "入る"


def test_english_and_order_numbers_split_on_words(tokenizer):
    tokens = tokens_of(tokenizer, "I didn't get my fries, order #１００１!")
    assert [t.text for t in tokens] == ["i", "didn't", "get", "my", "fries", "order", "1001"]
    assert tokens[-1].start == len("I didn't get my fries, order #")


def test_mixed_text_keeps_offsets(tokenizer):
    text = "my 親子丼 has no egg"
    tokens = tokens_of(tokenizer, text)
    assert [text[t.start : t.end] for t in tokens] == ["my", "親子", "丼", "has", "no", "egg"]


def test_a_message_of_only_an_emoji_still_has_a_token(tokenizer):
    assert len(tokens_of(tokenizer, "🙏")) == 1


@pytest.mark.parametrize(
    "text,language",
    [
        ("別卵がない", "ja"),
        ("ポテト", "ja"),
        ("my fries are missing", "en"),
        ("refund", "en"),
        ("OK", None),  # says nothing about the language: keep the customer's
        ("1001", None),
        ("👍", None),
    ],
)
def test_language_detection(text, language):
    assert detect_language(text) == language


@pytest.fixture(scope="module")
def safety(tokenizer):
    component = SafetySignals(load_lexicon())

    def classify(text: str, intent: str = "report_wrong_item"):
        message = Message(data={"text": text, "intent": {"name": intent, "confidence": 0.9},
                                "intent_ranking": [{"name": intent, "confidence": 0.9}]})
        tokenizer.process([message])
        component.process([message])
        return message.get("intent")["name"], message.get("safety_signals")

    return classify


@pytest.mark.parametrize(
    "text",
    [
        "卵アレルギーなのに卵が入っていました",
        "食べたあとお腹を壊しました",
        "容器で手をけがしました",
        "ガラス片が入っていて口を切った",
        "my son is allergic to peanuts and there were peanuts",
        "I threw up after eating the curry",
    ],
)
def test_safety_words_override_the_intent(safety, text):
    intent, signals = safety(text)
    assert intent == "report_safety_issue"
    assert signals


@pytest.mark.parametrize(
    "text",
    ["卵だけが入っていませんでした", "ポテトが少しだけ冷めていた", "the box was a bit squashed", "I'm sick of waiting"],
)
def test_ordinary_complaints_are_not_safety_cases(safety, text):
    intent, signals = safety(text)
    assert intent == "report_wrong_item" and signals is None


def test_lexicon_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "signals.yml"
    path.write_text("safety:\n  ja:\n    - アレルギー\n  en:\n    - \n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"signals.yml:5: safety.en"):
        load_lexicon(path)
    path.write_text("safety:\n  fr:\n    - allergie\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"signals.yml:2: safety.fr: unknown language"):
        load_lexicon(path)
