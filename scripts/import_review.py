"""Labelled review rows into the training data.

    make import-review FILE=results/review/review.csv
    .venv-bot/bin/python -m scripts.import_review --file FILE [--dry-run]

Reads the review file (the CSV of `make review`, or YAML: a list of mappings with the same
keys) and, for every row with a `correct_intent`, appends `message` as an example of that
intent to the intent's own file for the row's language (bot/data/nlu/<language>/...).
Checks everything first and writes nothing if a row is wrong; each error names the file,
the row and what to do:
  - an intent that is not in domain.yml,
  - a language other than ja / en, or an empty message,
  - a message that is already an example of ANOTHER intent (two labels for one message
    would teach the model nothing; fix the older one by hand if it was wrong).
A message that is already an example of the same intent is skipped (no duplicates), so
importing the same file twice changes nothing.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from scripts import nlu_data
from scripts.review import read_rows

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Labelled:
    row: int  # as a spreadsheet shows it: the header is row 1
    language: str
    message: str
    intent: str


class ImportError_(Exception):
    """A review file that cannot be imported; the message lists every problem."""


def load_rows(path: Path) -> List[Tuple[int, Dict[str, str]]]:
    if path.suffix in (".yml", ".yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(data, list):
            raise ImportError_(f"{path}: expected a list of rows (mappings with message, language, correct_intent)")
        return [
            (index + 1, {k: "" if v is None else str(v) for k, v in (row or {}).items()})
            for index, row in enumerate(data)
        ]
    return [(index + 2, row) for index, row in enumerate(read_rows(path))]


def check(
    path: Path, nlu_dir: Path = nlu_data.NLU_DIR, domain_path: Path = nlu_data.ROOT / "domain.yml"
) -> Tuple[List[Labelled], List[str], int]:
    """(rows to add, errors, rows without a label)."""
    intents = nlu_data.domain_intents(domain_path)
    known = {lang: nlu_data.known_texts(lang, nlu_dir) for lang in nlu_data.LANGUAGES}
    unit = "item" if path.suffix in (".yml", ".yaml") else "row"
    labelled: List[Labelled] = []
    errors: List[str] = []
    unlabelled = 0
    seen: Dict[Tuple[str, str], Labelled] = {}
    for number, row in load_rows(path):
        intent = (row.get("correct_intent") or "").strip()
        if not intent:
            unlabelled += 1
            continue
        where = f"{path} {unit} {number}"
        message = " ".join((row.get("message") or "").split())
        language = (row.get("language") or "").strip()
        if intent not in intents:
            close = difflib.get_close_matches(intent, intents, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            errors.append(f"{where}: unknown intent {intent!r}; {hint}use one of: {', '.join(intents)}")
            continue
        if language not in nlu_data.LANGUAGES:
            errors.append(f"{where}: language must be ja or en, not {language!r}")
            continue
        if not message:
            errors.append(f"{where}: the message is empty")
            continue
        key = nlu_data.normalized(message)
        existing = known[language].get(key)
        if existing and existing[0] != intent:
            other, other_path, line = existing
            errors.append(
                f"{where}: {message!r} is already an example of {other!r} in "
                f"{other_path}:{line}; label it {other!r} or change that line first"
            )
            continue
        earlier = seen.get((language, key))
        if earlier and earlier.intent != intent:
            errors.append(f"{where}: the same message is labelled {earlier.intent!r} in row {earlier.row}")
            continue
        if existing or earlier:
            continue  # already there
        item = Labelled(number, language, message, intent)
        seen[(language, key)] = item
        labelled.append(item)
    return labelled, errors, unlabelled


def import_file(
    path: Path,
    nlu_dir: Path = nlu_data.NLU_DIR,
    dry_run: bool = False,
    domain_path: Path = nlu_data.ROOT / "domain.yml",
) -> Dict[Path, int]:
    """Append the labelled rows; returns lines added per file. Raises ImportError_ on any error."""
    labelled, errors, _ = check(path, nlu_dir, domain_path)
    if errors:
        raise ImportError_("\n".join(errors))
    return write_examples(labelled, nlu_dir, dry_run)


def write_examples(
    labelled: List[Labelled], nlu_dir: Path = nlu_data.NLU_DIR, dry_run: bool = False
) -> Dict[Path, int]:
    """Append checked rows to their intents' files; returns lines added per file."""
    groups: Dict[Tuple[Path, str], List[str]] = {}
    for item in labelled:
        target = nlu_data.intent_file(item.language, item.intent, nlu_dir)
        groups.setdefault((target, item.intent), []).append(_escape(item.message))
    added: Dict[Path, int] = {}
    for (target, intent), texts in groups.items():
        if not dry_run:
            nlu_data.append_examples(target, intent, texts)
        added[target] = added.get(target, 0) + len(texts)
    return added


def _escape(message: str) -> str:
    """Square brackets would read as entity markup; a customer's brackets are plain text."""
    return message.replace("[", "［").replace("]", "］")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--nlu-dir", type=Path, default=nlu_data.NLU_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help="check and show what would be added")
    args = parser.parse_args(argv)
    if not args.file.exists():
        print(
            f"import-review: {args.file} does not exist (make review writes results/review/review.csv)", file=sys.stderr
        )
        return 1
    try:
        labelled, errors, unlabelled = check(args.file, args.nlu_dir)
    except ImportError_ as error:
        errors = [str(error)]
    if errors:
        print("import-review: nothing imported, fix these first:\n" + "\n".join(errors), file=sys.stderr)
        return 1
    added = write_examples(labelled, args.nlu_dir, args.dry_run)
    verb = "would add" if args.dry_run else "added"
    for target, count in sorted(added.items()):
        shown = target.relative_to(nlu_data.ROOT) if target.is_relative_to(nlu_data.ROOT) else target
        print(f"import-review: {verb} {count} example(s) to {shown}")
    if not added:
        print("import-review: nothing new to add (rows without a label, or already in the training data)")
    print(f"import-review: {unlabelled} row(s) without a label were left out.")
    if added and not args.dry_run:
        print("import-review: next, `make train` and `make evaluate`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
