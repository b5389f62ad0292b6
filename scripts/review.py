"""The review queue: customer messages the bot handled badly, from the tracker store.

    make review                       -> results/review/review.csv
    .venv-bot/bin/python -m scripts.review --endpoints var/endpoints.yml --out FILE

Reads the conversations Rasa keeps (the tracker store of the endpoints file: Redis or SQL,
see scripts/endpoints.py), not the logs, and lists each message that was
  low_confidence       the intent's confidence was below --min-confidence,
  fallback             the NLU gave up (nlu_fallback) or the bot asked to rephrase,
  not_understood       the bot could not use the answer (an order, item or remedy it did
                       not recognise: its `*_not_understood` responses),
  rephrased            the customer said nearly the same thing again right after,
  frustration_handoff  it led to a handoff for frustration or misunderstanding.
One row per message: id, pseudonymised conversation, language, the message, the predicted
intent and its confidence, the reasons, the time, and an empty `correct_intent` for the
product owner. Conversation ids are keyed hashes (never the LINE user id); phone numbers,
e-mail addresses and the customer's name are masked in the text. Messages that are
already training examples are left out, and labels in an existing output file are kept.
The CSV is UTF-8 with a byte-order mark, so spreadsheet programs show Japanese correctly.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import difflib
import hashlib
import hmac
import os
import re
import secrets
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from bot.components.writing_systems import detect_language
from bot.privacy import scrub
from contracts.review import REVIEW_COLUMNS
from scripts import nlu_data

ROOT = Path(__file__).resolve().parent.parent


COLUMNS = list(REVIEW_COLUMNS)
DEFAULT_OUT = ROOT / "results" / "review" / "review.csv"
KEY_FILE = ROOT / "var" / "review-key"
# Bot actions that mean "I did not understand": the message before them was misread.
FALLBACK_ACTIONS = {
    "action_clarify_or_handoff",
    "action_default_fallback",
    "utter_clarify",
    "action_default_ask_affirmation",
    "utter_ask_rephrase",
}
# Responses that say "I could not use what you wrote" (in the claim form, for instance).
NOT_UNDERSTOOD_RESPONSE = re.compile(r"^utter_(clarify|\w+_not_understood)$")
HANDOFF_REASONS_TO_REVIEW = {"frustration", "repeated_misunderstanding", "all_remedies_refused"}
REPHRASE_SIMILARITY = 0.6
REPHRASE_WITHIN_S = 180


@dataclass
class ReviewRow:
    id: str
    conversation: str
    language: str
    message: str
    predicted_intent: str
    confidence: float
    reason: str
    timestamp: str
    correct_intent: str = ""


def pseudonym_key() -> bytes:
    """REVIEW_PSEUDONYM_KEY, or a key kept in var/ (made once): the same customer gets the
    same pseudonym in every review file, and nobody can turn it back without the key."""
    if os.environ.get("REVIEW_PSEUDONYM_KEY"):
        return os.environ["REVIEW_PSEUDONYM_KEY"].encode()
    if not KEY_FILE.exists():
        KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        KEY_FILE.write_text(secrets.token_hex(32))
        KEY_FILE.chmod(0o600)
    return KEY_FILE.read_text().strip().encode()


def pseudonym(sender_id: str, key: bytes) -> str:
    return "c-" + hmac.new(key, sender_id.encode(), hashlib.sha256).hexdigest()[:12]


def _similar(a: str, b: str) -> bool:
    a, b = nlu_data.normalized(a), nlu_data.normalized(b)
    return bool(a and b) and difflib.SequenceMatcher(None, a, b).ratio() >= REPHRASE_SIMILARITY


def _predicted(parse: Dict[str, Any]) -> tuple:
    """The intent the classifier meant, and its confidence; behind nlu_fallback, its best guess."""
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name") or "", float(intent.get("confidence") or 0.0)
    if name == "nlu_fallback":
        ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
        if ranking:
            return ranking[0]["name"], float(ranking[0].get("confidence") or 0.0), True
        return name, confidence, True
    return name, confidence, False


def review_events(
    sender_id: str, events: Sequence[Dict[str, Any]], key: bytes, min_confidence: float
) -> List[ReviewRow]:
    """The rows of one conversation (its events as Rasa stores them)."""
    users: List[Dict[str, Any]] = []  # {"event", "reasons", "language"}
    language = None
    names: List[str] = []
    for event in events:
        kind = event.get("event")
        if kind == "slot":
            if event.get("name") == "language" and event.get("value"):
                language = event["value"]
            elif event.get("name") == "customer_name" and event.get("value"):
                names.append(str(event["value"]))
            elif event.get("name") == "handoff_reason" and event.get("value") in HANDOFF_REASONS_TO_REVIEW and users:
                users[-1]["reasons"].add("frustration_handoff")
        elif kind == "action" and event.get("name") in FALLBACK_ACTIONS and users:
            users[-1]["reasons"].add("fallback")
        elif (
            kind == "bot"
            and users
            and NOT_UNDERSTOOD_RESPONSE.match(str((event.get("metadata") or {}).get("utter_action") or ""))
        ):
            users[-1]["reasons"].add("not_understood")
        elif kind == "user":
            text = (event.get("text") or "").strip()
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
            # Buttons ("/intent{...}"), gateway triggers and messages to an agent are not NLU.
            if (
                not text
                or text.startswith("/")
                or text.startswith("EXTERNAL:")
                or intent == "relayed_to_agent"
                or intent.startswith("EXTERNAL_")
            ):
                continue
            if (
                users
                and _similar(users[-1]["event"].get("text") or "", text)
                and float(event.get("timestamp") or 0) - float(users[-1]["event"].get("timestamp") or 0)
                <= REPHRASE_WITHIN_S
            ):
                users[-1]["reasons"].add("rephrased")
            reasons = set()
            name, confidence, fell_back = _predicted(event.get("parse_data") or {})
            if fell_back:
                reasons.add("fallback")
            elif confidence < min_confidence:
                reasons.add("low_confidence")
            users.append({"event": event, "reasons": reasons, "language": detect_language(text) or language or ""})
    conversation = pseudonym(sender_id, key)
    rows = []
    for user in users:
        if not user["reasons"]:
            continue
        event = user["event"]
        name, confidence, _ = _predicted(event.get("parse_data") or {})
        stamp = datetime.fromtimestamp(float(event.get("timestamp") or 0), timezone.utc)
        message = scrub(event["text"].strip(), names)
        row_id = hashlib.sha256(f"{conversation}|{event.get('timestamp')}|{message}".encode()).hexdigest()[:12]
        rows.append(
            ReviewRow(
                row_id,
                conversation,
                user["language"],
                message,
                name,
                round(confidence, 3),
                "+".join(sorted(user["reasons"])),
                stamp.isoformat(timespec="seconds"),
            )
        )
    return rows


async def _conversations(endpoints: Path):
    """(sender id, events) for every conversation in the tracker store of `endpoints`."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import read_endpoint_config

    # The file also names the action server through ${ACTION_SERVER_URL} and its secret
    # ${ACTION_SERVER_TOKEN}; neither is needed here, but Rasa stops on an unset variable.
    os.environ.setdefault("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook")
    os.environ.setdefault("ACTION_SERVER_TOKEN", "")
    config = read_endpoint_config(str(endpoints), "tracker_store")
    if config is None:
        raise SystemExit(
            f"review: {endpoints} has no tracker_store: conversations are only kept in memory "
            "(make run writes var/endpoints.yml with a persistent store)"
        )
    store = TrackerStore.create(config, Domain.load(str(ROOT / "domain.yml")))
    for sender_id in await store.keys():
        tracker = await store.retrieve_full_tracker(sender_id)
        if tracker is not None:
            yield sender_id, [event.as_dict() for event in tracker.events]


def read_rows(path: Path) -> List[Dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: Iterable[ReviewRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    tmp.replace(path)


async def build_queue(endpoints: Path, min_confidence: float, nlu_dir: Path = nlu_data.NLU_DIR) -> List[ReviewRow]:
    key = pseudonym_key()
    trained = {lang: nlu_data.known_texts(lang, nlu_dir) for lang in nlu_data.LANGUAGES}
    rows: Dict[str, ReviewRow] = {}
    async for sender_id, events in _conversations(endpoints):
        for row in review_events(sender_id, events, key, min_confidence):
            if nlu_data.normalized(row.message) in trained.get(row.language, {}):
                continue  # already a training example (imported earlier)
            rows[row.id] = row
    return sorted(rows.values(), key=lambda r: r.timestamp)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--endpoints",
        type=Path,
        default=ROOT / "var" / "endpoints.yml",
        help="Rasa endpoints file naming the tracker store (default: what make run uses)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--min-confidence", type=float, default=0.6)
    args = parser.parse_args(argv)
    if not args.endpoints.exists():
        print(
            f"review: {args.endpoints} does not exist; start the assistant once with `make run` or pass --endpoints",
            file=sys.stderr,
        )
        return 1
    rows = asyncio.run(build_queue(args.endpoints, args.min_confidence))
    labels = {r["id"]: r.get("correct_intent", "") for r in read_rows(args.out)} if args.out.exists() else {}
    for row in rows:
        row.correct_intent = labels.get(row.id, "")
    write_rows(args.out, rows)
    by_reason: Dict[str, int] = {}
    for row in rows:
        for reason in row.reason.split("+"):
            by_reason[reason] = by_reason.get(reason, 0) + 1
    summary = ", ".join(f"{n} {r}" for r, n in sorted(by_reason.items())) or "nothing to review"
    print(f"review: {len(rows)} messages to label in {args.out} ({summary}).")
    print("review: fill in correct_intent (an intent of domain.yml), then: make import-review FILE=" + str(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
