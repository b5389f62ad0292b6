"""The workbench's "CS damage" page (`GET /quality?from=&to=&preset=`): where the customers
were let down over a period, even when a case "ended" (DESIGN, "what good means" 5).

- the quality audit's findings by pattern (coupon first, a bare "can't", asked again,
  passed around, a question left unanswered, a slow first human reply, not satisfied),
  as a chart, for bot and agents alike;
- the worst cases (most findings first), each finding with the turn that shows it
  highlighted among the case's turns when the audit sends them;
- the recurring-problem alerts raised (one shop, one item failing again);
- what the follow-ups after a promised time came to (asked, arrived, not arrived,
  skipped because the month's push budget was spent).

Everything comes from the action server's ops API (bot/server/ops.py: the audit is
bot.audit.audit_period; the rows are contracts.audit / contracts.ops shapes) over HTTP;
the period form is the cases page's. Texts in both languages (devkit/workbench/pages.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Sequence

from aiohttp import web

from contracts.audit import PATTERNS, Finding, pattern_label
from contracts.ops import FOLLOW_UP_OUTCOMES, FollowUps, RecurringAlertRow
from devkit.workbench import charts
from devkit.workbench.app import (
    STATE,
    _in,
    _period_form,
    html_response,
    lang_of,
    ops_error,
    problem_name,
)
from devkit.workbench.cases import TOKYO, period
from devkit.workbench.ops_client import OpsUnavailable
from devkit.workbench.pages import esc, layout, t

WORST_CASES = 10  # how many cases the page details
CONTEXT_TURNS = 1  # turns shown before and after a highlighted one, when the audit sends turns


def findings_of(audit: Dict[str, Any]) -> List[Finding]:
    out = []
    for raw in audit.get("findings") or []:
        try:
            out.append(Finding.from_dict(raw))
        except (TypeError, ValueError):
            continue  # a finding this workbench cannot read is left out, not a broken page
    return out


def turns_by_case(audit: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    """The audited cases' turns, when the audit's JSON carries them (`cases: [{case_id,
    turns}]` or `transcripts: {case_id: turns}`); otherwise the findings' own turns suffice."""
    found: Dict[str, List[Dict[str, Any]]] = {}
    for case in audit.get("cases") or []:
        if isinstance(case, dict) and isinstance(case.get("turns"), list):
            found[str(case.get("case_id"))] = case["turns"]
    for case_id, turns in (audit.get("transcripts") or {}).items():
        if isinstance(turns, list):
            found[str(case_id)] = turns
    return found


def _when(iso: Optional[str]) -> str:
    from datetime import datetime

    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(TOKYO).strftime("%m-%d %H:%M")
    except ValueError:
        return ""


def _role(lang: str, role: str, speaker: Optional[str]) -> str:
    name = t(lang, f"role_{role}") if role in ("customer", "bot", "agent") else role
    return f"{name} · {speaker}" if speaker else name


def _turn(
    lang: str, index: int, role: str, speaker: Optional[str], text: str, when: str, marks: Sequence[Finding]
) -> str:
    """One turn of a case; a turn a finding names is a <mark> with the pattern beside it."""
    head = f'<span class="turn-who">#{index} {esc(_role(lang, role, speaker))}</span>'
    if when:
        head += f' <span class="time">{esc(when)}</span>'
    if marks:
        labels = " ".join(
            f'<span class="finding-tag" data-pattern="{esc(f.pattern)}">{esc(_in(pattern_label(f.pattern), lang))}</span>'
            for f in marks
        )
        return (
            f'<li class="turn turn-{esc(role)} flagged" data-turn="{index}">{head} {labels}'
            f"<p><mark>{esc(text)}</mark></p></li>"
        )
    return f'<li class="turn turn-{esc(role)}" data-turn="{index}">{head}<p>{esc(text)}</p></li>'


def _case_block(lang: str, case_id: str, findings: List[Finding], turns: Optional[List[Dict[str, Any]]]) -> str:
    by_turn: Dict[int, List[Finding]] = defaultdict(list)
    for f in findings:
        by_turn[f.turn_index].append(f)
    items: List[str] = []
    if turns:
        shown = sorted(
            {
                i
                for f in findings
                for i in range(f.turn_index - CONTEXT_TURNS, f.turn_index + CONTEXT_TURNS + 1)
                if 0 <= i < len(turns)
            }
        )
        previous = None
        for i in shown:
            if previous is not None and i > previous + 1:
                items.append('<li class="turn gap" aria-hidden="true">…</li>')
            turn = turns[i]
            if not isinstance(turn, dict):
                continue  # a turn the audit did not send (far from any finding)
            items.append(
                _turn(
                    lang,
                    i,
                    str(turn.get("role") or "bot"),
                    turn.get("agent_name"),
                    str(turn.get("text") or ""),
                    _when(turn.get("time")),
                    by_turn.get(i, []),
                )
            )
            previous = i
    else:
        for i in sorted(by_turn):
            first = by_turn[i][0]
            items.append(_turn(lang, i, first.role, first.speaker, first.turn_text, _when(first.turn_time), by_turn[i]))
    explanations = "".join(
        f'<li data-pattern="{esc(f.pattern)}"><strong>{esc(_in(pattern_label(f.pattern), lang))}</strong> '
        f"(#{f.turn_index}): {esc(f.explanation)}</li>"
        for f in sorted(findings, key=lambda f: (f.turn_index, f.pattern))
    )
    count = f"{len(findings)} {t(lang, 'n_findings')}"
    return (
        f'<article class="worst-case" data-case="{esc(case_id)}">'
        f'<h3><code>{esc(case_id)}</code> <span class="muted">{esc(count)}</span></h3>'
        f'<ul class="findings">{explanations}</ul><ol class="turns">{"".join(items)}</ol></article>'
    )


def _alerts_table(lang: str, alerts: List[RecurringAlertRow]) -> str:
    if not alerts:
        return f'<p class="notice" id="no-alerts">{esc(t(lang, "no_alerts"))}</p>'
    head = "".join(
        f'<th scope="col">{esc(t(lang, k))}</th>'
        for k in ("col_raised", "col_alert_kind", "col_shop", "col_item", "col_problem", "col_count", "col_cases")
    )
    rows = []
    for a in alerts:
        raised = a.raised_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if a.raised_at else ""
        rows.append(
            f'<tr data-alert="{esc(a.kind)}"><td class="time">{esc(raised)}</td>'
            f"<td>{esc(t(lang, 'alert_' + a.kind) if a.kind in ('same_item_at_shop', 'same_shop') else a.kind)}</td>"
            f"<td>{esc(a.shop or '')}</td><td>{esc(a.item or '')}</td>"
            f"<td>{esc(problem_name(a.problem, lang) if a.problem else '')}</td>"
            f'<td class="num">{a.count}</td>'
            f"<td>{' '.join(f'<code>{esc(c)}</code>' for c in a.case_ids)}</td></tr>"
        )
    return f'<table class="alerts" id="alerts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _follow_up_chart(lang: str, follow: FollowUps) -> str:
    items = [(t(lang, f"follow_{k}"), follow.counts.get(k, 0)) for k in FOLLOW_UP_OUTCOMES]
    colors = [charts.PALETTE[1], charts.PALETTE[0], charts.PALETTE[3], charts.PALETTE[6], charts.PALETTE[2]]
    return charts.bar_chart(t(lang, "follow_ups"), items, colors=colors, empty=t(lang, "no_data"))


async def quality_page(request: web.Request) -> web.Response:
    lang = lang_of(request)
    state = request.app[STATE]
    q = request.query
    preset = q.get("preset")
    lo, hi, shown_from, shown_to = period(preset, q.get("from"), q.get("to"))
    if preset is None and not q.get("from") and not q.get("to"):
        preset = "30"  # what period() shows by default
    title = t(lang, "quality_title")
    parts = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="muted">{esc(t(lang, "quality_intro"))}</p>',
        _period_form(lang, preset, shown_from, shown_to, action="/quality"),
    ]
    audit, alerts, follow, skipped = await asyncio.gather(
        state.ops.audit(lo, hi),
        state.ops.recurring_alerts(lo, hi),
        state.ops.follow_ups(lo, hi),
        state.ops.skipped_for_budget(lo, hi),  # the gateway decides the pushes, and counts skips
        return_exceptions=True,
    )
    if isinstance(follow, FollowUps) and isinstance(skipped, int):
        follow.counts["skipped_budget"] = follow.counts.get("skipped_budget", 0) + skipped
    if isinstance(audit, OpsUnavailable):  # no audit: say why; the rest may still answer
        parts.append(ops_error(lang, audit))
        audit = None
    elif isinstance(audit, BaseException):
        raise audit
    findings = findings_of(audit) if audit else []
    if audit is not None:
        cases_audited = audit.get("cases_audited")
        if cases_audited is None and isinstance(audit.get("cases"), list):
            cases_audited = len(audit["cases"])  # bot.audit's AuditResult lists the cases it read
        by_case: Dict[str, List[Finding]] = defaultdict(list)
        for f in findings:
            by_case[f.case_id].append(f)
        parts.append(
            f'<p class="totals"><span id="audited-count"><strong>{esc(cases_audited if cases_audited is not None else "-")}'
            f"</strong> {esc(t(lang, 'n_audited'))}</span> · "
            f'<span id="finding-count"><strong>{len(findings)}</strong> {esc(t(lang, "n_findings"))}</span> · '
            f'<span id="damaged-count"><strong>{len(by_case)}</strong> {esc(t(lang, "n_damaged"))}</span> · '
            f'<span class="muted">{esc(t(lang, "times_note"))}</span></p>'
        )
        counts = Counter(f.pattern for f in findings)
        order = list(PATTERNS) + sorted(p for p in counts if p not in PATTERNS)
        grid = [
            charts.bar_chart(
                t(lang, "findings_by_pattern"),
                [(_in(pattern_label(p), lang), counts.get(p, 0)) for p in order],
                colors=[charts.PALETTE[3] if counts.get(p) else charts.PALETTE[6] for p in order],
            ),
            charts.bar_chart(
                t(lang, "findings_by_role"),
                [(t(lang, f"role_{r}"), n) for r, n in Counter(f.role for f in findings).most_common()],
                empty=t(lang, "no_findings"),
            ),
        ]
        if not isinstance(follow, BaseException):
            grid.append(_follow_up_chart(lang, follow))
        parts.append(f'<div class="chart-grid">{"".join(grid)}</div>')
        parts.append(f'<h2 id="worst">{esc(t(lang, "worst_cases"))}</h2>')
        if not by_case:
            parts.append(f'<p class="notice" id="no-findings">{esc(t(lang, "no_findings"))}</p>')
        else:
            turns = turns_by_case(audit)
            worst = sorted(by_case.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:WORST_CASES]
            parts.append(
                '<div class="worst-cases">'
                + "".join(_case_block(lang, case_id, fs, turns.get(case_id)) for case_id, fs in worst)
                + "</div>"
            )
    parts.append(f'<h2 id="recurring">{esc(t(lang, "recurring_alerts"))}</h2>')
    if isinstance(alerts, OpsUnavailable):
        parts.append(ops_error(lang, alerts))
    elif isinstance(alerts, BaseException):
        raise alerts
    else:
        parts.append(_alerts_table(lang, alerts))
    parts.append(f'<h2 id="follow-ups">{esc(t(lang, "follow_ups"))}</h2>')
    if isinstance(follow, OpsUnavailable):
        parts.append(ops_error(lang, follow))
    elif isinstance(follow, BaseException):
        raise follow
    else:
        listed = " · ".join(
            f'<span data-outcome="{esc(k)}">{esc(t(lang, "follow_" + k))} <strong>{follow.counts.get(k, 0)}</strong></span>'
            for k in FOLLOW_UP_OUTCOMES
        )
        note = t(lang, "skipped_note") if isinstance(skipped, int) else t(lang, "skipped_unknown")
        parts.append(f'<p class="totals" id="follow-up-counts">{listed} · <span class="muted">{esc(note)}</span></p>')
        if audit is None:  # the chart is in the grid when the audit answered
            parts.append(_follow_up_chart(lang, follow))
    return html_response(request, layout(lang, "quality", title, "\n".join(parts), q))


__all__ = ["findings_of", "quality_page", "turns_by_case"]
