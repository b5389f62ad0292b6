"""The weekly quality-audit report (`make audit-report`) as a product owner opens it: a
week of seeded conversations (tests/bot/audit_conversations.py, run in the bot's
environment through the real action-server code) audited by scripts/audit_report.py,
whose one HTML file is opened in headless Chromium. Saves
results/screenshots/audit-report.png (the summary and charts) and
audit-report-cases.png (the worst cases, with the turns that show each finding).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from devkit import stack

ROOT = Path(__file__).resolve().parents[3]
FIRST_DAY, LAST_DAY = "2026-11-19", "2026-11-25"  # the seeded week (audit_conversations.NOW)


def bot_python(*args: str, env: dict | None = None) -> str:
    if not stack.BOT_PYTHON.exists():
        pytest.fail(f"{stack.BOT_PYTHON} is missing: make install", pytrace=False)
    done = subprocess.run(
        [str(stack.BOT_PYTHON), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audit-report")
    url = f"sqlite:///{folder / 'orders.db'}"
    bot_python("-m", "tests.bot.audit_conversations", url)
    out = folder / "audit"
    printed = bot_python(
        "-m",
        "scripts.audit_report",
        "--from",
        FIRST_DAY,
        "--to",
        LAST_DAY,
        "--out-dir",
        str(out),
        env={**os.environ, "ORDERS_DATABASE_URL": url},
    )
    assert "closed cases" in printed
    return out / "report.html"


def test_the_weekly_report_shows_the_patterns_per_day_and_the_turns_that_show_them(report, page, screenshot):
    page.goto(report.as_uri())
    expect(page.locator("h1")).to_have_text("Quality audit / 品質監査")
    expect(page.locator(".meta").first).to_contain_text(f"{FIRST_DAY} – {LAST_DAY}")
    audited = int(page.locator("#cases-audited b").inner_text())
    damaged = int(page.locator("#cases-with-findings b").inner_text())
    found = int(page.locator("#findings-total b").inner_text())
    assert audited > damaged > 0 and found > damaged  # clean cases too; the worst has several
    # both charts are inside the one file and drawn
    for name in ("Findings per pattern", "Findings per day"):
        chart = page.get_by_role("img", name=name)
        expect(chart).to_be_visible()
        assert chart.evaluate("img => img.complete && img.naturalWidth > 400")
    rows = page.locator("#per-pattern tr[data-pattern]")
    expect(rows).to_have_count(7)
    expect(rows.filter(has_text="次の案内のない「できません」")).to_be_visible()
    counted = sum(int(rows.nth(i).locator("td.n").inner_text()) for i in range(7))
    assert counted == found
    screenshot(page, "audit-report")

    # the worst cases: each finding with the turn that shows it, as it was said, scrubbed
    cases = page.locator(".case")
    expect(cases.first).to_be_visible()
    worst = cases.first
    expect(worst.locator("h3")).to_contain_text("4 finding(s)")  # the worst first
    bare = worst.locator('tr.finding[data-pattern="bare_cant"]')
    expect(bare.locator("td.said")).to_have_text("Sorry, we can't do anything about a missing drink.")
    expect(bare).to_contain_text("agent Alex Kim")
    expect(worst.locator('tr.finding[data-pattern="asked_again"] td.said')).to_have_text("What is the order number?")
    asked = page.locator('tr.finding[data-pattern="asked_again"]').filter(has_text="様").first  # every finding
    expect(asked.locator("td.said")).to_have_text("<name>様、恐れ入りますが注文番号を教えていただけますか？")
    expect(asked).to_contain_text("<phone>")  # the first message, quoted in the why
    expect(page.locator("body")).not_to_contain_text("090-1234-5678")
    page.get_by_role("heading", name="Worst cases / 指摘の多い案件").evaluate("h => h.scrollIntoView({block: 'start'})")
    screenshot(page, "audit-report-cases")
