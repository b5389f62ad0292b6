"""Two problems in one message: the one read first is handled, the other is said and
offered after it (「別卵の件から伺います。配達の遅れはその後で伺います」).

The words that tell of each problem are in bot/problem_words.yml.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from bot.components.writing_systems import katakana_to_hiragana, normalize
from bot.remedy_policy.loader import LANGUAGES, _Reader, compose_yaml, load_owner_file

WORDS_PATH = Path(__file__).resolve().parents[1] / "problem_words.yml"
PROBLEMS = ("missing_item", "wrong_item", "damaged_item", "late_delivery")
# The intent whose rule starts a claim for each problem (a button sends it).
INTENT_OF = {
    "missing_item": "report_missing_item",
    "wrong_item": "report_wrong_item",
    "damaged_item": "report_damaged_item",
    "late_delivery": "report_late_delivery",
}


@dataclass(frozen=True)
class ProblemWords:
    words: Mapping[str, Tuple[str, ...]]  # problem -> folded words of both languages

    def told(self, text: str) -> List[str]:
        """The problems the text tells of, in the order they appear in it."""
        folded = _fold(text)
        found = []
        for problem, words in self.words.items():
            positions = [m.start() for w in words for m in [_pattern(w).search(folded)] if m]
            if positions:
                found.append((min(positions), problem))
        return [problem for _, problem in sorted(found)]


@lru_cache(maxsize=1024)
def _pattern(word: str) -> "re.Pattern[str]":
    # English words whole ("late" is not in "chocolate"); Japanese has no spaces to match
    return re.compile(rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word))


def _fold(text: str) -> str:
    return katakana_to_hiragana(normalize(text)).lower()


def parse_problem_words(text: str, source: str = "problem_words.yml") -> ProblemWords:
    root = compose_yaml(text, source)
    r = _Reader(source)
    top = r.mapping(root, "")
    r.no_unknown(top, "", ("version", "problems"))
    if r.scalar(r.required(top, root, "", "version"), "version") != 1:
        raise r.fail(top["version"][1], "version", "unsupported version (expected 1)")
    words: Dict[str, Tuple[str, ...]] = {}
    node = r.required(top, root, "", "problems")
    for problem, (key, value) in r.mapping(node, "problems").items():
        if problem not in PROBLEMS:
            raise r.fail(key, f"problems.{problem}", f"unknown problem (expected one of: {', '.join(PROBLEMS)})")
        entries = r.mapping(value, f"problems.{problem}")
        r.no_unknown(entries, f"problems.{problem}", LANGUAGES)
        listed: List[str] = []
        for language in LANGUAGES:
            if language in entries:
                listed += [_fold(w) for w in r.string_list(entries[language][1], f"problems.{problem}.{language}")]
        words[problem] = tuple(listed)
    return ProblemWords(words)


def load_problem_words(path: Optional[os.PathLike] = None) -> ProblemWords:
    return load_owner_file(parse_problem_words, path, "PROBLEM_WORDS_PATH", WORDS_PATH)


@lru_cache(maxsize=1)
def problem_words() -> ProblemWords:
    return load_problem_words()


def other_problem(text: str, current: Optional[str]) -> Optional[str]:
    """The first problem the text tells of besides the one being handled, if any."""
    if current not in PROBLEMS:
        return None
    return next((p for p in problem_words().told(text) if p != current), None)
