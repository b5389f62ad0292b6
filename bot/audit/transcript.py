"""A case's turns from Rasa's tracker events: customer, bot and agent turns, oldest first,
as the customer saw them (a tapped button is its label, never its payload).

One reading of the events for both readers: the agents' card (bot/actions/handoff.py
`transcript`) and the quality audit (kept per case in `case_transcripts`, read by
bot/audit/findings.py). An agent's reply is a `bot` event the gateway appended with the
agent's name in its metadata (gateway/core/relay.py); it is the agent's turn, not the
bot's. Pure functions over plain dicts: no Rasa import.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

Turn = Dict[str, Any]

# The action that starts a new claim (bot/actions/claims.py ActionStartClaim): a case's
# turns begin with the customer message it answered.
START_CLAIM_ACTION = "action_start_claim"
_PAYLOAD_ENTITIES = re.compile(r"^/[\w-]+(\{.*\})$", re.DOTALL)


def turns_from_events(events: Sequence[Mapping[str, Any]]) -> List[Turn]:
    """Every turn with text: {"role": customer | bot | agent, "text", "time"} and, when
    known, "intent" and "entities" (customer), "response" (the bot's response name),
    "offered" (the remedy kinds its buttons offered, in order), "choices" (how many buttons
    it showed), "agent_name"/"agent_id" (an agent's reply)."""
    turns: List[Turn] = []
    buttons: Dict[str, str] = {}  # payload -> label of the buttons the bot showed last
    for event in events:
        kind = event.get("event")
        if kind == "bot":
            shown = (event.get("data") or {}).get("buttons") or []
            if shown:
                buttons = {str(b.get("payload")): str(b.get("title")) for b in shown if b.get("payload")}
        if kind not in ("user", "bot") or not event.get("text"):
            continue
        stamp = event.get("timestamp")
        time = datetime.fromtimestamp(stamp, timezone.utc).isoformat() if stamp else None
        if kind == "user":
            turns.append(_customer_turn(event, buttons, time))
        else:
            turns.append(_bot_turn(event.get("text"), event.get("data") or {}, event.get("metadata") or {}, time))
    return turns


def pending_turns(
    messages: Sequence[Mapping[str, Any]],
    responses: Optional[Mapping[str, Any]] = None,
    language: str = "ja",
    values: Optional[Mapping[str, Any]] = None,
    time: Optional[str] = None,
) -> List[Turn]:
    """The messages an action is sending now (rasa_sdk's dispatcher.messages), which the
    tracker does not hold yet: a response is rendered from the domain's `responses` in the
    customer's language when given (filled with the message's own values, then `values`),
    otherwise kept by name only."""
    turns: List[Turn] = []
    for message in messages:
        text = message.get("text")
        name = message.get("response")
        if not text and name and responses:
            text = _render(responses.get(name) or [], language, {**(values or {}), **message})
        if not text and not name:
            continue  # a custom payload (a card, the handoff): not a turn the customer reads
        meta = {"utter_action": name} if name else {}
        turns.append(_bot_turn(text or "", {"buttons": message.get("buttons") or []}, meta, time))
    return turns


def case_events(events: Sequence[Mapping[str, Any]], case_id: str) -> List[Mapping[str, Any]]:
    """The events of one case: from the customer message that started its claim (or from the
    end of the case before it, or the session's start when no case was in progress) to now.
    A conversation holds many cases; an audit of one must not read another's turns."""
    first = next(
        (i for i, e in enumerate(events) if _is_case_slot(e) and e.get("value") == case_id),
        len(events),
    )
    start = 0
    current: Any = None  # the case_id slot's value so far
    last_action: Optional[str] = None
    last_user: Optional[int] = None
    for i, event in enumerate(events[:first]):
        kind = event.get("event")
        if kind == "user":
            last_user = i
        elif kind == "action":
            last_action = event.get("name")
            if last_action == START_CLAIM_ACTION:
                start = last_user if last_user is not None else i
        elif kind == "session_started" and current != case_id:
            start = i
        elif _is_case_slot(event):
            value = event.get("value")
            if current is not None and value != current and last_action != START_CLAIM_ACTION:
                start = i + 1  # the case before ended here (e.g. its satisfaction answer)
            current = value
    return list(events[start:])


def _is_case_slot(event: Mapping[str, Any]) -> bool:
    return event.get("event") == "slot" and event.get("name") == "case_id"


def _customer_turn(event: Mapping[str, Any], buttons: Mapping[str, str], time: Optional[str]) -> Turn:
    text = str(event["text"])
    parse = event.get("parse_data") or {}
    if text.startswith("/"):
        # a tap: the label the customer read (a payload of no button shown is not theirs)
        text = f"[tapped] {buttons[text]}" if text in buttons else "[tapped a button]"
    turn: Turn = {"role": "customer", "text": text, "time": time, "intent": (parse.get("intent") or {}).get("name")}
    entities = [
        {"entity": str(e.get("entity")), "value": e.get("value")}
        for e in parse.get("entities") or []
        if isinstance(e, Mapping) and e.get("entity")
    ]
    if entities:
        turn["entities"] = entities
    return turn


def _bot_turn(text: Any, data: Mapping[str, Any], metadata: Mapping[str, Any], time: Optional[str]) -> Turn:
    agent = metadata.get("agent_name")
    turn: Turn = {"role": "agent" if agent or metadata.get("agent_id") else "bot", "text": str(text), "time": time}
    if turn["role"] == "agent":
        turn["agent_name"] = agent
        turn["agent_id"] = metadata.get("agent_id")
    elif metadata.get("utter_action"):
        turn["response"] = metadata["utter_action"]
    shown = data.get("buttons") or []
    offered = [kind for kind in (_remedy_of(b.get("payload")) for b in shown) if kind]
    if offered:
        turn["offered"] = offered
    if shown:
        turn["choices"] = len(shown)  # buttons to tap: a way on, whatever the text says
    return turn


def _remedy_of(payload: Any) -> Optional[str]:
    """The remedy kind a button's payload chooses (`/inform{"remedy": "coupon"}`), or None."""
    match = _PAYLOAD_ENTITIES.match(str(payload or ""))
    if not match:
        return None
    try:
        values = json.loads(match.group(1))
    except ValueError:
        return None
    kind = values.get("remedy") if isinstance(values, dict) else None
    return str(kind) if kind else None


def _render(variations: Sequence[Mapping[str, Any]], language: str, values: Mapping[str, Any]) -> str:
    chosen = next(
        (
            v
            for v in variations
            if any(c.get("name") == "language" and c.get("value") == language for c in v.get("condition") or [])
        ),
        None,
    ) or next((v for v in variations if not v.get("condition")), {})
    text = str(chosen.get("text") or "")
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), text)
