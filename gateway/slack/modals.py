"""Block Kit for the modals an agent opens from a case card, and reading their submissions.

- Goodwill (callback_id `case_goodwill`): the kind (a static_select of the case's
  goodwill kinds), the amount (a number_input, whole yen, 1..max_amount; the hint names
  the agent's own limit: above it a supervisor approves too) and a required reason.
- A suggested reply (callback_id `case_reply_draft`): one multiline input prefilled with
  the draft in the customer's language, edited by the agent and sent on submit.

private_metadata is the case id. A submission is read into plain values, or into Slack's
`response_action: "errors"` shape ({block_id: message}) that keeps the modal open.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from contracts.approvals import Goodwill
from contracts.case_context import CaseContext
from contracts.vocabulary import remedy_label
from gateway.core.cases import Case
from gateway.slack.cards import _esc, yen

GOODWILL_VIEW = "case_goodwill"
KIND_BLOCK, KIND_ACTION = "goodwill_kind", "kind"
AMOUNT_BLOCK, AMOUNT_ACTION = "goodwill_amount", "amount"
REASON_BLOCK, REASON_ACTION = "goodwill_reason", "reason"
MAX_REASON = 1000  # when the case's allowance does not say (bot/remedy_policy.yml goodwill.reason_max_length)

DRAFT_VIEW = "case_reply_draft"
REPLY_BLOCK, REPLY_ACTION = "reply_text", "text"
MAX_REPLY = 3000  # a plain_text_input holds at most 3000 characters

Errors = Dict[str, str]


def _plain(text: str) -> Dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _who(ctx: CaseContext) -> str:
    customer = ctx.customer.display_name or "the customer"
    order = f" · order #{ctx.order.number}" if ctx.order and ctx.order.number else ""
    return f"{customer}{order}"


def goodwill_modal(case: Case) -> Dict[str, Any]:
    """The Goodwill modal for `case` (views.open's `view`)."""
    ctx = CaseContext.from_dict(case.context)
    allowance = ctx.goodwill
    options = [
        {"text": _plain(remedy_label(kind).bilingual()[:75]), "value": kind}
        for kind in allowance.kinds[:100]
        if 0 < len(kind) <= 150
    ]
    kind_element: Dict[str, Any] = {
        "type": "static_select",
        "action_id": KIND_ACTION,
        "placeholder": _plain("Choose / 選択"),
        "options": options,
    }
    if len(options) == 1:
        kind_element["initial_option"] = options[0]
    hint = (
        f"Up to {yen(allowance.agent_limit)} on your own; above that a supervisor approves too "
        f"(at most {yen(allowance.max_amount)}). / {yen(allowance.agent_limit)}を超える場合は上長の承認も必要です"
        f"（上限{yen(allowance.max_amount)}）。"
    )
    return {
        "type": "modal",
        "callback_id": GOODWILL_VIEW,
        "private_metadata": case.case_id,
        "title": _plain("Goodwill / お詫び"),
        "submit": _plain("Give / 実行"),
        "close": _plain("Cancel / 取消"),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"A goodwill gesture for *{_esc(_who(ctx))}* (case {_esc(case.case_id)}). "
                    "The bot checks it against the policy before anything is given.",
                },
            },
            {"type": "input", "block_id": KIND_BLOCK, "label": _plain("Kind / 種類"), "element": kind_element},
            {
                "type": "input",
                "block_id": AMOUNT_BLOCK,
                "label": _plain("Amount (yen) / 金額（円）"),
                "element": {
                    "type": "number_input",
                    "action_id": AMOUNT_ACTION,
                    "is_decimal_allowed": False,
                    "min_value": "1",
                    "max_value": str(max(1, allowance.max_amount)),
                },
                "hint": _plain(hint),
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": _plain("Reason / 理由"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": allowance.reason_max_length or MAX_REASON,
                    "placeholder": _plain("Why, for the case record / 記録用の理由"),
                },
            },
        ],
    }


def _state(view: Dict[str, Any], block: str, action: str) -> Dict[str, Any]:
    """view.state.values[block][action], or {} (whatever shape the payload has)."""
    entry: Any = view
    for key in ("state", "values", block, action):
        entry = entry.get(key) if isinstance(entry, dict) else None
    return entry if isinstance(entry, dict) else {}


def _text(view: Dict[str, Any], block: str, action: str) -> str:
    value = _state(view, block, action).get("value")
    return value.strip() if isinstance(value, str) else ""


def read_goodwill(view: Dict[str, Any], ctx: CaseContext) -> Tuple[Optional[Goodwill], Errors]:
    """The goodwill a submission asks for, or the errors to show ({block_id: message})."""
    errors: Errors = {}
    selected = _state(view, KIND_BLOCK, KIND_ACTION).get("selected_option")
    kind = selected.get("value") if isinstance(selected, dict) else None
    if not isinstance(kind, str) or kind not in ctx.goodwill.kinds:
        errors[KIND_BLOCK] = "Choose one of the kinds. / 種類を選んでください。"
    raw = _text(view, AMOUNT_BLOCK, AMOUNT_ACTION)
    amount = int(raw) if raw.isascii() and raw.isdigit() else None
    if amount is None or not 1 <= amount <= ctx.goodwill.max_amount:
        errors[AMOUNT_BLOCK] = (
            f"A whole number of yen from 1 to {ctx.goodwill.max_amount:,}. / "
            f"1〜{ctx.goodwill.max_amount:,}円の整数で入力してください。"
        )
    reason = _text(view, REASON_BLOCK, REASON_ACTION)
    if not reason:
        errors[REASON_BLOCK] = "Say why (kept with the case). / 理由を入力してください。"
    elif len(reason) > (ctx.goodwill.reason_max_length or MAX_REASON):
        limit = ctx.goodwill.reason_max_length or MAX_REASON
        errors[REASON_BLOCK] = f"At most {limit} characters. / {limit}文字以内。"
    if errors:
        return None, errors
    return Goodwill(kind=str(kind), amount=int(amount or 0), reason=reason), {}


def draft_modal(case: Case, draft_key: str, label: str, text: str) -> Dict[str, Any]:
    """The suggested reply `text` (rendered for the customer) in an editable modal."""
    ctx = CaseContext.from_dict(case.context)
    language = "日本語" if (ctx.customer.language or "ja").startswith("ja") else "English"
    return {
        "type": "modal",
        "callback_id": DRAFT_VIEW,
        "private_metadata": case.case_id,
        "title": _plain("Reply / 返信案"),
        "submit": _plain("Send / 送信"),
        "close": _plain("Cancel / 取消"),
        "blocks": [
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"To *{_esc(_who(ctx))}* on LINE, in {language} · draft: {_esc(label)}"[:3000],
                    }
                ],
            },
            {
                "type": "input",
                "block_id": REPLY_BLOCK,
                "label": _plain("Message to the customer / お客様へのメッセージ"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REPLY_ACTION,
                    "multiline": True,
                    "max_length": MAX_REPLY,
                    "initial_value": text[:MAX_REPLY],
                },
                "hint": _plain("Edit it as you like; it is sent as your reply. / 編集して送信できます。"),
            },
        ],
    }


def read_draft(view: Dict[str, Any]) -> Tuple[Optional[str], Errors]:
    """The reply a draft modal's submission sends, or the errors to show."""
    raw = _state(view, REPLY_BLOCK, REPLY_ACTION).get("value")
    text = raw if isinstance(raw, str) else ""
    if not text.strip():
        return None, {REPLY_BLOCK: "Write the message. / メッセージを入力してください。"}
    if len(text) > MAX_REPLY:
        return None, {REPLY_BLOCK: f"At most {MAX_REPLY} characters. / {MAX_REPLY}文字以内。"}
    return text.strip(), {}


def not_member_errors(view: Dict[str, Any]) -> Errors:
    """The refusal a non-member sees in the modal, on its first input block."""
    blocks = view.get("blocks") if isinstance(view.get("blocks"), list) else []
    first = next((b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("type") == "input"), None)
    return {
        str(first or REPLY_BLOCK): "Only members of the handoff channel can act on cases. / "
        "対応チャンネルのメンバーのみ操作できます。"
    }


__all__ = [
    "AMOUNT_BLOCK",
    "DRAFT_VIEW",
    "GOODWILL_VIEW",
    "KIND_BLOCK",
    "REASON_BLOCK",
    "REPLY_BLOCK",
    "draft_modal",
    "goodwill_modal",
    "not_member_errors",
    "read_draft",
    "read_goodwill",
]
