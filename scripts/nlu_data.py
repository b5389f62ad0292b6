"""The NLU training files as product owners edit them: bot/data/nlu/<language>/*.yml.

Reading and appending work on the text, not through a YAML dump, so that comments, order
and the `[text](entity)` markup that product owners wrote stay exactly as they were.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
NLU_DIR = ROOT / "bot" / "data" / "nlu"
LANGUAGES = ("ja", "en")
# Files that hold several intents in one kind of message (many voices; a report with the
# remedy wished in it); a new example goes to the intent's own file instead.
CATCH_ALL_FILES = ("registers.yml", "claims_with_wishes.yml")

_INTENT_LINE = re.compile(r"^(\s*)- intent:\s*(\S+)\s*$")
_EXAMPLE_LINE = re.compile(r"^(\s*)- (.+)$")
_ENTITY_MARKUP = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")


def plain_text(example: str) -> str:
    """An example without its entity markup: `[親子丼](item)が` -> `親子丼が`."""
    return _ENTITY_MARKUP.sub(lambda m: m.group(1) or m.group(2), example)


def normalized(text: str) -> str:
    """What counts as "the same message": NFKC, lower case, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", plain_text(text)).lower().split())


def domain_intents(domain_path: Path = ROOT / "domain.yml") -> List[str]:
    """Intents a customer can type (not the gateway's EXTERNAL_ and relay intents)."""
    domain = yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}
    names = [i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents", [])]
    return [n for n in names if not n.startswith("EXTERNAL_") and n != "relayed_to_agent"]


@dataclass(frozen=True)
class Example:
    text: str  # as written, with entity markup
    intent: str
    path: Path
    line: int  # 1-based


def read_examples(language: str, nlu_dir: Path = NLU_DIR) -> List[Example]:
    """Every example of one language, with the file and line it is on."""
    examples: List[Example] = []
    for path in sorted((nlu_dir / language).glob("*.yml")):
        intent: Optional[str] = None
        in_block = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = _INTENT_LINE.match(line)
            if match:
                intent, in_block = match.group(2), False
                continue
            stripped = line.strip()
            if stripped.startswith("examples:"):
                in_block = intent is not None
                continue
            if stripped.startswith("- ") and not line.startswith("    ") and in_block:
                in_block = False  # the next top-level list item (lookup, synonym...)
            if in_block and intent:
                example = _EXAMPLE_LINE.match(line)
                if example:
                    examples.append(Example(example.group(2).strip(), intent, path, number))
                elif stripped and not stripped.startswith("#"):
                    in_block = False
            if stripped and not line.startswith(" "):
                intent, in_block = None, False
    return examples


def intent_file(language: str, intent: str, nlu_dir: Path = NLU_DIR) -> Path:
    """The file where a new example of `intent` belongs: its own file for this language,
    not the catch-all register file; a new `reviewed.yml` if no file has the intent."""
    owners = [p for p in sorted((nlu_dir / language).glob("*.yml")) if _block_end(p, intent) is not None]
    preferred = [p for p in owners if p.name not in CATCH_ALL_FILES]
    if preferred or owners:
        return (preferred or owners)[0]
    return nlu_dir / language / "reviewed.yml"


def _block_end(path: Path, intent: str) -> Optional[int]:
    """Index (0-based) of the line after the last example of the first `intent` block."""
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        match = _INTENT_LINE.match(line)
        if not match or match.group(2) != intent:
            continue
        end = None
        for j in range(index + 1, len(lines)):
            if _EXAMPLE_LINE.match(lines[j]) and lines[j].startswith("    "):
                end = j + 1
            elif lines[j].strip().startswith("examples:") or not lines[j].strip() or lines[j].strip().startswith("#"):
                continue
            else:
                break
        return end
    return None


def append_examples(path: Path, intent: str, texts: Iterable[str]) -> int:
    """Add examples to the first block of `intent` in `path` (created if missing).
    Returns how many lines were written."""
    texts = list(texts)
    if not texts:
        return 0
    if not path.exists():
        path.write_text(
            '# Examples added from the review queue (make import-review).\nversion: "3.1"\nnlu:\n', encoding="utf-8"
        )
    content = path.read_text(encoding="utf-8")
    lines = content.splitlines()
    end = _block_end(path, intent)
    if end is None:
        block = [f"  - intent: {intent}", "    examples: |"] + [f"      - {t}" for t in texts]
        lines.extend(block)
    else:
        indent = re.match(r"^(\s*)", lines[end - 1]).group(1)
        lines[end:end] = [f"{indent}- {t}" for t in texts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(texts)


def known_texts(language: str, nlu_dir: Path = NLU_DIR) -> Dict[str, Tuple[str, Path, int]]:
    """normalized text -> (intent, file, line) for every example of one language."""
    return {normalized(e.text): (e.intent, e.path, e.line) for e in read_examples(language, nlu_dir)}
