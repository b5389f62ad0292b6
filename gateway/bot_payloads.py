"""The bot's custom payloads in Rasa's answer: every one the gateway acts on, and who does.

Rasa's REST channel returns the bot's messages as dicts; an action's `json_message`
arrives as `{"custom": {...}}`. The keys the gateway knows, and who acts on each:

| payload | sent by | what happens | read by -> handled by |
| --- | --- | --- | --- |
| `{"handoff": {case context}}` | bot/actions/handoff.py | a case opens (ownership -> waiting) before the answer goes out; the card is posted to Slack after it | `handoff_payloads` -> rasa_turn.py -> core/handoff.py `open_from_bot`, `announce` |
| `{"account_link": {}}` | bot/actions/account_link.py, claims.py | a fresh LINE link token and the button to the shop's login page, or the offer left out | `offers_account_link`, `with_account_link_card` -> account_link.py `AccountLinks.offer` |
| `{"remedy_card": {...}}` | bot/actions/remedies.py | drawn as a Flex bubble; the answer quotes the customer's message | `answers_the_complaint` -> rasa_turn.py; drawn by line/messages.py |
| `{"order_card": {...}}` | bot/actions/claims.py | drawn as a Flex bubble | line/messages.py only |
| `{"agent_notice": {...}}` | bot/actions/agent.py | only in the bot's answer to an agent's approval: goes to the thread, never to the customer | `contracts.approvals.agent_notices` (shared with the bot) -> core/remedy_approvals.py, core/goodwill.py |
| `{"follow_up": {case_id, due_at, language}}` | bot/actions/follow_up.py | taken out of the answer (never sent to LINE); a push asking "did it arrive?" is scheduled for after the promised time | `follow_up_payloads`, `without_follow_ups` in follow_ups.py -> `FollowUps.schedule_from`, called from rasa_turn.py |
| `{"ops_alert": {...}}` | bot/actions/recurring.py | taken out of the answer (never sent to LINE); recorded and posted to the ops channel in Slack | `ops_alerts_in`, `without_ops_alerts` (contracts/ops_alerts.py) -> slack/ops_alerts.py `OpsAlerts.take`, called from rasa_turn.py |
| `{"line": ...}` | (escape hatch) | passed to LINE unchanged | line/messages.py only |

Drawing a payload for LINE is line/messages.py's job (its docstring has the shapes); what
the gateway *does* because of one starts from a reader here (the follow-up's readers sit
with their scheduler in follow_ups.py, the alert's in contracts/ops_alerts.py, shared with
the bot). A payload the customer must never see is taken out in rasa_turn.py before the
answer is drawn. A new payload: a pure reader over the responses (here, unless the bot
needs it too), a row above, and a call from the job that acts on it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

Responses = Sequence[Dict[str, Any]]

HANDOFF = "handoff"
ACCOUNT_LINK = "account_link"
REMEDY_CARD = "remedy_card"


def handoff_payloads(responses: Responses) -> List[Dict[str, Any]]:
    """The case contexts in Rasa's answer (custom payload {"handoff": {...}})."""
    found = []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(HANDOFF), dict):
            found.append(custom[HANDOFF])
    return found


def answers_the_complaint(responses: Responses) -> bool:
    """Whether the answer is about the complaint itself: remedies offered (a remedy card)
    or a person taking over (a handoff)."""
    return any(
        isinstance(r.get("custom"), dict) and (REMEDY_CARD in r["custom"] or HANDOFF in r["custom"]) for r in responses
    )


def offers_account_link(responses: Responses) -> bool:
    """Whether the bot offers the customer LINE's account link (`{"account_link": {}}`)."""
    return any(isinstance(r.get("custom"), dict) and ACCOUNT_LINK in r["custom"] for r in responses)


def with_account_link_card(responses: Responses, card: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The answer with each account-link offer filled in with `card` (url, title, text,
    label; line/messages.py draws it), or, without a card, the offer left out and the
    rest of that message (text, buttons, image) kept."""
    out: List[Dict[str, Any]] = []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, dict) and ACCOUNT_LINK in custom:
            if card is None:
                rest = {k: v for k, v in r.items() if k != "custom"}
                if rest.get("text") or rest.get("buttons") or rest.get("image"):
                    out.append(rest)
                continue
            r = {**r, "custom": {**custom, ACCOUNT_LINK: card}}
        out.append(r)
    return out


__all__ = ["answers_the_complaint", "handoff_payloads", "offers_account_link", "with_account_link_card"]
