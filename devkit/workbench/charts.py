"""Small SVG charts drawn on the server (no plotting library, no script in the browser).

Each chart is a `<figure>` with an SVG (role="img", a <title>) and the same numbers as a
visually hidden table, so screen readers and text searches see the values too.
"""

from __future__ import annotations

import unicodedata
from typing import Optional, Sequence, Tuple

from devkit.workbench.pages import esc

PALETTE = ("#06c755", "#4a90d9", "#e8a33d", "#d9534f", "#8e6bbf", "#3bb3a8", "#9aa5b1")
WIDTH = 520


def _figure(title: str, svg: str, rows: Sequence[Tuple[str, str]], note: str = "") -> str:
    table = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    caption = f"<figcaption>{esc(title)}{(' — ' + esc(note)) if note else ''}</figcaption>"
    return (
        f'<figure class="chart">{caption}{svg}'
        f'<table class="sr-only"><caption>{esc(title)}</caption>{table}</table></figure>'
    )


def bar_chart(
    title: str,
    items: Sequence[Tuple[str, float]],
    colors: Optional[Sequence[str]] = None,
    unit: str = "",
    empty: str = "-",
) -> str:
    """Horizontal bars, one per (label, value), biggest scale = the largest value."""
    if not items:
        svg = (
            f'<svg role="img" viewBox="0 0 {WIDTH} 40" width="{WIDTH}" height="40">'
            f'<title>{esc(title)}</title><text x="8" y="25" class="muted">{esc(empty)}</text></svg>'
        )
        return _figure(title, svg, [])
    # room for the longest label (a wide Japanese one is cut off otherwise), within bounds
    label_w = min(max(max(_text_width(label) for label, _ in items) + 16, 120), WIDTH // 2)
    row_h, pad = 28, 6
    bar_max = WIDTH - label_w - 60
    top = max(v for _, v in items) or 1
    height = pad * 2 + row_h * len(items)
    parts = [
        f'<svg role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"><title>{esc(title)}</title>'
    ]
    for i, (label, value) in enumerate(items):
        y = pad + i * row_h
        w = max(bar_max * value / top, 2 if value else 0)
        color = colors[i] if colors and i < len(colors) else PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" class="label">{esc(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" rx="3" fill="{color}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 18}" class="value">{esc(_num(value))}{esc(unit)}</text>'
        )
    parts.append("</svg>")
    return _figure(title, "".join(parts), [(k, f"{_num(v)}{unit}") for k, v in items])


def share_bar(title: str, parts_in: Sequence[Tuple[str, float]], note: str = "") -> str:
    """One bar split into parts (e.g. handed off vs bot only), with percentages and a legend."""
    total = sum(v for _, v in parts_in)
    height = 78
    parts = [
        f'<svg role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"><title>{esc(title)}</title>'
    ]
    x, bar_w = 8.0, WIDTH - 16
    rows = []
    for i, (label, value) in enumerate(parts_in):
        share = value / total if total else 0
        w = bar_w * share
        color = PALETTE[i % len(PALETTE)]
        if w:
            parts.append(f'<rect x="{x:.1f}" y="8" width="{w:.1f}" height="28" fill="{color}"/>')
            if w > 44:
                parts.append(f'<text x="{x + w / 2:.1f}" y="27" text-anchor="middle" class="on-bar">{share:.0%}</text>')
        x += w
        lx = 8 + i * 200
        parts.append(
            f'<rect x="{lx}" y="50" width="12" height="12" fill="{color}"/>'
            f'<text x="{lx + 18}" y="61" class="label">{esc(label)}: {esc(_num(value))}</text>'
        )
        rows.append((label, f"{_num(value)} ({share:.0%})"))
    if not total:
        parts.append(f'<rect x="8" y="8" width="{bar_w}" height="28" fill="#e5e7eb"/>')
    parts.append("</svg>")
    return _figure(title, "".join(parts), rows, note)


def column_chart(title: str, items: Sequence[Tuple[str, float]], note: str = "") -> str:
    """Vertical bars (a histogram's buckets), labels under them."""
    height, base, top_pad = 170, 140, 18
    n = max(len(items), 1)
    slot = (WIDTH - 16) / n
    top = max([v for _, v in items] + [1])
    parts = [
        f'<svg role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
        f"<title>{esc(title)}</title>"
        f'<line x1="8" y1="{base}" x2="{WIDTH - 8}" y2="{base}" class="axis"/>'
    ]
    for i, (label, value) in enumerate(items):
        h = (base - top_pad) * value / top
        x = 8 + i * slot
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'rx="2" fill="{PALETTE[1]}"/>'
            f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" class="tick">{esc(label)}</text>'
        )
        if value:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                f'class="value">{esc(_num(value))}</text>'
            )
    parts.append("</svg>")
    return _figure(title, "".join(parts), [(k, _num(v)) for k, v in items], note)


def _text_width(text: str) -> float:
    """Roughly how wide a label is drawn, in px: full-width (CJK) characters count double."""
    return sum(13.0 if unicodedata.east_asian_width(c) in "WF" else 7.0 for c in text)


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


__all__ = ["PALETTE", "bar_chart", "column_chart", "share_bar"]
