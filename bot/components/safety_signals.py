"""Routes any message that mentions a safety problem to `report_safety_issue`.

Allergies, food poisoning and injuries must reach a person every time, even when the
classifier is unsure or reads "卵アレルギーなのに卵が入ってた" as a wrong item. So after the
classifier, a lexicon that product owners keep in `bot/safety_lexicon.yml` overrides the intent
and records which words matched (`safety_signals` in the parse result, for the agent).

Words alone miss injuries told in ordinary words (「口の中が切れた」, "my gum hurts"), so the
same file's `safety_patterns:` combine word groups over the tokenizer's analysis
(bot/components/safety_patterns.py); what a pattern matched is recorded as
`pattern:<rule>: <the words>` beside the lexicon's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.components.lexicon_component import LexiconComponent
from bot.components.safety_patterns import SafetyPatterns, load_patterns
from bot.components.writing_systems import katakana_to_hiragana, normalize

SAFETY_INTENT = "report_safety_issue"
DEFAULT_LEXICON = Path(__file__).resolve().parent.parent / "safety_lexicon.yml"


class LexiconError(ValueError):
    """A mistake in bot/safety_lexicon.yml, with file and line."""


@dataclass(frozen=True)
class SafetyLexicon:
    """Safety words per language, matched the way each language needs."""

    japanese: Sequence[str]
    english: Sequence[str]

    def matches(self, text: str, lemmas: Sequence[str]) -> List[str]:
        folded = katakana_to_hiragana(normalize(text))
        lemma_set = {katakana_to_hiragana(lemma) for lemma in lemmas}
        found = []
        for term in self.japanese:
            key = katakana_to_hiragana(normalize(term))
            # Short kana words hide inside other words (だけが contains けが): for those
            # only a whole token counts. Longer words and kanji match anywhere.
            short_kana = len(key) <= 2 and not re.search(r"[\u4e00-\u9fff]", key)
            if key in lemma_set or (not short_kana and key in folded):
                found.append(term)
        for term in self.english:
            if re.search(r"\b" + re.escape(normalize(term)), folded):
                found.append(term)
        return found


_HIRAGANA_ONLY = re.compile(r"^[\u3040-\u309fー]+$")


def word_forms(tokens: Sequence[Any]) -> List[str]:
    """Each token's text, and its lemma unless the text is all hiragana.

    A lemma folds ケガ and 怪我 together, but for a hiragana word MeCab's lemma is a
    guess between homophones: Kansai "番号30441やけど" ("...but") came back as 火傷 (a burn).
    Hiragana spellings of safety words are listed in safety_lexicon.yml instead.
    """
    forms = [t.text for t in tokens]
    forms += [t.lemma for t in tokens if getattr(t, "lemma", None) and not _HIRAGANA_ONLY.match(t.text)]
    return forms


def load_lexicon(path: Path = DEFAULT_LEXICON) -> SafetyLexicon:
    """Reads the `safety` section of safety_lexicon.yml; errors name the file and line."""
    with open(path, encoding="utf-8") as handle:
        root = yaml.compose(handle)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise LexiconError(f"{path}:1: expected a mapping with a 'safety' section")
    sections = {key.value: value for key, value in root.value}
    safety = sections.get("safety")
    if not isinstance(safety, yaml.MappingNode):
        raise LexiconError(f"{path}:1: missing 'safety:' with 'ja:' and 'en:' lists")
    lists: Dict[str, List[str]] = {}
    for key, value in safety.value:
        line = key.start_mark.line + 1
        if key.value not in ("ja", "en"):
            raise LexiconError(f"{path}:{line}: safety.{key.value}: unknown language; use ja or en")
        if not isinstance(value, yaml.SequenceNode):
            raise LexiconError(f"{path}:{line}: safety.{key.value}: expected a list of words")
        words = []
        for item in value.value:
            if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
                raise LexiconError(
                    f"{path}:{item.start_mark.line + 1}: safety.{key.value}: "
                    "each entry must be a non-empty word or phrase"
                )
            words.append(str(item.value).strip())
        lists[key.value] = words
    for language in ("ja", "en"):
        if not lists.get(language):
            raise LexiconError(f"{path}:1: safety.{language}: add at least one word")
    return SafetyLexicon(japanese=tuple(lists["ja"]), english=tuple(lists["en"]))


@dataclass(frozen=True)
class SafetyDetector:
    """The lexicon (certainty: a listed word always counts) and the patterns (generalisation)."""

    lexicon: SafetyLexicon
    patterns: SafetyPatterns

    def matches(self, text: str, tokens: Sequence[Any]) -> List[str]:
        return self.lexicon.matches(text, word_forms(tokens)) + self.patterns.matches(text, tokens)


def load_safety(path: Path = DEFAULT_LEXICON) -> SafetyDetector:
    """Both sections of safety_lexicon.yml; errors name the file and line."""
    return SafetyDetector(load_lexicon(path), load_patterns(path))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SafetySignals(LexiconComponent):
    """Overrides the intent with `report_safety_issue` when a safety word or pattern appears."""

    default_lexicon = DEFAULT_LEXICON
    read_lexicon = staticmethod(load_safety)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            tokens = message.get(TOKENS_NAMES[TEXT]) or []
            if isinstance(self._lexicon, SafetyLexicon):  # built from load_lexicon: words only
                found = self._lexicon.matches(text, word_forms(tokens))
            else:
                found = self._lexicon.matches(text, tokens)
            if not found:
                continue
            message.set("safety_signals", found, add_to_output=True)
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) != SAFETY_INTENT:
                override = {INTENT_NAME_KEY: SAFETY_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
                message.set(INTENT, override, add_to_output=True)
                # The other readings stay for the agent, at half their confidence: otherwise
                # the FallbackClassifier after us saw "damaged item 0.985" beside the 1.0
                # and, as two readings too close to tell apart, made a cut finger a fallback.
                ranking = [
                    {**r, PREDICTED_CONFIDENCE_KEY: float(r.get(PREDICTED_CONFIDENCE_KEY) or 0.0) / 2}
                    for r in message.get(INTENT_RANKING_KEY) or []
                    if r.get(INTENT_NAME_KEY) != SAFETY_INTENT
                ]
                message.set(INTENT_RANKING_KEY, [override] + ranking, add_to_output=True)
        return messages
