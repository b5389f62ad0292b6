"""An agent's approval of a remedy, as the gateway records it and the action server checks it.

Why a signed record: only the gateway sees the verified Slack request of the person who
pressed Approve (their Slack user id and channel membership are checked there). The action
server must not take "an agent approved refund_item" from a slot anyone with a tracker can
write, so the gateway signs what it saw (which case, which customer, which remedy, who
approved, when) with `AGENT_APPROVAL_KEY`, a secret only the gateway and the action server
hold; the action server verifies the signature, then re-decides the remedy with the policy
engine from the orders database. The amount is never in the record: the engine prices it.

The record travels as one string (`<base64url JSON>.<base64url HMAC-SHA256>`) in the
`agent_approval` slot. It is not secret (no key, no customer text), only unforgeable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

# An approval is used at once (the gateway triggers the bot right after the press); an old
# one is refused so that a copied record cannot be replayed into a later case state.
MAX_AGE_S = 600.0
KEY_ENV = "AGENT_APPROVAL_KEY"


class ApprovalInvalid(ValueError):
    """The record is malformed, forged, stale or not for this case; the message says which
    (never the key or the record itself)."""


@dataclass(frozen=True)
class Approver:
    slack_user_id: str
    name: str


@dataclass(frozen=True)
class Goodwill:
    """A gesture an agent decided in the Goodwill modal: the one case where the amount
    comes from a person, not the engine. The action server still checks it against
    bot/remedy_policy.yml `goodwill:` (kind allowed, at most the limits) before anything moves."""

    kind: str  # a remedy of bot/remedy_policy.yml `goodwill.kinds` (e.g. store_credit)
    amount: int  # yen
    reason: str  # why, in the agent's words; kept with the case


@dataclass(frozen=True)
class AgentApproval:
    case_id: str
    sender_id: str  # the customer's conversation (LINE user id)
    remedy: str  # a remedy, a combination ("send_item+refund_delivery_fee") or "goodwill"
    approvers: Tuple[Approver, ...]  # distinct people, in the order they pressed Approve
    issued_at: float  # unix seconds
    goodwill: Optional[Goodwill] = None  # only when remedy is "goodwill"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, body: str) -> bytes:
    return hmac.new(key.encode("utf-8"), b"agent-approval:v1:" + body.encode("ascii"), hashlib.sha256).digest()


def sign_approval(key: str, approval: AgentApproval) -> str:
    """The record as the gateway sends it to the bot."""
    if not key:
        raise ValueError(f"{KEY_ENV} is not set: approvals cannot be signed")
    data: Dict[str, Any] = {
        "case": approval.case_id,
        "sender": approval.sender_id,
        "remedy": approval.remedy,
        "by": [[a.slack_user_id, a.name] for a in approval.approvers],
        "at": approval.issued_at,
    }
    if approval.goodwill is not None:
        gw = approval.goodwill
        data["goodwill"] = {"kind": gw.kind, "amount": int(gw.amount), "reason": gw.reason}
    body = _b64(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return f"{body}.{_b64(_mac(key, body))}"


def verify_approval(
    key: str, record: Any, *, case_id: str, sender_id: str, now: float, max_age_s: float = MAX_AGE_S
) -> AgentApproval:
    """The approval in `record` if it is genuine, fresh and for this case and customer."""
    if not key:
        raise ApprovalInvalid(f"{KEY_ENV} is not set: no approval can be verified")
    if not isinstance(record, str) or record.count(".") != 1:
        raise ApprovalInvalid("no signed approval")
    body, mac = record.split(".")
    try:
        given = _unb64(mac)
    except ValueError:
        raise ApprovalInvalid("malformed signature") from None
    if not hmac.compare_digest(given, _mac(key, body)):
        raise ApprovalInvalid("bad signature")
    try:
        data = json.loads(_unb64(body))
        gw = data.get("goodwill")
        approval = AgentApproval(
            case_id=str(data["case"]),
            sender_id=str(data["sender"]),
            remedy=str(data["remedy"]),
            approvers=tuple(Approver(str(i), str(n)) for i, n in data["by"]),
            issued_at=float(data["at"]),
            goodwill=None if gw is None else Goodwill(str(gw["kind"]), int(gw["amount"]), str(gw["reason"])),
        )
    except (ValueError, KeyError, TypeError):
        raise ApprovalInvalid("malformed approval") from None
    if approval.case_id != case_id or approval.sender_id != sender_id:
        raise ApprovalInvalid("the approval is for another case")
    if not approval.approvers:
        raise ApprovalInvalid("nobody approved")
    if not (now - max_age_s <= approval.issued_at <= now + 30):
        raise ApprovalInvalid("the approval is stale")
    return approval


def add_approver(approvers: Sequence[Approver], new: Approver) -> List[Approver]:
    """Approvers after `new` pressed Approve: one entry per person (pressing twice does not
    make a second approver)."""
    if any(a.slack_user_id == new.slack_user_id for a in approvers):
        return list(approvers)
    return [*approvers, new]


def enough_approvers(approvers: Sequence[Approver], supervisors: Sequence[str]) -> bool:
    """Above an agent's own limit: two different people, one of them a supervisor."""
    ids = {a.slack_user_id for a in approvers}
    return len(ids) >= 2 and bool(ids & set(supervisors))


def approval_notice(kind: str, remedy: str, **details: Any) -> Dict[str, Any]:
    """A custom payload for the agents' thread only (never sent to the customer):
    kind is "refused" (not applied, `reason` says why) or "needs_supervisor"."""
    return {"agent_notice": {"kind": kind, "remedy": remedy, **details}}


def agent_notices(responses: Sequence[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Splits the bot's messages into (for the customer, notices for the agents)."""
    customer, notices = [], []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("agent_notice"), dict):
            notices.append(custom["agent_notice"])
        else:
            customer.append(r)
    return customer, notices


__all__ = [
    "AgentApproval",
    "ApprovalInvalid",
    "Approver",
    "Goodwill",
    "KEY_ENV",
    "MAX_AGE_S",
    "add_approver",
    "agent_notices",
    "approval_notice",
    "enough_approvers",
    "sign_approval",
    "verify_approval",
]
