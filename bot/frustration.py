"""The frustration score: a number with its reasons, computed after every customer message.

A pure function over the conversation's events in their dict form (what rasa-sdk's
`Tracker.events` holds; in the Rasa process `[e.as_dict() for e in tracker.events]`), so
the Rasa policy that decides the handoff (bot/components/frustration_policy.py) and the
handoff action that explains it to the agent (bot/actions/handoff.py) compute the same
thing. The weights and the threshold come from the `frustration:` section of
bot/remedy_policy.yml (`FrustrationSettings`).

Signals:
- message signals, for the latest customer message and, decayed, the ones before it (so
  the trend counts): the classifier's confidence in `express_frustration` and
  `request_human` (from the intent ranking, also when another intent won); angry and
  desperate words and shouting (`frustration_signals`, added to the parse data by
  bot/components/frustration_signals.py), multiplied by intensifiers next to them;
- conversation signals: the latest message repeats earlier ones; misunderstood messages
  in a row; every remedy offered was refused; time since the first message without a
  remedy applied.

Only events since the last session start, restart or resumption (an agent handing the
conversation back) count; intents the gateway triggers when an agent acts are not the
customer's words, and messages taken back (rewind/undo) do not count.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from bot.escalation import UNCLEAR_INTENTS
from bot.remedy_policy.types import FrustrationSettings

# Events after which the conversation starts afresh.
BOUNDARY_EVENTS = ("session_started", "restart", "resume")
# The bot's answers that say it did not understand the message before them.
NOT_UNDERSTOOD_RESPONSES = (
    "utter_clarify",
    "utter_out_of_scope",
    "utter_order_not_understood",
    "utter_item_not_understood",
    "utter_remedy_not_understood",
)
# The bot's answers that mean a remedy was applied: progress.
PROGRESS_RESPONSES = ("utter_remedy_applied", "utter_remedy_already_applied")
# Below this the classifier is only guessing; such confidences are left out as noise.
MIN_CONFIDENCE = 0.1


@dataclass(frozen=True)
class Assessment:
    score: float
    threshold: float
    reasons: List[Dict[str, Any]] = field(default_factory=list)  # {"signal", "weight", "detail"}
    hand_off: bool = False

    def as_dict(self) -> Dict[str, Any]:
        return {"score": self.score, "threshold": self.threshold, "reasons": list(self.reasons)}

    @property
    def signals(self) -> List[str]:
        return [r["signal"] for r in self.reasons]


def assess(
    events: Sequence[Mapping[str, Any]],
    settings: Optional[FrustrationSettings] = None,
    now: Optional[float] = None,
) -> Assessment:
    """The frustration score of the conversation so far.

    `now` is a Unix time; by default the time of the latest customer message (the moment
    the score is for), which keeps the score the same wherever it is computed.
    """
    settings = settings or FrustrationSettings()
    session = current_session(events)
    turns = customer_turns(session)
    reasons: List[Dict[str, Any]] = []
    if turns:
        reasons += _message_signals(turns, settings)
        reasons += _repeats(turns, settings)
        reasons += _fallbacks(turns, settings)
    reasons += _refusals(session, settings)
    reasons += _no_progress(session, settings, now)
    reasons = [r for r in reasons if r["weight"] > 0]
    score = round(sum(r["weight"] for r in reasons), 3)
    return Assessment(
        score=score,
        threshold=settings.threshold,
        reasons=sorted(reasons, key=lambda r: -r["weight"]),
        hand_off=score >= settings.threshold,
    )


# --- the conversation ------------------------------------------------------------------
def current_session(events: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The events since the last session start, restart or resumption, without the ones
    taken back (`rewind` takes back the latest customer message, `undo` the latest action)."""
    session: List[Mapping[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind in BOUNDARY_EVENTS:
            session = []
        elif kind in ("rewind", "undo"):
            target = "user" if kind == "rewind" else "action"
            while session and session[-1].get("event") != target:
                session.pop()
            if session:
                session.pop()
        else:
            session.append(event)
    return session


@dataclass
class Turn:
    """One customer message and what the bot answered to it."""

    text: str
    parse_data: Mapping[str, Any]
    timestamp: Optional[float]
    bot_responses: List[str] = field(default_factory=list)

    @property
    def intent(self) -> Optional[str]:
        return (self.parse_data.get("intent") or {}).get("name")

    @property
    def is_payload(self) -> bool:
        """A button tap ("/inform{...}"): a choice, not the customer's own words."""
        return self.text.startswith("/")

    def confidence(self, intent: str) -> float:
        if self.parse_data.get("unfamiliar_input"):
            return 0.0  # no word the classifier could know: its ranking is a guess
        for ranked in self.parse_data.get("intent_ranking") or []:
            if ranked.get("name") == intent:
                return float(ranked.get("confidence") or 0.0)
        top = self.parse_data.get("intent") or {}
        return float(top.get("confidence") or 0.0) if top.get("name") == intent else 0.0


def _is_external(event: Mapping[str, Any]) -> bool:
    return bool((event.get("metadata") or {}).get("is_external")) or str(event.get("text") or "").startswith(
        "EXTERNAL: "
    )


def customer_turns(session: Sequence[Mapping[str, Any]]) -> List[Turn]:
    turns: List[Turn] = []
    for event in session:
        kind = event.get("event")
        if kind == "user":
            if _is_external(event):
                continue  # an intent the gateway triggered (an agent acted), not the customer's words
            turns.append(
                Turn(
                    text=str(event.get("text") or ""),
                    parse_data=event.get("parse_data") or {},
                    timestamp=event.get("timestamp"),
                )
            )
        elif kind == "bot" and turns:
            response = (event.get("metadata") or {}).get("utter_action")
            if response:
                turns[-1].bot_responses.append(response)
    return turns


# --- message signals -------------------------------------------------------------------
def _message_signals(turns: Sequence[Turn], settings: FrustrationSettings) -> List[Dict[str, Any]]:
    """Intents, words and shouting of the latest messages; earlier ones decayed."""
    totals: Dict[str, float] = {}
    details: Dict[str, List[str]] = {}
    for age, turn in enumerate(reversed(turns[-settings.decay_turns :])):
        factor = settings.decay**age
        where = "" if age == 0 else f" ({age} message(s) ago, x{factor:g})"
        for intent in ("express_frustration", "request_human"):
            confidence = turn.confidence(intent)
            if confidence >= MIN_CONFIDENCE:
                _add(
                    totals,
                    details,
                    intent,
                    settings.weight(intent) * confidence * factor,
                    f"confidence {confidence:.2f}{where}",
                )
        for name, value, words in _lexicon_scores(turn.parse_data.get("frustration_signals") or [], settings):
            _add(totals, details, name, value * factor, ", ".join(words) + where)
    return [{"signal": name, "weight": round(totals[name], 3), "detail": "; ".join(details[name])} for name in totals]


def _lexicon_scores(signals: Sequence[Mapping[str, Any]], settings: FrustrationSettings):
    """(signal, value, words) for one message: word and shouting weights, multiplied by the
    intensifiers when there is something for them to intensify."""
    found: Dict[str, List[Mapping[str, Any]]] = {}
    for signal in signals:
        found.setdefault(str(signal.get("signal")), []).append(signal)
    intensifiers = found.get("intensifier", [])
    strong = [s for s in ("angry_word", "desperate_word", "shouting") if found.get(s)]
    multiplier = 1.0
    if intensifiers and strong:
        multiplier = settings.intensifier ** min(len(intensifiers), settings.max_intensifiers)
    results = []
    for name in strong:
        # Several words of a kind add up, but a long rant counts at most twice.
        relative = min(2.0, sum(float(s.get("weight", 1.0)) for s in found[name]))
        words = [str(s.get("text")) for s in found[name]]
        if multiplier > 1:
            words.append("x" + f"{multiplier:g} " + "/".join(str(s.get("text")) for s in intensifiers))
        results.append((name, settings.weight(name) * relative * multiplier, words))
    return results


def _add(totals: Dict[str, float], details: Dict[str, List[str]], name: str, value: float, detail: str) -> None:
    totals[name] = totals.get(name, 0.0) + value
    details.setdefault(name, []).append(detail)


# --- conversation signals --------------------------------------------------------------
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def comparable(text: str) -> str:
    """Text as compared for repeats: NFKC, lower case, katakana as hiragana, no punctuation,
    spaces or emoji."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)
    return _NOT_WORD.sub("", text)


def similarity(a: str, b: str) -> float:
    """0-1: how much two (comparable) messages are the same message. A message that holds
    nearly all of a shorter one ("卵が入ってない" -> "だから卵が入ってないって") counts
    like a repeat too, as long as it is not much longer."""
    if not a or not b:
        return 0.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    ratio = matcher.ratio()
    shorter, longer = sorted((len(a), len(b)))
    if longer <= 2.5 * shorter:
        covered = sum(block.size for block in matcher.get_matching_blocks()) / shorter
        ratio = max(ratio, covered * 0.95)
    return ratio


def _repeats(turns: Sequence[Turn], settings: FrustrationSettings) -> List[Dict[str, Any]]:
    latest = turns[-1]
    if latest.is_payload:
        return []
    text = comparable(latest.text)
    if len(text) < settings.repeat_min_length:
        return []
    similar = []
    for turn in turns[:-1]:
        if turn.is_payload:
            continue
        earlier = comparable(turn.text)
        if len(earlier) >= settings.repeat_min_length:
            value = similarity(text, earlier)
            if value >= settings.repeat_similarity:
                similar.append((value, turn.text))
    if not similar:
        return []
    count = min(len(similar), settings.max_repeats)
    best = max(similar)
    return [
        {
            "signal": "repeated_message",
            "weight": round(settings.weight("repeated_message") * count, 3),
            "detail": f"{len(similar)} earlier message(s) said the same (similarity {best[0]:.2f}: {best[1][:60]!r})",
        }
    ]


def _unclear(turn: Turn) -> bool:
    return turn.intent in UNCLEAR_INTENTS or any(r in NOT_UNDERSTOOD_RESPONSES for r in turn.bot_responses)


def _fallbacks(turns: Sequence[Turn], settings: FrustrationSettings) -> List[Dict[str, Any]]:
    """Misunderstood messages in a row, up to the latest (for the latest message only its
    intent is known yet; for earlier ones also whether the bot said it did not understand)."""
    count = 0
    for turn in reversed(turns):
        if not _unclear(turn):
            break
        count += 1
    counted = count - settings.fallback_count + 1
    if counted <= 0:
        return []
    return [
        {
            "signal": "consecutive_fallbacks",
            "weight": round(settings.weight("consecutive_fallbacks") * counted, 3),
            "detail": f"{count} messages in a row not understood or off-topic",
        }
    ]


def _slots_after_first_message(session: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Slot values set during the session. The values carried over at session start come
    before the first customer message and belong to an earlier claim."""
    slots: Dict[str, Any] = {}
    seen_user = False
    for event in session:
        if event.get("event") == "user":
            seen_user = True
        elif event.get("event") == "slot" and seen_user:
            slots[event.get("name")] = event.get("value")
    return slots


def _refusals(session: Sequence[Mapping[str, Any]], settings: FrustrationSettings) -> List[Dict[str, Any]]:
    slots = _slots_after_first_message(session)
    offered = [o.get("kind") for o in ((slots.get("offers") or {}).get("remedies") or []) if isinstance(o, dict)]
    refused = slots.get("refused_remedies") or []
    if not offered or not set(offered) <= set(refused):
        return []
    return [
        {
            "signal": "all_remedies_refused",
            "weight": settings.weight("all_remedies_refused"),
            "detail": "refused " + ", ".join(offered),
        }
    ]


def _no_progress(
    session: Sequence[Mapping[str, Any]], settings: FrustrationSettings, now: Optional[float]
) -> List[Dict[str, Any]]:
    """Minutes since the first customer message after the last remedy applied."""
    first: Optional[float] = None
    latest: Optional[float] = None
    for event in session:
        kind = event.get("event")
        if kind == "user" and event.get("timestamp") is not None and not _is_external(event):
            latest = float(event["timestamp"])
            if first is None:
                first = latest
        elif kind == "bot" and (event.get("metadata") or {}).get("utter_action") in PROGRESS_RESPONSES:
            first = None  # progress: the clock starts again with the next message
    moment = now if now is not None else latest
    if first is None or moment is None or settings.minutes_without_progress <= 0:
        return []
    minutes = (moment - first) / 60
    if minutes < settings.minutes_without_progress:
        return []
    units = min(2.0, minutes / settings.minutes_without_progress)
    return [
        {
            "signal": "no_progress",
            "weight": round(settings.weight("no_progress") * units, 3),
            "detail": f"{minutes:.0f} minutes since the first message without a remedy applied",
        }
    ]
