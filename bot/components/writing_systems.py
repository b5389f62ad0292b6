"""Character-script helpers shared by the NLU components and the actions."""

from __future__ import annotations

import re
import unicodedata

# Hiragana, katakana (incl. half-width), CJK ideographs, the long-vowel mark and iteration marks.
JAPANESE_CHARS = (
    r"\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶー"
)
JAPANESE_RUN = re.compile(f"[{JAPANESE_CHARS}]+")
_HAS_JAPANESE = re.compile(f"[{JAPANESE_CHARS}]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII, half-width kana to full) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def katakana_to_hiragana(text: str) -> str:
    """So that ポテト and ぽてと compare equal."""
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def detect_language(text: str) -> str | None:
    """'ja' if the text has any Japanese, 'en' if it is clearly English, else None.

    A lone short Latin token ("OK", "no", "1001") says nothing about the customer's
    language, so it gives None and the conversation keeps the language it had.
    """
    if _HAS_JAPANESE.search(text):
        return "ja"
    words = _LATIN_WORD.findall(normalize(text))
    if len(words) >= 2 or (words and len(words[0]) >= 5):
        return "en"
    return None
