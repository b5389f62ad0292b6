"""The cases page in a browser, over an orders database filled through bot/store's own
repository (as the action server fills it): cases by problem, remedies by kind (a real
fix vs a coupon), handoff rate and reasons, time to resolution, satisfaction, and the
period controls (presets and from/to dates). The workbench reads the rows over HTTP from
an action server's ops API on that database (bot/server/ops.py); no gateway answers, so the
page says the database alone answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from bot.remedy_policy.types import RemedyOffer
from bot.store.db import init_db, make_engine
from bot.store.repository import OrdersRepository
from devkit import stack

DEMO = "U00000000000000000000000000000001"
TOKYO = timezone(timedelta(hours=9))


@pytest.fixture
def filled_db(tmp_path):
    """Six cases: three fixed by the bot (one with a coupon), two handed off, one old."""
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    init_db(engine, now)
    repo = OrdersRepository(engine)
    customer = repo.customer_by_line_id(DEMO).id

    def bot_case(days_ago: float, problem: str, order: str, kind: str, amount: int, minutes: float) -> str:
        opened = now - timedelta(days=days_ago)
        case = repo.open_claim(customer, order, problem, [], opened)
        repo.apply_remedy(case, RemedyOffer(kind, amount), opened + timedelta(minutes=minutes))
        return case

    bot_case(2, "missing_item", "1001", "send_item", 0, 3)
    ten_days = bot_case(10, "missing_item", "1001", "refund_item", 80, 2)
    bot_case(1, "damaged_item", "1005", "coupon", 300, 4)
    bot_case(45, "wrong_item", "1003", "refund_item", 1200, 6)  # outside the last 30 days
    opened = now - timedelta(hours=3)
    late = repo.open_claim(customer, "1004", "late_delivery", [], opened)
    repo.record_handoff(late, customer, "frustration", {"problem": "late_delivery"}, opened)
    repo.record_case_outcome(
        late,
        resolved_by="Alex Kim",
        resolved_at=opened + timedelta(minutes=25),
        satisfaction="not_satisfied",
        answered_at=opened + timedelta(minutes=26),
    )
    # a person asked for before any problem was named: a handoff without a claim, still open
    repo.record_handoff("C-20990101-XXXX", customer, "request_human", {"problem": None}, now - timedelta(hours=1))
    engine.dispose()
    return {
        "url": url,
        "ten_days_ago": (now - timedelta(days=10)).astimezone(TOKYO).date(),
        "ten_days_case": ten_days,
        "late_case": late,
    }


def totals(page):
    return (page.locator("#case-count strong").inner_text(), page.locator("#handoff-count").inner_text())


@pytest.fixture
def ops_server(filled_db, tmp_path):
    """An action server on the filled database: the workbench reads its ops API."""
    server = stack.start_action_server(tmp_path, env={"ORDERS_DATABASE_URL": filled_db["url"]})
    yield server
    server.stop()


def test_the_cases_page_plots_how_cases_went_over_the_chosen_period(
    start_workbench, filled_db, ops_server, page, screenshot
):
    no_gateway = f"http://127.0.0.1:{stack.free_port()}"  # nothing listens: the database alone
    wb = start_workbench(["--action-server", ops_server.url, "--gateway", no_gateway])
    page.goto(f"{wb.url}/cases?lang=ja")  # the default period: the last 30 days
    count, handoffs = totals(page)
    assert count == "5" and "2 (40%)" in handoffs
    expect(page.locator(".totals")).to_contain_text("データベースのみ")

    def chart(title):
        return page.locator("figure.chart").filter(has_text=title).locator("table.sr-only")

    expect(chart("問題の種類別").locator("tr").filter(has_text="入っていない")).to_contain_text("2")
    # remedies: the real fixes and the coupon, each marked as which it is
    remedies = chart("適用した対応")
    expect(remedies.locator("tr").filter(has_text="商品を届ける（実際の対応）")).to_contain_text("1")
    expect(remedies.locator("tr").filter(has_text="商品代を返金（実際の対応）")).to_contain_text("1")
    expect(remedies.locator("tr").filter(has_text="クーポン（次回用クーポン）")).to_contain_text("1")
    expect(chart("担当者への引き継ぎ率").locator("tr").filter(has_text="引き継ぎ")).to_contain_text("2 (40%)")
    reasons = chart("引き継ぎの理由")
    expect(reasons).to_contain_text("不満が強い")
    expect(reasons).to_contain_text("担当者希望")
    expect(page.locator("figure.chart figcaption").filter(has_text="ボットが対応")).to_contain_text(
        "中央値 3.0 分 (n=3)"
    )
    expect(page.locator("figure.chart figcaption").filter(has_text="担当者が対応")).to_contain_text(
        "中央値 25.0 分 (n=1)"
    )
    expect(chart("満足度の回答").locator("tr").filter(has_text="解決していない")).to_contain_text("1")
    late = page.locator(f'tr[data-case="{filled_db["late_case"]}"]')
    for expected in ("配達遅れ", "解決済み", "不満が強い", "Alex Kim", "25.0 分", "解決していない"):
        expect(late).to_contain_text(expected)
    expect(page.locator('tr[data-case="C-20990101-XXXX"]')).to_contain_text("問題の特定前")
    screenshot(page, "cases-period", full_page=True)

    # presets: the last 7 days leave out the 10-day-old case; "all" brings back the old one
    page.get_by_role("link", name="過去7日").click()
    assert totals(page)[0] == "4"
    expect(page.locator(f'tr[data-case="{filled_db["ten_days_case"]}"]')).to_have_count(0)
    page.get_by_role("link", name="全期間").click()
    assert totals(page)[0] == "6"
    # from/to: just the day of the 10-day-old case
    day = filled_db["ten_days_ago"].isoformat()
    page.goto(f"{wb.url}/cases?from={day}&to={day}")
    assert totals(page)[0] == "1"
    expect(page.locator(f'tr[data-case="{filled_db["ten_days_case"]}"]')).to_contain_text("¥80")
    expect(page.locator('input[name="from"]')).to_have_value(day)
    # the same numbers in English
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Cases")
    expect(page.locator(f'tr[data-case="{filled_db["ten_days_case"]}"]')).to_contain_text("Refund the item ¥80")
    expect(page.locator('input[name="from"]')).to_have_value(day)  # the toggle keeps the period
