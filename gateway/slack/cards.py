"""Block Kit for a handoff case: the card (summary first, then who, order, items, remedies,
frustration, status, buttons) and the transcript posted in the case's thread.

Agents read Japanese and English, so labels carry both. Customer text appears here on
purpose (Slack is where agents work); it never goes into logs.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from gateway.core.cases import CLAIMED, OPEN, RESOLVED, Case

ACTIONS_BLOCK = "case_actions"
CLAIM, RESOLVE, APPROVE_PREFIX = "case_claim", "case_resolve", "case_approve"
MAX_SECTION = 2900  # Slack allows 3000 characters in a section's text
MAX_BLOCKS_PER_MESSAGE = 45

REASONS = {
    "request_human": "Asked for a person / 担当者希望",
    "frustration": "Frustrated customer / 不満が強い",
    "safety": "SAFETY: allergy, illness or injury / 安全（アレルギー・体調・けが）",
    "payment_or_account": "Payment or account / 支払い・アカウント",
    "out_of_scope": "Outside the bot's scope / 対象外の相談",
    "repeated_misunderstanding": "Bot did not understand twice / 2回理解できず",
    "all_remedies_refused": "Every remedy refused / 提案をすべて辞退",
    "claim_window_passed": "Out of policy: claim window passed / 申告期限切れ",
    "amount_above_limit": "Needs approval: above the auto limit / 承認が必要（上限超え）",
    "too_many_claims": "Out of policy: too many claims / 申告回数超過",
    "item_not_covered": "Out of policy: item not covered / 対象外の商品",
    "order_not_cancellable": "Out of policy: cannot cancel / キャンセル不可",
    "order_not_delivered": "Order not delivered yet / 未配達",
    "order_cancelled": "Order was cancelled / キャンセル済みの注文",
    "no_remedy_available": "No remedy the bot may give / 自動で提案できる対応なし",
    "order_not_found": "Order not found / 注文が見つからない",
    "identity_not_verified": "Could not verify the customer / 本人確認できず",
}
PROBLEMS = {
    "missing_item": "Missing item / 入っていない", "wrong_item": "Wrong item / 違う商品",
    "damaged_item": "Damaged item / 破損", "late_delivery": "Late delivery / 配達遅れ",
    "cancel_order": "Cancellation / キャンセル", "check_order_status": "Order status / 状況確認",
}
REMEDIES = {
    "send_item": "send the item", "remake_dish": "re-make the dish", "replace_item": "replace",
    "refund_item": "refund the item", "refund_delivery_fee": "refund the delivery fee",
    "cancel_order": "cancel and refund", "store_credit": "store credit", "coupon": "coupon",
}


def yen(amount: Any) -> str:
    try:
        return f"¥{int(amount):,}"
    except (TypeError, ValueError):
        return "-"


def _esc(text: Any) -> str:
    """Slack mrkdwn escaping: only &, < and > are special."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _time(value: Optional[str]) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime("%m-%d %H:%M")
    except ValueError:
        return str(value)


def remedy_text(offer: Dict[str, Any]) -> str:
    kind = offer.get("kind", "?")
    text = REMEDIES.get(kind, kind)
    if offer.get("amount"):
        text += f" {yen(offer['amount'])}"
    if offer.get("eta"):
        text += f" (by {_time(offer['eta'])})"
    return text


def status_line(case: Case) -> str:
    if case.status == OPEN:
        return "🟠 *Unclaimed* / 未対応"
    if case.status == CLAIMED:
        return f"🔵 *Claimed by <@{case.agent_id}>* / 対応中"
    return f"🟢 *Resolved by {_esc(case.resolved_by or case.agent_name or '?')}* / 解決済み"


def case_card(case: Case) -> Dict[str, Any]:
    """chat.postMessage / chat.update arguments (text + blocks) for the case card."""
    ctx = case.context
    customer = ctx.get("customer") or {}
    order = ctx.get("order") or {}
    reason = ctx.get("reason") or "request_human"
    items = ctx.get("items") or []
    title = f"{'🚨' if reason == 'safety' else '🆘'} {REASONS.get(reason, reason)}"
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_esc(ctx.get('summary') or reason)}*"[:MAX_SECTION]}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Customer / お客様*\n" + _esc(
                f"{customer.get('display_name') or '(no name)'} · id {customer.get('customer_id') or 'guest'} · "
                f"{customer.get('language') or 'ja'}")},
            {"type": "mrkdwn", "text": "*Order / 注文*\n" + (_esc(
                f"#{order.get('number')} {order.get('shop') or ''} · {yen(order.get('total'))} · "
                f"{order.get('status') or ''}") if order else "(not identified)")},
            {"type": "mrkdwn", "text": "*Problem / 内容*\n" + _esc(PROBLEMS.get(ctx.get("problem") or "", ctx.get("problem") or "-"))},
            {"type": "mrkdwn", "text": "*Status / 状態*\n" + status_line(case)},
        ]},
    ]
    if items:
        lines = [f"{'• *' if i.get('claimed') else '◦ '}{_esc(i.get('name_ja'))} / {_esc(i.get('name_en'))}"
                 f" ×{i.get('quantity', 1)} {yen((i.get('unit_price') or 0) * (i.get('quantity') or 1))}"
                 f"{'*  ← claimed' if i.get('claimed') else ''}" for i in items]
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                       "text": ("*Items / 商品*\n" + "\n".join(lines))[:MAX_SECTION]}})
    remedy_lines = []
    if ctx.get("remedies_offered"):
        remedy_lines.append("Offered / 提案: " + ", ".join(remedy_text(o) for o in ctx["remedies_offered"]))
    if ctx.get("remedies_refused"):
        remedy_lines.append("Refused / 辞退: " + ", ".join(REMEDIES.get(k, k) for k in ctx["remedies_refused"]))
    if ctx.get("remedies_needing_approval"):
        remedy_lines.append("Needs your approval / 要承認: " + ", ".join(remedy_text(o) for o in ctx["remedies_needing_approval"]))
    for a in case.approved:
        remedy_lines.append(f"Approved / 承認済み: {REMEDIES.get(a['remedy'], a['remedy'])} by {_esc(a['by'])}")
    if remedy_lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                       "text": ("*Remedies / 対応*\n" + "\n".join(remedy_lines))[:MAX_SECTION]}})
    signals = []
    frustration = ctx.get("frustration") or {}
    if frustration:
        reasons = ", ".join(f"{r.get('signal')}" + (f" ({_esc(r['detail'])})" if r.get("detail") else "")
                            for r in frustration.get("reasons") or [])
        signals.append(f"Frustration / 不満度 {frustration.get('score', 0):.1f} of "
                       f"{frustration.get('threshold', 0):.1f}" + (f": {reasons}" if reasons else ""))
    if ctx.get("safety_signals"):
        signals.append("Safety words / 安全に関する語: " + ", ".join(
            _esc(s.get("text", s) if isinstance(s, dict) else s) for s in ctx["safety_signals"]))
    if signals:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                       "text": ("*Signals / シグナル*\n" + "\n".join(signals))[:MAX_SECTION]}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"Case {case.case_id} · opened {_time(ctx.get('created_at'))} · "
        f"{len(case.photos)} photo(s) · transcript in the thread · "
        "replies in the thread reach the customer on LINE; start with `//` for an internal note")}]})
    buttons = _buttons(case)
    if buttons:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons})
    text = f"{title}: {ctx.get('summary') or ''}"[:3000]
    return {"text": text, "blocks": blocks}


def _buttons(case: Case) -> List[Dict[str, Any]]:
    if case.status == RESOLVED:
        return []
    buttons: List[Dict[str, Any]] = []
    if case.status == OPEN:
        buttons.append({"type": "button", "action_id": CLAIM, "value": case.case_id,
                        "text": {"type": "plain_text", "text": "Claim / 担当する"}, "style": "primary"})
    done = {a["remedy"] for a in case.approved}
    for n, offer in enumerate(case.context.get("remedies_needing_approval") or []):
        if offer.get("kind") in done:
            continue
        buttons.append({"type": "button", "action_id": f"{APPROVE_PREFIX}_{n}",
                        "value": f"{case.case_id}|{offer.get('kind')}",
                        "text": {"type": "plain_text", "text": f"Approve {remedy_text(offer)}"[:75]},
                        "confirm": {"title": {"type": "plain_text", "text": "Approve? / 承認しますか"},
                                    "text": {"type": "mrkdwn", "text": f"Apply *{_esc(remedy_text(offer))}* for this customer now."},
                                    "confirm": {"type": "plain_text", "text": "Approve"},
                                    "deny": {"type": "plain_text", "text": "Cancel"}}})
    buttons.append({"type": "button", "action_id": RESOLVE, "value": case.case_id,
                    "text": {"type": "plain_text", "text": "Resolve → bot / 解決"}})
    return buttons


def transcript_messages(case: Case) -> List[Dict[str, Any]]:
    """The transcript as thread messages (chunks that fit Slack's limits), oldest first."""
    turns = case.context.get("transcript") or []
    lines = []
    for t in turns:
        who = "👤" if t.get("role") == "customer" else "🤖"
        intent = f"  _({t['intent']})_" if t.get("intent") else ""
        lines.append(f"{who} {_esc(t.get('text', ''))}{intent}")
    if not lines:
        lines = ["(no messages)"]
    sections: List[str] = []
    current = "*Transcript / 会話履歴*"
    for line in lines:
        if len(current) + len(line) + 1 > MAX_SECTION:
            sections.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line[:MAX_SECTION]
    sections.append(current)
    messages = []
    for start in range(0, len(sections), MAX_BLOCKS_PER_MESSAGE):
        chunk = sections[start:start + MAX_BLOCKS_PER_MESSAGE]
        messages.append({"text": "Transcript / 会話履歴",
                         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in chunk]})
    return messages


__all__ = ["ACTIONS_BLOCK", "APPROVE_PREFIX", "CLAIM", "RESOLVE", "case_card", "transcript_messages"]
