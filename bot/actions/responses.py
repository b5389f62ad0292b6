"""Reading texts from the domain's responses, for labels an action builds itself."""

from __future__ import annotations

from typing import Any, Dict


def response_text(domain: Dict[str, Any], name: str, language: str) -> str:
    """The text of response `name` in `language` (Japanese variation by default)."""
    variations = domain.get("responses", {}).get(name, [])
    for variation in variations:
        for condition in variation.get("condition") or []:
            if condition.get("name") == "language" and condition.get("value") == language:
                return variation.get("text", "")
    default = next((v for v in variations if not v.get("condition")), {})
    return default.get("text", name)
