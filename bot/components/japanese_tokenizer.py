"""A tokenizer for one model that serves Japanese and English.

Japanese has no spaces, so runs of Japanese script are segmented by MeCab (fugashi) with the
UniDic-lite dictionary, which ships as a Python package. Each token's lemma is UniDic's
lexeme form, which folds spelling variants together (たまご/タマゴ/卵 -> 卵, 入っ -> 入る);
the featurizers use lemmas, so the model sees one word where customers write several.
Everything else (English, digits, order numbers) is split on word characters, like
Rasa's WhitespaceTokenizer.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

import fugashi
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.components.writing_systems import JAPANESE_RUN, normalize

# Words of non-Japanese text: letters/digits, keeping inner apostrophes (didn't) together.
_WORD = re.compile(r"\w+(?:'\w+)*")
# UniDic parts of speech that are punctuation or blanks, not words.
_SKIPPED_POS = {"補助記号", "空白"}
# Token data key for UniDic's part of speech (bot/components/unfamiliar_input.py reads it;
# a key of its own so that no Rasa featurizer picks it up as "pos").
MECAB_POS = "mecab_pos"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class JapaneseTokenizer(Tokenizer):
    """Segments Japanese with MeCab/UniDic and other text on word characters."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["fugashi", "unidic_lite"]

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        self._tagger = fugashi.Tagger()

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        text = message.get(attribute)
        tokens: List[Token] = []
        position = 0
        for run in JAPANESE_RUN.finditer(text):
            tokens.extend(self._latin_tokens(text[position : run.start()], position))
            tokens.extend(self._japanese_tokens(run.group(), run.start()))
            position = run.end()
        tokens.extend(self._latin_tokens(text[position:], position))
        if not tokens:
            # Rasa needs at least one token (e.g. a message that is only an emoji).
            tokens = [Token(text, 0)] if text else []
        return self._apply_token_pattern(tokens)

    @staticmethod
    def _latin_tokens(chunk: str, offset: int) -> List[Token]:
        return [Token(normalize(m.group()), offset + m.start(), offset + m.end()) for m in _WORD.finditer(chunk)]

    def _japanese_tokens(self, chunk: str, offset: int) -> List[Token]:
        tokens = []
        cursor = 0
        for word in self._tagger(chunk):
            surface = word.surface
            start = chunk.find(surface, cursor)
            if start < 0:  # MeCab never rewrites text, but stay safe on odd input
                start = cursor
            cursor = start + len(surface)
            if word.feature.pos1 in _SKIPPED_POS:
                continue
            tokens.append(
                Token(
                    normalize(surface),
                    offset + start,
                    offset + cursor,
                    data={MECAB_POS: word.feature.pos1},
                    lemma=_lemma(word.feature.lemma, surface),
                )
            )
        return tokens


def _lemma(lemma: Optional[str], surface: str) -> str:
    """UniDic lemma without its English gloss (ポテト-potato -> ポテト)."""
    if not lemma or lemma == "*":
        return normalize(surface)
    return normalize(lemma.split("-", 1)[0]) or normalize(surface)
