"""The custom NLU components on real text: tokens, language, safety words."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot.components.japanese_tokenizer import JapaneseTokenizer
from bot.components.safety_signals import LexiconError, SafetySignals, load_lexicon, load_safety
from bot.components.unfamiliar_input import UnfamiliarInputGuard
from bot.components.writing_systems import detect_language


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
        message = Message(
            data={
                "text": text,
                "intent": {"name": intent, "confidence": 0.9},
                "intent_ranking": [{"name": intent, "confidence": 0.9}],
            }
        )
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
        "食べてから体中が痒いです",
        "喉が腫れてきた気がする",
        "my face is swollen since the curry",
        "there was a cockroach in the salad",
    ],
)
def test_safety_words_override_the_intent(safety, text):
    intent, signals = safety(text)
    assert intent == "report_safety_issue"
    assert signals


@pytest.mark.parametrize(
    "text",
    [
        "卵だけが入っていませんでした",
        "ポテトが少しだけ冷めていた",
        "the box was a bit squashed",
        "I'm sick of waiting",
        # Kansai "...やけど" ("but") is not やけど (a burn); MeCab's lemma for it is 火傷
        "番号30441やけど",
        "注文したんやけど来てへん",
        "the toothbrush came in the wrong colour",
        "the cake mould arrived dented",
        "onaka suita, where is my food",
    ],
)
def test_ordinary_complaints_are_not_safety_cases(safety, text):
    intent, signals = safety(text)
    assert intent == "report_wrong_item" and signals is None


def test_a_safety_case_is_not_made_a_fallback_by_a_close_second_reading(tokenizer):
    # The classifier was 0.985 sure of a damaged mug: beside the override's 1.0 Rasa's
    # FallbackClassifier read the two as too close to tell apart (ambiguity_threshold).
    text = "マグカップが割れてて、箱から出すときに指を切っちゃいました。血が止まらないです"
    message = Message(
        data={
            "text": text,
            "intent": {"name": "report_damaged_item", "confidence": 0.985},
            "intent_ranking": [
                {"name": "report_damaged_item", "confidence": 0.985},
                {"name": "report_safety_issue", "confidence": 0.01},
            ],
        }
    )
    tokenizer.process([message])
    SafetySignals(load_safety()).process([message])
    config = {**FallbackClassifier.get_default_config(), "threshold": 0.45, "ambiguity_threshold": 0.08}
    FallbackClassifier(config).process([message])
    assert message.get("intent")["name"] == "report_safety_issue"
    assert message.get("intent_ranking")[1]["name"] == "report_damaged_item"  # kept for the agent


def test_lexicon_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "safety_lexicon.yml"
    path.write_text("safety:\n  ja:\n    - アレルギー\n  en:\n    - \n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"safety_lexicon.yml:5: safety.en"):
        load_lexicon(path)
    path.write_text("safety:\n  fr:\n    - allergie\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"safety_lexicon.yml:2: safety.fr: unknown language"):
        load_lexicon(path)


# --- Unfamiliar input: no guess on a message without one word the model could know -------
@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    """The guard trained on the real training data, saved and loaded back as Rasa does."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("unfamiliar_input")
    context = ExecutionContext(GraphSchema({}), "test")
    config = UnfamiliarInputGuard.get_default_config()
    UnfamiliarInputGuard.create(config, storage, resource, context).train(
        load_data(str(Path(__file__).resolve().parents[2] / "bot" / "data" / "nlu"))
    )
    return UnfamiliarInputGuard.load(config, storage, resource, context)


def parse(tokenizer, guard, text, intent="express_frustration", entities=()):
    """Tokenizer, a classifier's confident guess, the guard and Rasa's FallbackClassifier."""
    message = Message(
        data={
            "text": text,
            "intent": {"name": intent, "confidence": 0.99},
            "intent_ranking": [{"name": intent, "confidence": 0.99}],
            "entities": list(entities),
        }
    )
    tokenizer.process([message])
    guard.process([message])
    fallback = FallbackClassifier({**FallbackClassifier.get_default_config(), "threshold": 0.45})
    fallback.process([message])
    return message


@pytest.mark.parametrize(
    "text",
    [
        "ぴよぴよぽぽぽ ふがふが",
        "にゃーん",
        "ほげほげ",
        "あああああ",
        "ｗｗｗｗ",
        "xyzzy zorkmid",
        "hogehoge",
        "qwerty uiop",
        "zzzzzz",
        "lkjh lkjh",
        "。。。",
        "？？？",
    ],
)
def test_nonsense_gets_the_fallback_not_a_confident_guess(tokenizer, guard, text):
    message = parse(tokenizer, guard, text, entities=[{"entity": "item", "value": "x", "start": 0, "end": 1}])
    assert message.get("intent")["name"] == "nlu_fallback"
    assert message.get("unfamiliar_input") is True
    assert message.get("entities") == []
    # the classifier's guess stays in the ranking, for the review queue
    assert "express_frustration" in [r["name"] for r in message.get("intent_ranking")]


@pytest.mark.parametrize(
    "text",
    [
        "卵が入ってない",
        "はい",
        "ok",
        "1001",
        "かき揚げ",  # a dish the training data never names: a dictionary noun
        "電子マネーで払えるん？",  # unseen words of a real sentence
        "cancelll pls",
        "pleaseeee",
        "delivry",  # stretched and misspelt words
        "👍",  # no word characters, but in the training data
    ],
)
def test_real_words_keep_the_classifiers_answer(tokenizer, guard, text):
    message = parse(tokenizer, guard, text, intent="affirm")
    assert message.get("intent")["name"] == "affirm", message.get("intent")
    assert message.get("unfamiliar_input") is None


def test_an_untrained_guard_changes_nothing(tokenizer, tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    config = UnfamiliarInputGuard.get_default_config()
    empty = UnfamiliarInputGuard.load(config, storage, Resource("never_trained"), context)
    assert parse(tokenizer, empty, "xyzzy plugh").get("intent")["name"] == "express_frustration"
