"""Masking a customer's details in text that leaves the conversation (the review CSV, the
quality audit's findings and reports): phone numbers, e-mail addresses, known names."""

from __future__ import annotations

import re
from typing import Iterable

_PHONE = re.compile(r"(?:\+?\d[\d\-‐－ー ()（）]{8,}\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """Masks phone numbers (10 digits or more), e-mail addresses and the given names (and
    each part of them, family and given name alike, of two characters or more)."""
    text = _EMAIL.sub("<email>", text)
    text = _PHONE.sub(lambda m: "<phone>" if sum(c.isdigit() for c in m.group()) >= 10 else m.group(), text)
    for name in names:
        for part in {name, *name.split()}:
            if len(part) >= 2:
                text = text.replace(part, "<name>")
    return text
