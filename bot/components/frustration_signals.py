"""Finds the signs of frustration in each message: angry and desperate words, intensifiers
and shouting, for the frustration score (bot/frustration.py).

The words are in `bot/frustration_lexicon.yml`, which product owners keep; it is checked
when Rasa starts and a mistake is reported with the file and line. The component runs
after the intent classifier and changes nothing the classifier decided: it adds
`frustration_signals` to the parse result, a list of
`{"signal": "angry_word"|"desperate_word"|"intensifier"|"shouting", "text", "weight"}`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.lexicon_component import LexiconComponent
from bot.components.writing_systems import JAPANESE_RUN, katakana_to_hiragana, normalize

DEFAULT_LEXICON = Path(__file__).resolve().parent.parent / "frustration_lexicon.yml"
SIGNALS_KEY = "frustration_signals"
# Lexicon section -> the signal its words give.
SECTIONS = {"angry": "angry_word", "desperate": "desperate_word", "intensifiers": "intensifier"}
LANGUAGES = ("ja", "en", "any")
MAX_WEIGHT = 5.0

# Shouting, each kind with its weight relative to the `shouting` weight in bot/remedy_policy.yml.
CAPITALS_WEIGHT = 1.0
_EXCLAMATIONS = re.compile(r"!{2,}")  # "!!", "！！" (full-width folded by NFKC)
EXCLAMATIONS_WEIGHT = 0.6
_QUESTIONS = re.compile(r"\?{2,}|\?!|!\?")  # "??", "？？", "?!"
QUESTIONS_WEIGHT = 0.6
# One character three or more times ("はやくーーー", "nooooo", "😡😡😡"); not laughter
# (www, 笑笑笑), dots, tildes (soft in Japanese), digits, spaces or ! and ? (counted above).
_REPEATED = re.compile(r"([^\swｗ笑.。・…~〜\-_=*!?\d])\1{2,}")
REPEATED_WEIGHT = 0.4
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_CAPS_WORD = re.compile(r"(?<![A-Za-z])[A-Z]{3,}(?![A-Za-z])")


class LexiconError(ValueError):
    """A mistake in bot/frustration_lexicon.yml, with the file and line."""


@dataclass(frozen=True)
class Entry:
    signal: str  # angry_word | desperate_word | intensifier
    word: str  # as written in the lexicon
    key: str  # folded: NFKC, lower case, katakana as hiragana
    weight: float
    language: str  # ja | en | any
    line: int
    pattern: Optional["re.Pattern[str]"] = None  # en: at a word start
    whole_token: bool = False  # short kana: only a whole word (token or lemma)


def fold(text: str) -> str:
    """What the lexicon compares: NFKC, lower case, hiragana for katakana, straight quotes."""
    return katakana_to_hiragana(normalize(text)).replace("\u2019", "'").replace("\u2018", "'")


def _entry(signal: str, word: str, weight: float, language: str, line: int) -> Entry:
    key = fold(word).strip()
    if language == "en":
        words = r"\s+".join(re.escape(part) for part in key.split())
        end = r"(?![a-z0-9])" if len(key) <= 3 else ""
        return Entry(signal, word, key, weight, language, line, re.compile(r"(?<![a-z0-9])" + words + end))
    short_kana = language == "ja" and len(key) <= 2 and not re.search(r"[\u3400-\u9fff]", key)
    return Entry(signal, word, key, weight, language, line, whole_token=short_kana)


@dataclass(frozen=True)
class FrustrationLexicon:
    entries: Tuple[Entry, ...]
    source: str = str(DEFAULT_LEXICON)

    def matches(self, text: str, tokens: Sequence[Tuple[int, int, str, str]] = ()) -> List[Dict[str, Any]]:
        """Angry and desperate words and intensifiers in `text`. `tokens` are the
        tokenizer's (start, end, text, lemma) for the whole-word and lemma matches (lemmas
        fold spellings: さいあく -> 最悪, 困っ -> 困る)."""
        folded, origin = fold_with_origin(text)
        candidates: List[Tuple[int, int, Entry]] = []
        for entry in self.entries:
            if entry.whole_token:
                continue
            if entry.pattern is not None:
                spans = [(m.start(), m.end()) for m in entry.pattern.finditer(folded)]
            else:
                spans = [(m.start(), m.end()) for m in re.finditer(re.escape(entry.key), folded)]
            # Back to positions in the original text, to compare with the tokens'.
            candidates += [(origin[a], origin[b - 1] + 1, entry) for a, b in spans]
        candidates += self._token_matches(tokens)
        # Where two matches overlap the longest wins ("ずっと待" is desperate, "ずっと" alone
        # an intensifier; さいあく and its lemma 最悪 are one word); each word counts once.
        taken: List[Tuple[int, int]] = []
        found: Dict[str, Entry] = {}
        for start, end, entry in sorted(candidates, key=lambda c: (c[0] - c[1], c[2].whole_token, c[0])):
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.setdefault(entry.key, entry)
        ordered = sorted(found.values(), key=lambda e: (list(SECTIONS.values()).index(e.signal), e.line))
        return [{"signal": e.signal, "text": e.word, "weight": e.weight} for e in ordered]

    def _token_matches(self, tokens: Sequence[Tuple[int, int, str, str]]) -> List[Tuple[int, int, "Entry"]]:
        """Short kana words as whole tokens; Japanese words in the tokens' lemmas, starting
        at a token (so that a word is not pieced together from the ends of two others)."""
        if not tokens:
            return []
        words = [(fold(surface), fold(lemma or surface)) for _, _, surface, lemma in tokens]
        lemmas = ""
        starts: List[int] = []
        for _, lemma in words:
            starts.append(len(lemmas))
            lemmas += lemma
        matches = []
        for entry in self.entries:
            if entry.language != "ja":
                continue
            if entry.whole_token:
                matches += [(tokens[i][0], tokens[i][1], entry) for i, pair in enumerate(words) if entry.key in pair]
                continue
            for m in re.finditer(re.escape(entry.key), lemmas):
                if m.start() not in starts:
                    continue
                first = starts.index(m.start())
                last = max(i for i, s in enumerate(starts) if s < m.end())
                matches.append((tokens[first][0], tokens[last][1], entry))
        return matches


def fold_with_origin(text: str) -> Tuple[str, List[int]]:
    """`fold(text)` and, for each of its characters, the position it came from in `text`."""
    chars: List[str] = []
    origin: List[int] = []
    for position, char in enumerate(text):
        for piece in normalize(char):
            if piece in ("\u3099", "\u309a") and chars:  # half-width ｶﾞ -> ガ
                composed = unicodedata.normalize("NFC", chars[-1] + piece)
                if len(composed) == 1:
                    chars[-1] = composed
                    continue
            chars.append(piece)
            origin.append(position)
    folded = katakana_to_hiragana("".join(chars)).replace("\u2019", "'").replace("\u2018", "'")
    return folded, origin


def shouting(text: str) -> List[Dict[str, Any]]:
    """Capitals, "!!", "？？" / "?!" and characters repeated, one signal per kind."""
    normal = normalize(text)  # lower case: capitals are looked at in NFKC text below
    wide = unicodedata.normalize("NFKC", text)
    signals: List[Dict[str, Any]] = []
    letters = _LATIN_LETTER.findall(wide)
    capitals = [c for c in letters if c.isupper()]
    caps_words = _CAPS_WORD.findall(wide)
    japanese = bool(JAPANESE_RUN.search(wide))
    if letters and len(capitals) >= 4 and len(capitals) / len(letters) >= 0.8 and caps_words:
        # In Japanese text a capitalised name ("LINEで注文") is not shouting: two words are.
        if not japanese or len(caps_words) >= 2:
            signals.append({"signal": "shouting", "text": wide.strip()[:40], "weight": CAPITALS_WEIGHT})
    for pattern, weight in ((_EXCLAMATIONS, EXCLAMATIONS_WEIGHT), (_QUESTIONS, QUESTIONS_WEIGHT)):
        match = pattern.search(normal)
        if match:
            signals.append({"signal": "shouting", "text": match.group(), "weight": weight})
    repeated = _REPEATED.search(normal)
    if repeated:
        signals.append({"signal": "shouting", "text": repeated.group(), "weight": REPEATED_WEIGHT})
    return signals


# --- the lexicon file ----------------------------------------------------------------------
def load_lexicon(path: Path = DEFAULT_LEXICON) -> FrustrationLexicon:
    """Reads and checks the lexicon; every error names the file and the line."""
    try:
        with open(path, encoding="utf-8") as handle:
            root = yaml.compose(handle)
    except OSError as error:
        raise LexiconError(f"{path}: cannot read the lexicon: {error.strerror}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise LexiconError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from error
    return parse_lexicon(root, str(path))


def parse_lexicon(root: Optional[yaml.Node], source: str) -> FrustrationLexicon:
    def fail(node: yaml.Node, where: str, message: str) -> LexiconError:
        return LexiconError(f"{source}:{node.start_mark.line + 1}: {where}: {message}")

    if root is None or not isinstance(root, yaml.MappingNode):
        raise LexiconError(f"{source}:1: expected sections {', '.join(SECTIONS)} (see the comments at the top)")
    sections: Dict[str, Tuple[yaml.Node, yaml.Node]] = {}
    for key, value in root.value:
        name = str(key.value)
        if name == "version":
            if str(value.value) != "1":
                raise fail(value, "version", f"unsupported version {value.value!r} (expected 1)")
            continue
        if name not in SECTIONS:
            raise fail(key, name, f"unknown section (expected one of: {', '.join(SECTIONS)})")
        if name in sections:
            raise fail(key, name, "appears twice")
        sections[name] = (key, value)
    entries: List[Entry] = []
    seen: Dict[str, Entry] = {}
    for section, signal in SECTIONS.items():
        if section not in sections:
            raise LexiconError(f"{source}:1: {section}: missing section (with ja:, en: lists)")
        key_node, languages = sections[section]
        if not isinstance(languages, yaml.MappingNode):
            raise fail(languages, section, "expected lists per language (ja:, en:, any:)")
        count = 0
        for lang_key, words in languages.value:
            language = str(lang_key.value)
            where = f"{section}.{language}"
            if language not in LANGUAGES:
                raise fail(lang_key, where, f"unknown language (expected one of: {', '.join(LANGUAGES)})")
            if not isinstance(words, yaml.SequenceNode):
                raise fail(words, where, "expected a list of words (- word)")
            for item in words.value:
                word, weight = _word_and_weight(item, where, fail)
                entry = _entry(signal, word, weight, language, item.start_mark.line + 1)
                if language == "en" and not re.search(r"[a-z]", entry.key):
                    raise fail(item, where, f"{word!r} has no letters; put emoji and symbols under any:")
                if entry.key in seen:
                    first = seen[entry.key]
                    raise fail(item, where, f"{word!r} is already listed on line {first.line}")
                seen[entry.key] = entry
                entries.append(entry)
                count += 1
        if count == 0:
            raise fail(key_node, section, "add at least one word")
    return FrustrationLexicon(tuple(entries), source)


def _word_and_weight(item: yaml.Node, where: str, fail) -> Tuple[str, float]:
    if isinstance(item, yaml.ScalarNode):
        word, weight = item.value, 1.0
    elif isinstance(item, yaml.MappingNode):
        fields = {str(k.value): v for k, v in item.value}
        unknown = set(fields) - {"word", "weight"}
        if unknown:
            raise fail(item, where, f"unknown field {sorted(unknown)[0]!r} (use word and weight)")
        if "word" not in fields or not isinstance(fields["word"], yaml.ScalarNode):
            raise fail(item, where, "an entry written as {...} needs `word:`")
        word = fields["word"].value
        weight = 1.0
        if "weight" in fields:
            raw = (
                yaml.safe_load(yaml.serialize(fields["weight"]))
                if isinstance(fields["weight"], yaml.ScalarNode)
                else None
            )
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= MAX_WEIGHT:
                raise fail(
                    fields["weight"], where, f"weight must be a number above 0 and at most {MAX_WEIGHT:g}, got {raw!r}"
                )
            weight = float(raw)
    else:
        raise fail(item, where, "each entry must be a word or {word: ..., weight: ...}")
    if not str(word or "").strip():
        raise fail(item, where, "each entry must be a non-empty word or phrase")
    return str(word).strip(), weight


# --- the NLU component -----------------------------------------------------------------
@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class FrustrationSignals(LexiconComponent):
    """Adds `frustration_signals` (angry/desperate words, intensifiers, shouting) to each message."""

    default_lexicon = DEFAULT_LEXICON
    read_lexicon = staticmethod(load_lexicon)

    def signals(self, text: str, tokens: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        spans = [(t.start, t.end, t.text, getattr(t, "lemma", None) or t.text) for t in tokens]
        return self._lexicon.matches(text, spans) + shouting(text)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            tokens = message.get(TOKENS_NAMES[TEXT]) or []
            message.set(SIGNALS_KEY, self.signals(text, tokens), add_to_output=True)
        return messages
