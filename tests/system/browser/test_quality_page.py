"""The "CS damage" page (/quality) in a browser, over an orders database with known damage
(tests/system/browser/quality_seed.py: a coupon-only offer and a bare "can't" by the bot; a case
handed over twice with an agent's bare "can't" and "not solved"; a clean case; an alert of
the egg missing three times at one shop; follow-ups answered "arrived", "not arrived" and
not yet), read by the workbench over HTTP from an action server's ops API on that database
(the audit is bot.audit's), and the follow-ups the gateway skipped for the push budget from
a real gateway's ops API (its counter in redis-server). Saves
results/screenshots/quality-page.png.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import redis
from playwright.sync_api import expect

from devkit import stack
from tests.support.quality_seed import seed

TOKYO = timezone(timedelta(hours=9))


@pytest.fixture
def damaged(tmp_path):
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    cases = seed(url)
    server = stack.start_action_server(tmp_path, env={"ORDERS_DATABASE_URL": url})
    yield server, cases
    server.stop()


@pytest.fixture
def gateway_with_skips(redis_url, damaged, tmp_path):
    """A gateway (its own process; Rasa need not answer for its ops routes) whose push
    counter says this month's budget made it skip follow-ups."""
    month = datetime.now(TOKYO).strftime("%Y-%m")
    r = redis.Redis.from_url(redis_url)
    r.incrby(f"gw:followup:skipped:{month}", 2)
    skipped = int(r.get(f"gw:followup:skipped:{month}"))
    r.close()
    port = stack.free_port()
    env = stack.gateway_env(
        port,
        line_api_url="http://127.0.0.1:9",
        redis_url=redis_url,
        rasa_url="http://127.0.0.1:9",
        rasa_token="quality-test-rasa-token",
        actions_url=damaged[0].url,
        attachments_dir=tmp_path / "attachments",
        channel_secret="quality-test-channel-secret",
        channel_access_token="quality-test-access-token",
    )
    gateway = stack.GatewayProcess(env, port, tmp_path / "gateway.log").start(wait=False)
    stack.wait_http(f"{gateway.url}/livez", 60, gateway.process, gateway.log)
    yield gateway, skipped
    gateway.stop()


def test_the_quality_page_shows_the_damage_by_pattern_with_the_turns(
    start_workbench, damaged, gateway_with_skips, page, screenshot
):
    server, cases = damaged
    gateway, skipped = gateway_with_skips
    wb = start_workbench(["--action-server", server.url, "--gateway", gateway.url])
    page.goto(f"{wb.url}/quality?lang=ja")  # the default period: the last 30 days
    expect(page.get_by_role("link", name="CS ダメージ")).to_have_attribute("aria-current", "page")
    expect(page.locator("#audited-count strong")).to_have_text("3")
    expect(page.locator("#finding-count strong")).to_have_text("5")
    expect(page.locator("#damaged-count strong")).to_have_text("2")  # the clean case has none

    by_pattern = page.locator("figure.chart").filter(has_text="パターン別の指摘").locator("table.sr-only")
    expect(by_pattern.locator("tr").filter(has_text="クーポンが最初・唯一の提案")).to_contain_text("1")
    expect(by_pattern.locator("tr").filter(has_text="次の案内のない「できません」")).to_contain_text("2")
    expect(by_pattern.locator("tr").filter(has_text="たらい回し")).to_contain_text("1")
    expect(by_pattern.locator("tr").filter(has_text="解決していないとの回答")).to_contain_text("1")
    expect(by_pattern.locator("tr").filter(has_text="担当者の初回返信がSLA超過")).to_contain_text("0")

    # the worst cases, most findings first; each finding's turn highlighted where it was said
    worst = page.locator("article.worst-case")
    expect(worst).to_have_count(2)
    expect(worst.first).to_have_attribute("data-case", cases["passed"])
    coupon = page.locator(f'article.worst-case[data-case="{cases["coupon"]}"]')
    offer = coupon.locator('li.turn.flagged[data-turn="1"]')
    expect(offer.locator("mark")).to_contain_text("300円クーポン")
    expect(offer.locator(".finding-tag")).to_have_text("クーポンが最初・唯一の提案")
    expect(coupon.locator('li.turn.flagged[data-turn="3"] mark')).to_contain_text("お届けはできません")
    expect(coupon.locator('li.turn:not(.flagged)[data-turn="2"]')).to_contain_text("卵を今すぐ届けてほしい")
    agent = page.locator(f'article.worst-case[data-case="{cases["passed"]}"] li.turn.flagged[data-turn="2"]')
    expect(agent).to_contain_text("担当者 · Sam Lee")
    expect(agent.locator("mark")).to_contain_text("we can't do anything")
    expect(page.locator(f'article.worst-case[data-case="{cases["clean"]}"]')).to_have_count(0)

    # the recurring-problem alert, and what the follow-ups came to
    alert = page.locator("#alerts tr[data-alert='same_item_at_shop']")
    for expected in ("同じ店舗で同じ商品", "とり松", "別卵", "入っていない", "3", cases["coupon"]):
        expect(alert).to_contain_text(expected)
    counts = page.locator("#follow-up-counts")
    for outcome, n in (("asked", 3), ("arrived", 1), ("not_arrived", 1), ("no_answer", 1), ("skipped_budget", skipped)):
        expect(counts.locator(f'[data-outcome="{outcome}"] strong')).to_have_text(str(n))
    expect(counts).to_contain_text("月ごと")  # the gateway counts skips per month
    screenshot(page, "quality-page", full_page=True)

    # the same period form as the cases page: a day without cases shows no damage
    long_ago = (datetime.now(timezone.utc) - timedelta(days=20)).astimezone(TOKYO).date().isoformat()
    page.goto(f"{wb.url}/quality?from={long_ago}&to={long_ago}")
    expect(page.locator("#finding-count strong")).to_have_text("0")
    expect(page.locator("#no-findings")).to_be_visible()
    expect(page.locator("#no-alerts")).to_be_visible()
    page.get_by_role("link", name="全期間").click()
    expect(page.locator("#finding-count strong")).to_have_text("5")
    # in English
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("CS damage (the quality audit)")
    expect(offer.locator(".finding-tag")).to_have_text("Coupon as the first or only remedy")
    expect(page.locator("#alerts")).to_contain_text("Same item at one shop")
