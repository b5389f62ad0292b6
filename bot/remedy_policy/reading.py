"""Reading a typed remedy choice: which remedies the customer names, which they refuse,
and whether they take the request back (`bot/choice_words.yml`).

Why: money moves only on a clear choice. "返金はいらない" names the refund keyword and
means the opposite; "send one instead of a refund" names two remedies and chooses one;
"やっぱりいいです" chooses nothing. A keyword match alone would refund the first and fail
on the second, so each keyword mention is read within its own phrase (up to a phrase
break or the next remedy named): Japanese negation follows the remedy, English negation
precedes it (or follows in a few fixed forms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from bot.components.writing_systems import katakana_to_hiragana, normalize
from bot.remedy_policy.loader import Policy, PolicyError, compose_yaml

WORDS_PATH = Path(__file__).resolve().parent.parent / "choice_words.yml"
LISTS = ("negation_after_ja", "negation_before_en", "negation_after_en", "retraction", "phrase_breaks")


@dataclass(frozen=True)
class ChoiceWords:
    negation_after_ja: Tuple[str, ...]
    negation_before_en: Tuple[str, ...]
    negation_after_en: Tuple[str, ...]
    retraction: Tuple[str, ...]
    phrase_breaks: Tuple[str, ...]


@dataclass(frozen=True)
class RemedyReading:
    chosen: Optional[str]  # the one offered remedy named without negation, if exactly one
    refused: Tuple[str, ...]  # remedies named with a negation
    retracted: bool  # the customer took the request back


def _fold(text: str) -> str:
    return katakana_to_hiragana(normalize(text))


def parse_choice_words(text: str, source: str = "choice_words.yml") -> ChoiceWords:
    """The word lists; an error names the file, the line and the list."""
    root = compose_yaml(text, source)
    if not isinstance(root, yaml.MappingNode):
        raise PolicyError(f"{source}:1: expected the lists {', '.join(LISTS)}")
    found: Dict[str, Tuple[str, ...]] = {}
    for key, value in root.value:
        name = str(key.value)
        where = f"{source}:{key.start_mark.line + 1}: {name}"
        if name == "version":
            continue
        if name not in LISTS:
            raise PolicyError(f"{where}: unknown list (expected one of: {', '.join(LISTS)})")
        if not isinstance(value, yaml.SequenceNode) or not all(
            isinstance(v, yaml.ScalarNode) and str(v.value).strip() for v in value.value
        ):
            raise PolicyError(f"{where}: expected a list of words, e.g. [いらな, 不要]")
        found[name] = tuple(_fold(str(v.value)) for v in value.value)
    missing = [n for n in LISTS if n not in found]
    if missing:
        raise PolicyError(f"{source}:1: missing {', '.join(missing)}")
    return ChoiceWords(**found)


@lru_cache(maxsize=1)
def choice_words(path: Optional[str] = None) -> ChoiceWords:
    chosen = Path(path) if path else WORDS_PATH
    return parse_choice_words(chosen.read_text(encoding="utf-8"), str(chosen))


def _has_en(text: str, words: Sequence[str]) -> bool:
    for word in words:
        # word boundaries, so "no" is not found in "now"; "n't" is a suffix
        pattern = re.escape(word) if word.startswith("n'") else rf"(?<![a-z']){re.escape(word)}(?![a-z])"
        if re.search(pattern, text):
            return True
    return False


def read_remedy(
    policy: Policy, text: str, offered: Sequence[str], words: Optional[ChoiceWords] = None, by_number: bool = True
) -> RemedyReading:
    """What a typed answer to "which remedy?" says about the `offered` remedies (with
    `by_number`, "2" chooses the second; off for messages that answered another question)."""
    words = words or choice_words()
    said = _fold(text)
    retracted = any(w in said for w in words.retraction if not w.isascii()) or _has_en(
        said, [w for w in words.retraction if w.isascii()]
    )
    mentions: List[Tuple[int, int, str]] = []
    for kind, rule in policy.remedies.items():
        for word in {_fold(w) for lang in ("ja", "en") for w in rule.keywords.get(lang, ())}:
            # English keywords as whole words ("fee" is not in "feel"); Japanese anywhere
            pattern = rf"(?<![a-z]){re.escape(word)}" if word.isascii() else re.escape(word)
            for match in re.finditer(pattern, said):
                mentions.append((match.start(), match.end(), kind))
    # overlapping keywords ("配送料" and "送料"): keep the longest
    mentions.sort(key=lambda m: (m[0], -(m[1] - m[0])))
    kept: List[Tuple[int, int, str]] = []
    for m in mentions:
        if kept and m[0] < kept[-1][1]:
            continue
        kept.append(m)
    breaks = sorted({i for b in words.phrase_breaks for i in _positions(said, b)})
    negated: Dict[str, bool] = {}
    for n, (start, end, kind) in enumerate(kept):
        previous_end = kept[n - 1][1] if n else 0
        next_start = kept[n + 1][0] if n + 1 < len(kept) else len(said)
        phrase_start = max([previous_end] + [b for b in breaks if b <= start])
        phrase_end = min([next_start] + [b for b in breaks if b >= end])
        before, after = said[phrase_start:start], said[end:phrase_end]
        is_negated = (
            any(w in after for w in words.negation_after_ja)
            or _has_en(before, words.negation_before_en)
            or _has_en(after, words.negation_after_en)
        )
        # a remedy named twice counts as refused if either mention is negated
        negated[kind] = negated.get(kind, False) or is_negated
    refused = tuple(k for k, no in negated.items() if no)
    positive = [k for k, no in negated.items() if not no and k in offered]
    digits = [c for c in said if c.isdigit()]
    if by_number and not kept and len(digits) == 1 and 1 <= int(digits[0]) <= len(offered):
        positive = [offered[int(digits[0]) - 1]]
    chosen = positive[0] if len(positive) == 1 and not retracted else None
    return RemedyReading(chosen=chosen, refused=refused, retracted=retracted)


def _positions(text: str, word: str) -> List[int]:
    return [m.start() for m in re.finditer(re.escape(word), text)] if word else []
