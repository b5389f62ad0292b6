"""The quality audit's detectors: one closed case's turns in, its findings out.

Each detector reads the case's transcript (bot/audit/transcript.py: customer, bot and
agent turns, oldest first) against bot/audit.yml and names the turn that shows the
pattern, with a short explanation a product owner can check by reading that turn. Pure
functions: the database is read by bot/audit/cases.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from bot.audit.patterns import AuditPatterns, load_patterns
from bot.privacy import scrub
from bot.remedy_policy.hours import HandoffHours, load_hours
from contracts.audit import (
    ASKED_AGAIN,
    BARE_CANT,
    COUPON_FIRST,
    PASSED_AROUND,
    SLOW_FIRST_REPLY,
    UNANSWERED_QUESTION,
    UNSATISFIED,
    Finding,
)

Turn = Mapping[str, Any]

# The bot's responses that tell the customer what it gave (their words are read for a
# coupon-like remedy when no button says which).
CONFIRMATION_RESPONSES = ("utter_remedy_applied", "utter_remedy_already_applied")
# A handoff's messages (utter_handoff_<reason>, then utter_handoff_wait): one handoff.
HANDOFF_PREFIX = "utter_handoff"
TAPPED = "[tapped"
# What an agent's words (or the bot's confirmation) offer, when no button names the kind.
WORDED_COUPON = "a coupon (in words)"
WORDED_FIX = "a fix (in words)"
TEXT_SHOWN = 200  # characters of a turn kept in a finding


@dataclass(frozen=True)
class AuditCase:
    """One closed case as the audit reads it."""

    case_id: str
    turns: Sequence[Turn] = ()
    closed_at: Optional[datetime] = None
    handoff_times: Sequence[datetime] = ()  # from the handoffs table, oldest first
    satisfaction: Optional[str] = None  # "satisfied" | "not_satisfied" (case_outcomes)
    names: Sequence[str] = ()  # the customer's and agents' names: masked in findings
    language: Optional[str] = None


@lru_cache(maxsize=1)
def default_patterns() -> AuditPatterns:
    return load_patterns()


@lru_cache(maxsize=1)
def default_hours() -> HandoffHours:
    return load_hours()


def audit_case(
    case: AuditCase, patterns: Optional[AuditPatterns] = None, hours: Optional[HandoffHours] = None
) -> List[Finding]:
    """Every finding of one case, in the order of the patterns, then of the turns."""
    patterns = patterns or default_patterns()
    found: List[Finding] = []
    detectors: Tuple[Callable[..., List[Tuple[str, int, str]]], ...] = (
        _coupon_first,
        _bare_cant,
        _asked_again,
        _passed_around,
        _unanswered_question,
    )
    for detector in detectors:
        found += [_finding(case, *hit) for hit in detector(case, patterns)]
    found += [_finding(case, *hit) for hit in _slow_first_reply(case, patterns, hours)]
    found += [_finding(case, *hit) for hit in _unsatisfied(case, patterns)]
    return found


def _finding(case: AuditCase, pattern: str, index: int, explanation: str) -> Finding:
    turn: Turn = case.turns[index] if 0 <= index < len(case.turns) else {}
    text = scrub(str(turn.get("text") or turn.get("response") or ""), case.names)
    if len(text) > TEXT_SHOWN:
        text = text[: TEXT_SHOWN - 1] + "…"
    return Finding(
        case_id=case.case_id,
        pattern=pattern,
        turn_index=index,
        turn_text=text,
        explanation=scrub(explanation, case.names),
        role=str(turn.get("role") or "bot"),
        speaker=turn.get("agent_name"),
        turn_time=turn.get("time"),
    )


def _speaks_for_us(turn: Turn) -> bool:
    return turn.get("role") in ("bot", "agent")


def _quote(text: str, length: int = 40) -> str:
    text = " ".join(str(text).split())
    return f"「{text[:length]}{'…' if len(text) > length else ''}」"


# --- 1. a coupon as the first or only remedy ------------------------------------------------
def _remedies_in(turn: Turn, patterns: AuditPatterns) -> List[str]:
    """The remedies a bot or agent turn offers or gives, in order: the kinds of its remedy
    buttons, else (an agent's words, the bot's confirmation) "coupon"/"fix" by its words."""
    if turn.get("offered"):
        return [str(k) for k in turn["offered"]]
    if turn.get("role") != "agent" and turn.get("response") not in CONFIRMATION_RESPONSES:
        return []
    text = str(turn.get("text") or "")
    seen: List[Tuple[int, str]] = []
    coupon = patterns.coupon_words.first_in(text) if patterns.coupon_remedies else None
    if coupon:
        seen.append((coupon[0], WORDED_COUPON))
    fix = patterns.fix_words.first_in(text)
    if fix:
        seen.append((fix[0], WORDED_FIX))
    return [kind for _, kind in sorted(seen)]


def _coupon_first(case: AuditCase, patterns: AuditPatterns) -> List[Tuple[str, int, str]]:
    offers = [(i, _remedies_in(t, patterns)) for i, t in enumerate(case.turns) if _speaks_for_us(t)]
    offers = [(i, kinds) for i, kinds in offers if kinds]
    if not offers:
        return []
    first_index, first = offers[0]
    coupons = set(patterns.coupon_remedies) | {WORDED_COUPON}
    every = [k for _, kinds in offers for k in kinds]
    who = "an agent" if case.turns[first_index].get("role") == "agent" else "the bot"
    if all(k in coupons for k in every):
        return [
            (COUPON_FIRST, first_index, f"{who} offered only a coupon-like remedy ({', '.join(first)}), no real fix")
        ]
    if first[0] in coupons:
        return [
            (COUPON_FIRST, first_index, f"{who} offered a coupon-like remedy ({first[0]}) first, before a real fix")
        ]
    return []


# --- 2. a bare "can't" ------------------------------------------------------------------------
def _bare_cant(case: AuditCase, patterns: AuditPatterns) -> List[Tuple[str, int, str]]:
    hits = []
    turns = case.turns
    for i, turn in enumerate(turns):
        if not _speaks_for_us(turn):
            continue
        word = patterns.cant_words.found_in(str(turn.get("text") or ""))
        if word is None or _has_next_step(turn, patterns):
            continue
        after = turns[i + 1] if i + 1 < len(turns) else None
        if after is not None and after.get("role") == turn.get("role") and _has_next_step(after, patterns):
            continue  # the same speaker's very next message gave the next step
        who = "an agent" if turn.get("role") == "agent" else "the bot"
        hits.append((BARE_CANT, i, f'{who} said "{word}" with no next step in this turn or right after'))
    return hits


def _has_next_step(turn: Turn, patterns: AuditPatterns) -> bool:
    if turn.get("offered") or turn.get("choices") or str(turn.get("response") or "").startswith(HANDOFF_PREFIX):
        return True  # remedies or other choices to tap, or a person taking over
    return patterns.next_step_words.found_in(str(turn.get("text") or "")) is not None


# --- 3. asked again -----------------------------------------------------------------------------
def _asked_again(case: AuditCase, patterns: AuditPatterns) -> List[Tuple[str, int, str]]:
    hits = []
    said_at: Dict[str, int] = {}
    flagged = set()
    for i, turn in enumerate(case.turns):
        if turn.get("role") == "customer":
            for thing in patterns.asks:
                if thing.name not in said_at and _customer_said(turn, thing):
                    said_at[thing.name] = i
            continue
        if not _speaks_for_us(turn):
            continue
        for thing in patterns.asks:
            if thing.name in flagged or thing.name not in said_at:
                continue
            asks = (turn.get("role") == "bot" and turn.get("response") in thing.responses) or (
                thing.asking_words.found_in(str(turn.get("text") or "")) is not None
            )
            if asks:
                flagged.add(thing.name)
                earlier = said_at[thing.name]
                who = "an agent" if turn.get("role") == "agent" else "the bot"
                hits.append(
                    (
                        ASKED_AGAIN,
                        i,
                        f"{who} asked for the {thing.name}, which the customer had given at turn {earlier} "
                        f"{_quote(case.turns[earlier].get('text') or '')}",
                    )
                )
    return hits


def _customer_said(turn: Turn, thing: Any) -> bool:
    entities = {str(e.get("entity")) for e in turn.get("entities") or [] if isinstance(e, Mapping)}
    if entities & set(thing.entities) or (turn.get("intent") in thing.intents):
        return True
    text = str(turn.get("text") or "")
    return not text.startswith(TAPPED) and any(p.search(text) for p in thing.said_patterns)


# --- 4. passed around -------------------------------------------------------------------------
def _handoff_turns(turns: Sequence[Turn]) -> List[int]:
    """Where each handoff begins: a run of the bot's handoff messages (the reason's, then
    the wait) is one handoff, named by its first turn."""
    starts: List[int] = []
    for i, turn in enumerate(turns):
        if _is_handoff(turn) and not (i and _is_handoff(turns[i - 1])):
            starts.append(i)
    return starts


def _is_handoff(turn: Turn) -> bool:
    return turn.get("role") == "bot" and str(turn.get("response") or "").startswith(HANDOFF_PREFIX)


def _passed_around(case: AuditCase, patterns: AuditPatterns) -> List[Tuple[str, int, str]]:
    handoffs = _handoff_turns(case.turns)
    count = max(len(handoffs), len(case.handoff_times))
    reasons: List[Tuple[int, str]] = []
    if count > patterns.max_handoffs:
        at = handoffs[patterns.max_handoffs] if len(handoffs) > patterns.max_handoffs else (handoffs or [0])[-1]
        reasons.append((at, f"handed to a person {count} times (more than {patterns.max_handoffs})"))
    agents: List[str] = []
    for i, turn in enumerate(case.turns):
        if turn.get("role") != "agent":
            continue
        who = str(turn.get("agent_id") or turn.get("agent_name") or "")
        if who and who not in agents:
            agents.append(who)
            if len(agents) == patterns.max_agents + 1:
                reasons.append((i, f"more than {patterns.max_agents} agent(s) answered the customer"))
    if not reasons:
        return []
    reasons.sort()
    return [(PASSED_AROUND, reasons[0][0], "; ".join(text for _, text in reasons))]


# --- 5. a question left unanswered --------------------------------------------------------------
def is_question(text: str, patterns: AuditPatterns) -> bool:
    if not text or text.startswith(TAPPED):
        return False
    if any(mark in text for mark in patterns.question_marks):
        return True
    return patterns.question_starts.starts(text) is not None or patterns.question_words.found_in(text) is not None


def _unanswered_question(case: AuditCase, patterns: AuditPatterns) -> List[Tuple[str, int, str]]:
    hits = []
    turns = case.turns
    for i, turn in enumerate(turns):
        if turn.get("role") != "customer" or not is_question(str(turn.get("text") or ""), patterns):
            continue
        reply = next((j for j in range(i + 1, len(turns)) if _speaks_for_us(turns[j])), None)
        if reply is None:
            hits.append((UNANSWERED_QUESTION, i, "the case ended right after this question"))
            continue
        response = turns[reply].get("response")
        if response in patterns.generic_responses:
            hits.append((UNANSWERED_QUESTION, i, f"the next reply (turn {reply}) was a generic fallback ({response})"))
        elif response in patterns.ending_responses:
            hits.append((UNANSWERED_QUESTION, i, f"the case was closed right after it (turn {reply}: {response})"))
    return hits


# --- 6. the first human reply later than the SLA -------------------------------------------------
def _time(turn: Turn) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(str(turn.get("time"))) if turn.get("time") else None
    except ValueError:
        return None


def _slow_first_reply(
    case: AuditCase, patterns: AuditPatterns, hours: Optional[HandoffHours]
) -> List[Tuple[str, int, str]]:
    handoffs = _handoff_turns(case.turns)
    if not handoffs and not case.handoff_times:
        return []
    start_index = handoffs[0] if handoffs else None
    started = _time(case.turns[start_index]) if start_index is not None else None
    if case.handoff_times:
        started = min([t for t in (started, case.handoff_times[0]) if t is not None])
    if started is None:
        return []
    clock_from = started
    if patterns.working_hours_only:
        hours = hours or default_hours()
        if not hours.is_open(started):
            clock_from = hours.next_opening(started)
    after = start_index if start_index is not None else -1
    first_agent = next((j for j in range(after + 1, len(case.turns)) if case.turns[j].get("role") == "agent"), None)
    sla = timedelta(minutes=patterns.sla_minutes)
    if first_agent is not None:
        replied = _time(case.turns[first_agent])
        if replied is None or replied - clock_from <= sla:
            return []
        waited = int((replied - clock_from).total_seconds() // 60)
        return [
            (
                SLOW_FIRST_REPLY,
                first_agent,
                f"first human reply {waited} min after the handoff (SLA {patterns.sla_minutes} min)",
            )
        ]
    ended = case.closed_at
    if ended is None or ended - clock_from <= sla:
        return []
    waited = int((ended - clock_from).total_seconds() // 60)
    at = start_index if start_index is not None else max(len(case.turns) - 1, -1)
    return [
        (
            SLOW_FIRST_REPLY,
            at,
            f"no human reply; the case closed {waited} min after the handoff (SLA {patterns.sla_minutes} min)",
        )
    ]


# --- 7. not satisfied ------------------------------------------------------------------------------
def _unsatisfied(case: AuditCase, patterns: AuditPatterns) -> List[Tuple[str, int, str]]:
    turns = case.turns
    asked = [
        i
        for i, t in enumerate(turns)
        if t.get("role") == "bot" and t.get("response") in patterns.satisfaction_responses
    ]
    answer = None
    if asked:
        answer = next((j for j in range(asked[-1] + 1, len(turns)) if turns[j].get("role") == "customer"), None)
    if case.satisfaction == "satisfied":
        return []
    if case.satisfaction == "not_satisfied":
        at = answer if answer is not None else (asked[-1] if asked else len(turns) - 1)
        return [(UNSATISFIED, at, "the customer answered that the problem is not solved")]
    if answer is not None and turns[answer].get("intent") not in patterns.satisfied_intents:
        return [(UNSATISFIED, answer, "the customer's answer to the satisfaction question was not a yes")]
    return []
