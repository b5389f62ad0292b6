"""Block Kit for a handoff case: the card (summary first, then who, order, items, remedies,
frustration, status, buttons) and the transcript posted in the case's thread.

Agents read Japanese and English, so labels carry both. Customer text appears here on
purpose (Slack is where agents work); it never goes into logs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.case_context import CaseContext, OfferedRemedy
from contracts.vocabulary import SAFETY_REASON, problem_label, reason_label, remedy_label
from gateway.core.cases import CLAIMED, OPEN, RESOLVED, Case

ACTIONS_BLOCK = "case_actions"
CLAIM, RESOLVE, APPROVE_PREFIX = "case_claim", "case_resolve", "case_approve"
APPLY_INFIX = "_offered"  # case_approve_offered_N: an offered remedy an agent applies
MAX_SECTION = 2900  # Slack allows 3000 characters in a section's text
MAX_BLOCKS_PER_MESSAGE = 45


def yen(amount: Any) -> str:
    try:
        return f"¥{int(amount):,}"
    except (TypeError, ValueError):
        return "-"


def _esc(text: Any) -> str:
    """Slack mrkdwn escaping: only &, < and > are special."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _time(value: Optional[str], zone: str = "Asia/Tokyo") -> str:
    """A time as the customer was told it: in the shop's zone, the zone named ("12-01 18:04
    JST"). A time without a zone is UTC (the bot's clock)."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    try:
        local = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        local = ZoneInfo("UTC")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(local).strftime("%m-%d %H:%M %Z")


def remedy_text(offer: OfferedRemedy, zone: str = "Asia/Tokyo") -> str:
    text = remedy_label(offer.kind).en
    if offer.amount:
        text += f" {yen(offer.amount)}"
    if offer.eta:
        text += f" (by {_time(offer.eta, zone)})"
    return text


def status_line(case: Case) -> str:
    if case.status == OPEN:
        return "🟠 *Unclaimed* / 未対応"
    if case.status == CLAIMED:
        return f"🔵 *Claimed by <@{case.agent_id}>* / 対応中"
    return f"🟢 *Resolved by {_esc(case.resolved_by or case.agent_name or '?')}* / 解決済み"


def case_card(case: Case) -> Dict[str, Any]:
    """chat.postMessage / chat.update arguments (text + blocks) for the case card."""
    ctx = CaseContext.from_dict(case.context)
    customer, order, reason = ctx.customer, ctx.order, ctx.reason
    title = f"{'🚨' if reason == SAFETY_REASON else '🆘'} {reason_label(reason).bilingual()}"
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_esc(ctx.summary or reason)}*"[:MAX_SECTION]}},
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": "*Customer / お客様*\n"
                    + _esc(
                        f"{customer.display_name or '(no name)'} · id {customer.customer_id or 'guest'} · "
                        f"{customer.language or 'ja'}"
                    ),
                },
                {
                    "type": "mrkdwn",
                    "text": "*Order / 注文*\n"
                    + (
                        _esc(f"#{order.number} {order.shop or ''} · {yen(order.total)} · {order.status or ''}")
                        if order
                        else "(not identified)"
                    ),
                },
                {
                    "type": "mrkdwn",
                    "text": "*Problem / 内容*\n" + _esc(problem_label(ctx.problem).bilingual() if ctx.problem else "-"),
                },
                {"type": "mrkdwn", "text": "*Status / 状態*\n" + status_line(case)},
            ],
        },
    ]
    if ctx.items:
        lines = [
            f"{'• *' if i.claimed else '◦ '}{_esc(i.name_ja)} / {_esc(i.name_en)}"
            f" ×{i.quantity} {yen(i.total)}"
            f"{'*  ← claimed' if i.claimed else ''}"
            for i in ctx.items
        ]
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ("*Items / 商品*\n" + "\n".join(lines))[:MAX_SECTION]},
            }
        )
    remedy_lines = []
    if ctx.remedies_offered:
        remedy_lines.append("Offered / 提案: " + ", ".join(remedy_text(o, ctx.timezone) for o in ctx.remedies_offered))
    if ctx.remedies_refused:
        remedy_lines.append("Refused / 辞退: " + ", ".join(remedy_label(k).en for k in ctx.remedies_refused))
    if ctx.remedies_needing_approval:
        remedy_lines.append(
            "Needs your approval / 要承認: "
            + ", ".join(remedy_text(o, ctx.timezone) for o in ctx.remedies_needing_approval)
        )
    for a in case.approved:
        remedy_lines.append(f"Approved / 承認済み: {remedy_label(a['remedy']).en} by {_esc(a['by'])}")
    if remedy_lines:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ("*Remedies / 対応*\n" + "\n".join(remedy_lines))[:MAX_SECTION]},
            }
        )
    signals = []
    frustration = ctx.frustration
    if frustration.score or frustration.reasons:
        reasons = ", ".join(
            f"{r.get('signal')}" + (f" ({_esc(r['detail'])})" if r.get("detail") else "") for r in frustration.reasons
        )
        signals.append(
            f"Frustration / 不満度 {frustration.score:.1f} of "
            f"{frustration.threshold:.1f}" + (f": {reasons}" if reasons else "")
        )
    if ctx.safety_signals:
        signals.append(
            "Safety words / 安全に関する語: "
            + ", ".join(_esc(s.get("text", s) if isinstance(s, dict) else s) for s in ctx.safety_signals)
        )
    if signals:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": ("*Signals / シグナル*\n" + "\n".join(signals))[:MAX_SECTION]},
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"Case {case.case_id} · opened {_time(ctx.created_at, ctx.timezone)} · "
                        f"{len(case.photos)} photo(s) · transcript in the thread · "
                        "replies in the thread reach the customer on LINE; start with `//` for an internal note"
                    ),
                }
            ],
        }
    )
    buttons = _buttons(case, ctx)
    if buttons:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons})
    text = f"{title}: {ctx.summary}"[:3000]
    return {"text": text, "blocks": blocks}


def _buttons(case: Case, ctx: CaseContext) -> List[Dict[str, Any]]:
    if case.status == RESOLVED:
        return []
    buttons: List[Dict[str, Any]] = []
    if case.status == OPEN:
        buttons.append(
            {
                "type": "button",
                "action_id": CLAIM,
                "value": case.case_id,
                "text": {"type": "plain_text", "text": "Claim / 担当する"},
                "style": "primary",
            }
        )
    # Apply: what the engine offers for this case, refused by the customer or not (an agent
    # may talk them round); Approve: what needs a person's approval. Both go the same way:
    # a signed approval, re-decided by the engine when the bot applies it, once per case.
    # One remedy per case (the bot's idempotent path): once one is applied, none is offered.
    choices = [("Apply", APPLY_INFIX, o) for o in ctx.remedies_offered]
    choices += [("Approve", "", o) for o in ctx.remedies_needing_approval]
    if case.approved:
        choices = []
    for n, (verb, infix, offer) in enumerate(choices):
        if not offer.kind:
            continue
        buttons.append(
            {
                "type": "button",
                "action_id": f"{APPROVE_PREFIX}{infix}_{n}",
                "value": f"{case.case_id}|{offer.kind}",
                "text": {"type": "plain_text", "text": f"{verb} {remedy_text(offer, ctx.timezone)}"[:75]},
                "confirm": {
                    "title": {"type": "plain_text", "text": f"{verb}? / 実行しますか"},
                    "text": {
                        "type": "mrkdwn",
                        "text": f"Apply *{_esc(remedy_text(offer, ctx.timezone))}* for this customer now.",
                    },
                    "confirm": {"type": "plain_text", "text": verb},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        )
    buttons.append(
        {
            "type": "button",
            "action_id": RESOLVE,
            "value": case.case_id,
            "text": {"type": "plain_text", "text": "Resolve → bot / 解決"},
        }
    )
    return buttons


def transcript_messages(case: Case) -> List[Dict[str, Any]]:
    """The transcript as thread messages (chunks that fit Slack's limits), oldest first."""
    lines = []
    for t in CaseContext.from_dict(case.context).transcript:
        who = "👤" if t.role == "customer" else "🤖"
        intent = f"  _({t.intent})_" if t.intent else ""
        lines.append(f"{who} {_esc(t.text)}{intent}")
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
        chunk = sections[start : start + MAX_BLOCKS_PER_MESSAGE]
        messages.append(
            {
                "text": "Transcript / 会話履歴",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in chunk],
            }
        )
    return messages


__all__ = ["ACTIONS_BLOCK", "APPROVE_PREFIX", "CLAIM", "RESOLVE", "case_card", "transcript_messages"]
