"""Block Kit for a handoff case: the card (summary first, then who, order, items, remedies,
frustration, status, buttons) and the transcript posted in the case's thread.

Agents read Japanese and English, so labels carry both. Customer text appears here on
purpose (Slack is where agents work); it never goes into logs.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.case_context import BROKEN_PROMISE, RECURRING, CaseContext, OfferedCombination, OfferedRemedy
from contracts.vocabulary import GOODWILL, SAFETY_REASON, problem_label, reason_label, remedy_label
from gateway.core.cases import CLAIMED, OPEN, RESOLVED, Case
from gateway.core.replies import ReplyBook, ReplyBookError, load_reply_book

log = logging.getLogger(__name__)

ACTIONS_BLOCK = "case_actions"
CLAIM, RESOLVE, APPROVE_PREFIX = "case_claim", "case_resolve", "case_approve"
APPLY_INFIX = "_offered"  # case_approve_offered_N: an offered remedy an agent applies
COMBO_INFIX = "_combo"  # case_approve_combo_N: remedies the policy lets an agent apply together
# The second row of the card: the agent's other tools. Its block_id carries the case id
# ("case_tools|K7"): a users_select has no value of its own.
TOOLS_BLOCK = "case_tools"
GOODWILL_OPEN = "case_goodwill"  # opens the Goodwill modal (gateway/slack/modals.py)
GOODWILL_APPROVE = "case_goodwill_approve"  # a supervisor approves a pending goodwill
ESCALATE = "case_escalate"
REASSIGN = "case_reassign"  # users_select
SUGGEST = "case_suggest_reply"  # static_select of the reply book's drafts: "K7|draft_key"
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


def combination_text(combo: OfferedCombination) -> str:
    """A combination as the card names it: "send the item + refund the delivery fee ¥300"."""
    text = remedy_label(combo.name).en
    return f"{text} {yen(combo.amount)}" if combo.amount else text


def goodwill_text(record: Dict[str, Any]) -> str:
    """A goodwill record (kind, amount) as the card names it: "store credit ¥5,000"."""
    return f"{remedy_label(str(record.get('kind') or '')).en} {yen(record.get('amount'))}"


def approved_text(record: Dict[str, Any], zone: str = "Asia/Tokyo") -> str:
    """One line of what was applied (case.approved): a remedy, a combination or goodwill,
    who applied it and when (in the shop's zone)."""
    by = _esc(record.get("by") or "?")
    when = ""
    if isinstance(record.get("at"), (int, float)):
        when = f" ({_time(datetime.fromtimestamp(record['at'], tz=timezone.utc).isoformat(), zone)})"
    if record.get("remedy") == GOODWILL:
        reason = f" — {_esc(record['reason'])}" if record.get("reason") else ""
        return f"Goodwill / お詫び: {_esc(goodwill_text(record))} by {by}{reason}{when}"
    return f"Approved / 承認済み: {remedy_label(record.get('remedy')).en} by {by}{when}"


def flag_blocks(ctx: CaseContext) -> List[Dict[str, Any]]:
    """One line per flag, right under the summary: what the agent must see first, e.g. a
    promised remedy that did not arrive by its time (the follow-up's answer)."""
    lines = []
    if BROKEN_PROMISE in ctx.flags:
        promise = ctx.promise
        what = remedy_label(promise.kind).en if promise else "the remedy"
        when = _time(promise.eta, ctx.timezone) if promise and promise.eta else "?"
        lines.append(f":warning: *Promised {_esc(what)} by {when} — not arrived* / 約束の時刻を過ぎても届いていません")
    if RECURRING in ctx.flags:
        lines.append(recurring_line(ctx))
    return [{"type": "section", "text": {"type": "mrkdwn", "text": line[:MAX_SECTION]}} for line in lines]


def recurring_line(ctx: CaseContext) -> str:
    """ "🔁 Recurring: 3rd problem of this customer · earlier C-…, C-…" (bot/actions/recurring.py)."""
    count = len(ctx.earlier_cases) + 1
    nth = f"{count}{'th' if 10 <= count % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(count % 10, 'th')}"
    earlier = ", ".join(_esc(c) for c in ctx.earlier_cases) or "-"
    return f":repeat: *Recurring: {nth} problem of this customer* / {count}回目の不具合 · earlier / 過去: {earlier}"


def status_line(case: Case) -> str:
    escalated = "\n⬆ *Escalated* / 上長対応中" if case.escalated_at is not None and case.status != RESOLVED else ""
    if case.status == OPEN:
        return "🟠 *Unclaimed* / 未対応" + escalated
    if case.status == CLAIMED:
        return f"🔵 *Claimed by <@{case.agent_id}>* / 対応中" + escalated
    return f"🟢 *Resolved by {_esc(case.resolved_by or case.agent_name or '?')}* / 解決済み"


def case_card(case: Case) -> Dict[str, Any]:
    """chat.postMessage / chat.update arguments (text + blocks) for the case card."""
    ctx = CaseContext.from_dict(case.context)
    blocks = summary_blocks(case, ctx)
    buttons = _buttons(case, ctx)
    if buttons:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons})
    tools = _tools(case, ctx)
    if tools:
        blocks.append({"type": "actions", "block_id": f"{TOOLS_BLOCK}|{case.case_id}", "elements": tools})
    return {"text": card_title(ctx), "blocks": blocks}


def card_title(ctx: CaseContext) -> str:
    title = f"{'🚨' if ctx.reason == SAFETY_REASON else '🆘'} {reason_label(ctx.reason).bilingual()}"
    return f"{title}: {ctx.summary}"[:3000]


def summary_blocks(case: Case, ctx: Optional[CaseContext] = None) -> List[Dict[str, Any]]:
    """The card without its buttons: who, order, items, remedies, signals, status (the
    escalation message shows these too)."""
    ctx = ctx or CaseContext.from_dict(case.context)
    customer, order, reason = ctx.customer, ctx.order, ctx.reason
    title = f"{'🚨' if reason == SAFETY_REASON else '🆘'} {reason_label(reason).bilingual()}"
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_esc(ctx.summary or reason)}*"[:MAX_SECTION]}},
        *flag_blocks(ctx),
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
    if ctx.combinations:
        remedy_lines.append("Together / 組み合わせ: " + ", ".join(combination_text(c) for c in ctx.combinations))
    for a in case.approved:
        remedy_lines.append(approved_text(a, ctx.timezone))
    if case.pending_goodwill:
        by = ", ".join(_esc(a.get("name") or "?") for a in case.pending_goodwill.get("approvers") or [])
        remedy_lines.append(
            f"Goodwill waiting for a supervisor / 上長承認待ち: {_esc(goodwill_text(case.pending_goodwill))}"
            f" (approved by {by or '?'})"
        )
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
    return blocks


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
    # may talk them round), and the combinations it lets an agent apply together; Approve:
    # what needs a person's approval. All go the same way: a signed approval, re-decided by
    # the engine when the bot applies it, once per case. One remedy (or combination) per
    # case (the bot's idempotent path): once anything is applied, none is offered.
    # (verb, action_id, remedy name, what the button says, above an agent's own limit)
    choices: List[Tuple[str, str, str, str, bool]] = []
    # a goodwill gesture comes on top of a remedy: it does not close the remedy buttons
    if not any(a.get("remedy") != GOODWILL for a in case.approved):
        choices += [
            ("Apply", f"{APPROVE_PREFIX}{APPLY_INFIX}_{n}", o.kind, remedy_text(o, ctx.timezone), False)
            for n, o in enumerate(ctx.remedies_offered)
        ]
        choices += [
            ("Apply", f"{APPROVE_PREFIX}{COMBO_INFIX}_{n}", c.name, combination_text(c), c.needs_approval)
            for n, c in enumerate(ctx.combinations)
            if len(c.name) <= 1000
        ]
        choices += [
            ("Approve", f"{APPROVE_PREFIX}_{n}", o.kind, remedy_text(o, ctx.timezone), False)
            for n, o in enumerate(ctx.remedies_needing_approval)
        ]
    for verb, action_id, remedy, text, above_limit in choices:
        if not remedy:
            continue
        note = " Above an agent's own limit: a supervisor approves it too." if above_limit else ""
        buttons.append(
            {
                "type": "button",
                "action_id": action_id,
                "value": f"{case.case_id}|{remedy}",
                "text": {"type": "plain_text", "text": f"{verb} {text}"[:75]},
                "confirm": {
                    "title": {"type": "plain_text", "text": f"{verb}? / 実行しますか"},
                    "text": {
                        "type": "mrkdwn",
                        "text": f"Apply *{_esc(text)}* for this customer now.{note}"[:300],
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
    return buttons[:25]


def _tools(case: Case, ctx: CaseContext) -> List[Dict[str, Any]]:
    """Goodwill, a pending goodwill's approval, Escalate, Reassign and suggested replies."""
    if case.status == RESOLVED:
        return []
    tools: List[Dict[str, Any]] = []
    gave_goodwill = any(a.get("remedy") == GOODWILL for a in case.approved)
    if ctx.goodwill.kinds and not gave_goodwill:
        tools.append(_button(GOODWILL_OPEN, case.case_id, "Goodwill / お詫び"))
        if case.pending_goodwill:
            pending = case.pending_goodwill
            text = f"Approve goodwill {yen(pending.get('amount'))} {remedy_label(str(pending.get('kind') or '')).en}"
            button = _button(GOODWILL_APPROVE, case.case_id, text[:75], style="primary")
            button["confirm"] = {
                "title": {"type": "plain_text", "text": "Approve? / 承認しますか"},
                "text": {
                    "type": "mrkdwn",
                    "text": f"Give *{_esc(goodwill_text(case.pending_goodwill))}* to this customer now "
                    f"(reason: {_esc(case.pending_goodwill.get('reason') or '-')})."[:300],
                },
                "confirm": {"type": "plain_text", "text": "Approve"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
            tools.append(button)
    if case.escalated_at is None:
        tools.append(_button(ESCALATE, case.case_id, "Escalate / 上長へ"))
    tools.append(
        {
            "type": "users_select",
            "action_id": REASSIGN,
            "placeholder": {"type": "plain_text", "text": "Reassign to… / 担当変更"},
        }
    )
    options = draft_options(case.case_id)
    if options:
        tools.append(
            {
                "type": "static_select",
                "action_id": SUGGEST,
                "placeholder": {"type": "plain_text", "text": "Suggest a reply / 返信案"},
                "options": options,
            }
        )
    return tools


def _button(action_id: str, value: str, text: str, style: Optional[str] = None) -> Dict[str, Any]:
    button: Dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": text},
    }
    if style:
        button["style"] = style
    return button


@functools.lru_cache(maxsize=1)
def _loaded_book() -> ReplyBook:
    return load_reply_book()


def reply_book() -> Optional[ReplyBook]:
    """The reply book (gateway/core/replies.py), read once; None when it cannot be read (the
    card then has no suggested replies rather than failing)."""
    try:
        return _loaded_book()
    except ReplyBookError as exc:
        log.error("suggested replies are off: %s", exc)
        return None


def draft_options(case_id: str) -> List[Dict[str, Any]]:
    """The reply book's drafts as select options ("English / 日本語", value "K7|key")."""
    book = reply_book()
    options: List[Dict[str, Any]] = []
    for draft in (book.drafts() if book else [])[:100]:
        value = f"{case_id}|{draft.key}"
        if len(value) > 150:
            continue
        label = " / ".join(t for t in (draft.label.get("en"), draft.label.get("ja")) if t)
        options.append({"text": {"type": "plain_text", "text": label[:75] or draft.key[:75]}, "value": value})
    return options


def escalation_message(case: Case, by: str, permalink: Optional[str], mention: str = "") -> Dict[str, Any]:
    """chat.postMessage arguments for the supervisors: the card's summary (no buttons) and
    where the case's thread is."""
    ctx = CaseContext.from_dict(case.context)
    where = f"<{permalink}|the case's thread>" if permalink else "the case's thread"
    lead = f"{mention} ".lstrip() + f"⬆ *{_esc(by)}* escalated case {case.case_id} to the supervisors / 上長へ"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": lead[:MAX_SECTION]}}]
    blocks += summary_blocks(case, ctx)
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Thread / スレッド: {where} · channel <#{case.channel}> · ts {case.thread_ts}",
                }
            ],
        }
    )
    text = f"{mention} ".lstrip() + f"⬆ {by} escalated: {card_title(ctx)}"
    return {"text": text[:3000], "blocks": blocks}


def transcript_messages(case: Case) -> List[Dict[str, Any]]:
    """The transcript as thread messages (chunks that fit Slack's limits), oldest first."""
    lines = []
    for t in CaseContext.from_dict(case.context).transcript:
        who = {"customer": "👤", "agent": "🧑‍💼"}.get(t.role, "🤖")
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


__all__ = [
    "ACTIONS_BLOCK",
    "APPROVE_PREFIX",
    "CLAIM",
    "ESCALATE",
    "GOODWILL_APPROVE",
    "GOODWILL_OPEN",
    "REASSIGN",
    "RESOLVE",
    "SUGGEST",
    "TOOLS_BLOCK",
    "case_card",
    "escalation_message",
    "summary_blocks",
    "transcript_messages",
]
