"""Keeps the classifier from guessing on a message with no word it could know.

DIET scores every message against the intents it knows, and its character n-grams make it
confident about keyboard mashes and nonsense too ("ぴよぴよぽぽぽ" as frustration at 0.99,
"xyzzy plugh" as a safety report, "hogehoge" as a yes). Inside a claim a "yes" applies a
remedy, so a guess on nonsense is worse than asking again.

So after the classifier this component looks for evidence that the message is made of
words: a word of the training data (its text or lemma, the lookup tables included), a
near spelling of one (typos), a number, or a Japanese dictionary noun, verb or adjective
(MeCab's part of speech, so unseen dishes and words still count; its onomatopoeia and
interjections do not, because kana nonsense is read as those). With none, the intent's
confidence is set to 0, so the FallbackClassifier after it answers `nlu_fallback` (the
bot asks again; twice -> a person), the entities are dropped, and the parse result says
`unfamiliar_input: true` so the frustration score ignores the guesses. The classifier's
ranking stays, for the review queue's "predicted intent".

A message without word characters ("。。。", "？？？", an emoji) counts only if the training
data has it (👍, 👎): DIET read "。。。" as a yes at 0.8.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Dict, Iterable, List, Optional, Set, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import ENTITIES, INTENT, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.japanese_tokenizer import MECAB_POS, JapaneseTokenizer
from bot.components.writing_systems import katakana_to_hiragana

VOCABULARY_FILE = "vocabulary.json"
# MeCab/UniDic parts of speech that are evidence of a real word. Adverbs (副詞) and
# interjections (感動詞) are left out: UniDic reads kana nonsense as those.
CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "代名詞"}
_SINGLE_LETTER = re.compile(r"^[a-z\u3040-\u30ffー]$")
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々]")
_WORD_CHAR = re.compile(r"\w")
_REPEATS = re.compile(r"(.)\1{2,}")


def word_key(text: str) -> str:
    """How a word is compared: lower case (the tokenizer already folds), katakana as hiragana."""
    return katakana_to_hiragana(text.lower())


def _is_trivial(key: str) -> bool:
    """A single kana or Latin letter (particles, "a", "i") is no evidence on its own."""
    return bool(_SINGLE_LETTER.match(key))


def _spellings(key: str) -> List[str]:
    """The word and, for stretched words ("pleaseeee", "hiii"), its shortened forms."""
    forms = [key]
    if _REPEATS.search(key):
        forms += [_REPEATS.sub(r"\1", key), _REPEATS.sub(r"\1\1", key)]
    return forms


class Vocabulary:
    """The words of the training data, and the test for "a word we could know"."""

    def __init__(self, words: Iterable[str], near_cutoff: float = 0.85, near_min_length: int = 4) -> None:
        self.words: Set[str] = {w for w in words if w and not _is_trivial(w)}
        self._by_first_letter: Dict[str, List[str]] = {}
        for word in self.words:
            self._by_first_letter.setdefault(word[0], []).append(word)
        self.near_cutoff = near_cutoff
        self.near_min_length = near_min_length

    def evidence(self, token: Token) -> Optional[str]:
        """Why this token is a word ("known", "near:<word>", "number", "dictionary"), or None."""
        keys = [word_key(token.text)]
        if token.lemma:
            keys.append(word_key(token.lemma))
        if keys[0].isdigit():
            return "number"
        if not _WORD_CHAR.search(keys[0]):
            return "known" if keys[0] in self.words else None  # punctuation, emoji
        for key in keys:
            if _is_trivial(key):
                continue
            for form in _spellings(key):
                if form in self.words:
                    return "known"
        if token.get(MECAB_POS) in CONTENT_POS and (len(keys[0]) >= 2 or _KANJI.search(keys[0])):
            return "dictionary"
        key = keys[0]
        if len(key) >= self.near_min_length and key.isascii():
            # A typo keeps the first letter far more often than not; comparing within it
            # keeps this cheap on a vocabulary of thousands.
            candidates = self._by_first_letter.get(key[0], [])
            for form in _spellings(key):
                near = difflib.get_close_matches(form, candidates, n=1, cutoff=self.near_cutoff)
                if near:
                    return f"near:{near[0]}"
        return None

    def is_unfamiliar(self, tokens: List[Token]) -> bool:
        """True when not one token of the message is a word we could know."""
        return bool(tokens) and not any(self.evidence(token) for token in tokens)


def training_words(training_data: TrainingData, tokenizer: Optional[JapaneseTokenizer] = None) -> Set[str]:
    """Texts and lemmas of the tokens of every NLU example, lookup entry and synonym."""
    tokenizer = tokenizer or JapaneseTokenizer(JapaneseTokenizer.get_default_config())
    words: Set[str] = set()

    def add(tokens: Iterable[Token]) -> None:
        for token in tokens:
            words.add(word_key(token.text))
            if token.lemma:
                words.add(word_key(token.lemma))

    for example in training_data.intent_examples:
        tokens = example.get(TOKENS_NAMES[TEXT])
        if tokens is None and example.get(TEXT):
            tokens = tokenizer.tokenize(example, TEXT)
        add(tokens or [])
    extra = [str(e) for table in training_data.lookup_tables for e in table.get("elements") or [] if isinstance(e, str)]
    extra += [str(s) for pair in training_data.entity_synonyms.items() for s in pair]
    for phrase in extra:
        add(tokenizer.tokenize(Message(data={TEXT: phrase}), TEXT))
    return words


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class UnfamiliarInputGuard(GraphComponent):
    """Sends a message with no recognisable word to the fallback instead of a guess."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # near_cutoff: how alike (0-1, difflib ratio) a typo must be to a known word.
        return {"near_cutoff": 0.85, "near_min_length": 4}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[Vocabulary] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "UnfamiliarInputGuard":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        words = sorted(training_words(training_data))
        self.vocabulary = self._vocabulary(words)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "UnfamiliarInputGuard":
        guard = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except ValueError:
            words = None  # not trained (e.g. `rasa train core` only): guard nothing
        guard.vocabulary = guard._vocabulary(words) if words is not None else None
        return guard

    def _vocabulary(self, words: Iterable[str]) -> Vocabulary:
        return Vocabulary(
            words, float(self._config.get("near_cutoff", 0.85)), int(self._config.get("near_min_length", 4))
        )

    def process(self, messages: List[Message]) -> List[Message]:
        if self.vocabulary is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            intent = message.get(INTENT)
            if not text or not intent:
                continue
            if self.vocabulary.is_unfamiliar(message.get(TOKENS_NAMES[TEXT]) or []):
                message.set(INTENT, {**intent, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
                message.set(ENTITIES, [], add_to_output=True)
                message.set("unfamiliar_input", True, add_to_output=True)
        return messages
