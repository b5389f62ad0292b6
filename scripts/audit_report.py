"""The weekly quality-audit report for product owners.

    make audit-report [FROM=2026-11-24 TO=2026-11-30]
    .venv-bot/bin/python -m scripts.audit_report [--from DAY] [--to DAY] [--out-dir DIR]

Reads every case closed in the period from the orders database (ORDERS_DATABASE_URL, or
the demo SQLite file: bot/store/db.py), audits its bot and agent turns against the
patterns of bot/audit.yml (bot/audit/) and writes, in results/audit/:
  report.html    one file, charts embedded: findings per pattern and per day, the worst
                 cases with the turns that show each finding
  report.md      the same in Markdown
  findings.json  the findings (contracts.audit.Finding) for other tools
FROM and TO are days in the shop's time zone (Asia/Tokyo), both included; without them
the report covers the last 7 days up to now. A mistake in bot/audit.yml stops it with the
file's name and the line (exit status 1). Texts in the report are scrubbed of phone
numbers, e-mail addresses and the customer's name; nothing of what was said is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import List, Optional, Tuple
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "results" / "audit"
ZONE = ZoneInfo("Asia/Tokyo")
DEFAULT_DAYS = 7


def period(first: Optional[str], last: Optional[str], now: datetime) -> Tuple[datetime, datetime]:
    """[start, end) of the report: whole days FROM..TO in Tokyo, or the last 7 days."""
    if not first and not last:
        return now - timedelta(days=DEFAULT_DAYS), now
    last_day = date.fromisoformat(last) if last else now.astimezone(ZONE).date()
    first_day = date.fromisoformat(first) if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise ValueError(f"FROM ({first_day}) is after TO ({last_day})")
    start = datetime.combine(first_day, time(0), ZONE)
    end = datetime.combine(last_day + timedelta(days=1), time(0), ZONE)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="first", help="first day, YYYY-MM-DD (Tokyo)")
    parser.add_argument("--to", dest="last", help="last day, YYYY-MM-DD (Tokyo), included")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--database-url", help="default: ORDERS_DATABASE_URL or the demo SQLite file")
    parser.add_argument("--patterns", type=Path, help="default: AUDIT_PATTERNS_PATH or bot/audit.yml")
    args = parser.parse_args(argv)

    from bot.audit import AuditPatternsError, audit_period, load_patterns
    from bot.audit.report import render_html, render_markdown
    from bot.store import database_url, make_engine
    from bot.store.models import Base

    try:
        start, end = period(args.first, args.last, datetime.now(timezone.utc))
    except ValueError as error:
        print(f"audit-report: {error}", file=sys.stderr)
        return 2
    try:
        patterns = load_patterns(args.patterns)
    except AuditPatternsError as error:
        print(f"audit-report: {error}", file=sys.stderr)
        return 1
    engine = make_engine(args.database_url or database_url())
    try:
        # an older database may not have case_transcripts yet (the action server adds it)
        Base.metadata.create_all(engine, checkfirst=True)
        result = audit_period(engine, start, end, patterns)
    finally:
        engine.dispose()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "report.html").write_text(render_html(result, ZONE), encoding="utf-8")
    (args.out_dir / "report.md").write_text(render_markdown(result, ZONE), encoding="utf-8")
    (args.out_dir / "findings.json").write_text(
        json.dumps(result.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    counts = ", ".join(f"{name} {n}" for name, n in result.counts.items() if n) or "none"
    print(
        f"audit-report: {len(result.cases)} closed cases, {len(result.findings)} findings ({counts}) "
        f"-> {args.out_dir / 'report.html'}, report.md, findings.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
