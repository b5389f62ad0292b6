"""The weekly quality-audit report for product owners: one HTML file (charts embedded as
PNG, no other file needed) and the same in Markdown, from an AuditResult.

What it shows: how many closed cases were read and how many show a pattern; findings per
pattern and per day (charts and tables); the worst cases, each finding with the turn that
shows it (scrubbed of phone numbers, e-mail addresses and the customer's name); then
every finding, grouped by pattern.
"""

from __future__ import annotations

import base64
import io
from collections import Counter, defaultdict
from datetime import date, timedelta
from html import escape
from typing import Dict, List, Sequence, Tuple
from zoneinfo import ZoneInfo

from bot.audit import AuditedCase, AuditResult
from contracts.audit import PATTERNS, Finding, pattern_label

WORST_CASES = 10
FINDINGS_PER_PATTERN = 50  # in the "every finding" section; the rest are counted
ROLE_LABELS = {"customer": "customer", "bot": "bot", "agent": "agent"}
COLOURS = ("#c0392b", "#d35400", "#f39c12", "#16a085", "#2980b9", "#8e44ad", "#7f8c8d")


def days_of(result: AuditResult, zone: ZoneInfo) -> List[date]:
    first = result.start.astimezone(zone).date()
    last = (result.end - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def findings_per_day(result: AuditResult, zone: ZoneInfo) -> Dict[date, Counter]:
    """Findings per closing day of their case (in the shop's time zone), per pattern."""
    closed = {c.case_id: c.closed_at.astimezone(zone).date() for c in result.cases}
    per_day: Dict[date, Counter] = {day: Counter() for day in days_of(result, zone)}
    for finding in result.findings:
        day = closed.get(finding.case_id)
        if day in per_day:
            per_day[day][finding.pattern] += 1
    return per_day


def worst_cases(result: AuditResult, limit: int = WORST_CASES) -> List[AuditedCase]:
    """The cases with the most findings (then the most kinds of finding, then the latest)."""
    kinds: Dict[str, set] = defaultdict(set)
    for f in result.findings:
        kinds[f.case_id].add(f.pattern)
    ranked = [c for c in result.cases if c.findings]
    ranked.sort(key=lambda c: (-c.findings, -len(kinds[c.case_id]), -c.closed_at.timestamp(), c.case_id))
    return ranked[:limit]


def _findings_of(result: AuditResult, case_id: str) -> List[Finding]:
    return [f for f in result.findings if f.case_id == case_id]


def _who(finding: Finding) -> str:
    role = ROLE_LABELS.get(finding.role, finding.role)
    return f"{role} {finding.speaker}" if finding.speaker else role


def _period(result: AuditResult, zone: ZoneInfo) -> str:
    days = days_of(result, zone)
    return f"{days[0].isoformat()} – {days[-1].isoformat()}" if days else ""


# --- charts ---------------------------------------------------------------------------------
def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(result: AuditResult, zone: ZoneInfo) -> Tuple[str, str]:
    """(findings per pattern, findings per day) as base64 PNGs. English labels: the
    charts' font has no Japanese; the tables beside them are bilingual."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    from matplotlib import pyplot as plt

    names = list(PATTERNS)
    labels = [pattern_label(n).en for n in names]
    figure, axes = plt.subplots(figsize=(7.5, 3.4))
    values = [result.counts.get(n, 0) for n in names]
    bars = axes.barh(labels[::-1], values[::-1], color=list(COLOURS)[::-1])
    axes.bar_label(bars, padding=3)
    axes.set_xlabel("findings")
    axes.set_title("Findings per pattern")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    per_pattern = _png(figure)
    plt.close(figure)

    per_day = findings_per_day(result, zone)
    days = list(per_day)
    figure, axes = plt.subplots(figsize=(7.5, 3.4))
    bottom = [0] * len(days)
    for colour, name, label in zip(COLOURS, names, labels):
        heights = [per_day[d][name] for d in days]
        if any(heights):
            axes.bar([d.strftime("%a %m-%d") for d in days], heights, bottom=bottom, color=colour, label=label)
            bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_ylabel("findings")
    axes.set_title("Findings per day (by the day the case closed)")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    if any(bottom):
        axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    daily = _png(figure)
    plt.close(figure)
    return per_pattern, daily


# --- Markdown -------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(result: AuditResult, zone: ZoneInfo = ZoneInfo("Asia/Tokyo")) -> str:
    with_findings = sum(1 for c in result.cases if c.findings)
    lines = [
        f"# Quality audit / 品質監査: {_period(result, zone)}",
        "",
        f"- Closed cases audited / 対象の完了案件: **{len(result.cases)}**",
        f"- Cases with a finding / 指摘のある案件: **{with_findings}**",
        f"- Findings / 指摘: **{len(result.findings)}**",
    ]
    if result.without_transcript:
        lines.append(f"- Cases with no transcript kept (nothing to read) / 会話記録なし: {result.without_transcript}")
    lines += ["", "## Findings per pattern / パターン別", "", "| pattern | パターン | findings |", "|---|---|---:|"]
    for name in PATTERNS:
        label = pattern_label(name)
        lines.append(f"| {label.en} | {label.ja} | {result.counts.get(name, 0)} |")
    per_day = findings_per_day(result, zone)
    lines += ["", "## Findings per day / 日別", "", "| day | findings |", "|---|---:|"]
    lines += [f"| {day.isoformat()} ({day:%a}) | {sum(c.values())} |" for day, c in per_day.items()]
    lines += ["", "## Worst cases / 指摘の多い案件", ""]
    worst = worst_cases(result)
    if not worst:
        lines.append("No findings in this period. / この期間の指摘はありません。")
    for case in worst:
        lines += [
            f"### {case.case_id}: {case.findings} finding(s)",
            "",
            f"closed {case.closed_at.astimezone(zone):%Y-%m-%d %H:%M}, {case.language or '?'}, {case.turns} turns",
            "",
            "| pattern | turn | who | what was said | why |",
            "|---|---:|---|---|---|",
        ]
        for f in _findings_of(result, case.case_id):
            lines.append(
                f"| {pattern_label(f.pattern).en} | {f.turn_index} | {_md_cell(_who(f))} | "
                f"{_md_cell(f.turn_text)} | {_md_cell(f.explanation)} |"
            )
        lines.append("")
    lines += ["## Every finding / 全指摘", ""]
    for name in PATTERNS:
        found = [f for f in result.findings if f.pattern == name]
        if not found:
            continue
        lines += [f"### {pattern_label(name).bilingual()} ({len(found)})", ""]
        for f in found[:FINDINGS_PER_PATTERN]:
            lines.append(f"- {f.case_id} turn {f.turn_index} ({_who(f)}): “{_md_cell(f.turn_text)}”: {f.explanation}")
        if len(found) > FINDINGS_PER_PATTERN:
            lines.append(f"- … and {len(found) - FINDINGS_PER_PATTERN} more")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --- HTML -------------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, "Noto Sans", "DejaVu Sans", "Noto Sans CJK JP", "IPAPGothic", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.5; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.summary { display: flex; gap: 1rem; margin: 1rem 0 1.5rem; }
.tile { background: #f4f6f8; border-radius: 8px; padding: .8rem 1.2rem; min-width: 9rem; }
.tile b { display: block; font-size: 1.8rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.charts figure { margin: 0; flex: 1 1 480px; }
.charts img { max-width: 100%; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.2rem; font-size: .92rem; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #fafafa; }
td.n { text-align: right; }
.case { border: 1px solid #e3e3e3; border-radius: 8px; padding: .6rem 1rem; margin-bottom: 1rem; }
.case h3 { margin: .2rem 0; font-size: 1.05rem; }
.meta { color: #666; font-size: .85rem; }
.said { background: #fff8e6; border-left: 3px solid #f39c12; padding: .1rem .5rem; }
.pattern { font-weight: 600; white-space: nowrap; }
"""


def render_html(result: AuditResult, zone: ZoneInfo = ZoneInfo("Asia/Tokyo")) -> str:
    per_pattern, daily = charts(result, zone)
    with_findings = sum(1 for c in result.cases if c.findings)
    e = escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Quality audit {e(_period(result, zone))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Quality audit / 品質監査</h1><p class='meta'>{e(_period(result, zone))} "
        f"(cases closed in this period; patterns: bot/audit.yml)</p>",
        '<div class="summary">',
        f'<div class="tile" id="cases-audited"><b>{len(result.cases)}</b>closed cases audited</div>',
        f'<div class="tile" id="cases-with-findings"><b>{with_findings}</b>cases with a finding</div>',
        f'<div class="tile" id="findings-total"><b>{len(result.findings)}</b>findings</div>',
    ]
    if result.without_transcript:
        parts.append(f'<div class="tile"><b>{result.without_transcript}</b>cases without a transcript</div>')
    parts += [
        "</div>",
        '<section class="charts">',
        f'<figure><img alt="Findings per pattern" src="data:image/png;base64,{per_pattern}"></figure>',
        f'<figure><img alt="Findings per day" src="data:image/png;base64,{daily}"></figure>',
        "</section>",
        "<h2>Findings per pattern / パターン別</h2>",
        '<table id="per-pattern"><tr><th>pattern</th><th>パターン</th><th>findings</th></tr>',
    ]
    for name in PATTERNS:
        label = pattern_label(name)
        parts.append(
            f'<tr data-pattern="{e(name)}"><td>{e(label.en)}</td><td>{e(label.ja)}</td>'
            f'<td class="n">{result.counts.get(name, 0)}</td></tr>'
        )
    parts += ["</table>", "<h2>Worst cases / 指摘の多い案件</h2>"]
    worst = worst_cases(result)
    if not worst:
        parts.append("<p>No findings in this period. / この期間の指摘はありません。</p>")
    for case in worst:
        parts += [
            f'<div class="case" id="case-{e(case.case_id)}"><h3>{e(case.case_id)}: {case.findings} finding(s)</h3>',
            f'<p class="meta">closed {case.closed_at.astimezone(zone):%Y-%m-%d %H:%M} · '
            f"{e(case.language or '?')} · {case.turns} turns</p>",
            _findings_table(_findings_of(result, case.case_id)),
            "</div>",
        ]
    parts.append("<h2>Every finding / 全指摘</h2>")
    for name in PATTERNS:
        found = [f for f in result.findings if f.pattern == name]
        if not found:
            continue
        parts.append(f"<h3>{e(pattern_label(name).bilingual())} ({len(found)})</h3>")
        parts.append(_findings_table(found[:FINDINGS_PER_PATTERN], with_case=True))
        if len(found) > FINDINGS_PER_PATTERN:
            parts.append(f"<p>… and {len(found) - FINDINGS_PER_PATTERN} more</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _findings_table(findings: Sequence[Finding], with_case: bool = False) -> str:
    e = escape
    head = "<th>case</th>" if with_case else ""
    rows = [f"<table><tr>{head}<th>pattern</th><th>turn</th><th>who</th><th>what was said</th><th>why</th></tr>"]
    for f in findings:
        case = f"<td>{e(f.case_id)}</td>" if with_case else ""
        rows.append(
            f'<tr class="finding" data-pattern="{e(f.pattern)}">{case}'
            f'<td class="pattern">{e(pattern_label(f.pattern).en)}</td><td class="n">{f.turn_index}</td>'
            f'<td>{e(_who(f))}</td><td class="said">{e(f.turn_text)}</td><td>{e(f.explanation)}</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)
