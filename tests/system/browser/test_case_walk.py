"""A complete case in the browser, through the real gateway, Rasa, action server and
redis-server (LINE and Slack emulated):

the customer (デモ 太郎) reports the missing egg on the phone, taps through the order and
the item, refuses the remedies angrily -> the case card arrives in the agent pane -> the
agent claims it and replies in the thread -> the reply shows on the phone under the
agent's name -> the agent resolves -> the customer answers the satisfaction question ->
the cases page counts the case, its handoff, its agent and the answer.
"""

from __future__ import annotations

import pytest
import redis
from playwright.sync_api import expect

from tests.support.line_stack import DEMO_CUSTOMER, HANDOFF_CHANNEL, SECRET, SLACK_SECRET

AGENT_REPLY = "大変申し訳ございません。別卵を今から20分以内にお届けします。"
# An angry refusal of every remedy offered (it names none of them): "none of them, I'm
# really angry". The NLU reads it as `deny` (every remedy refused -> a person).
ANGRY_REFUSAL = "どれも要りません。本当に腹が立ちます"


@pytest.fixture
def live_workbench(start_workbench, gateway, line_emulator, slack_emulator, redis_url, action_server, rasa):
    # a fresh conversation: the bot owns the demo customer (as in test_slack_handoff.py)
    r = redis.Redis.from_url(redis_url)
    r.delete(f"gw:case:owner:{DEMO_CUSTOMER}")
    r.close()
    rasa.restart_conversation(DEMO_CUSTOMER)
    return start_workbench(
        [
            "--gateway",
            gateway.url,
            "--line-emulator",
            line_emulator.url,
            "--slack-emulator",
            slack_emulator.url,
            "--action-server",  # the cases page reads its ops API (and the gateway's)
            action_server.url,
        ],
        env={
            "LINE_CHANNEL_SECRET": SECRET,
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_HANDOFF_CHANNEL": HANDOFF_CHANNEL,
        },
    )


def counts(page, url):
    page.goto(url)
    return (
        int(page.locator("#case-count strong").inner_text()),
        int(page.locator("#handoff-count strong").inner_text()),
    )


def say(page, text):
    page.fill("#chat-text", text)
    page.press("#chat-text", "Enter")


def test_a_missing_egg_goes_from_the_phone_to_an_agent_and_back_and_is_counted(live_workbench, page, rasa, screenshot):
    wb = live_workbench
    cases_before, handoffs_before = counts(page, f"{wb.url}/cases?preset=all&lang=ja")

    page.goto(f"{wb.url}/?lang=ja")
    phone, chips = page.locator("#chat-log"), page.locator("#chips .chip")
    expect(page.locator("#channel")).to_be_visible()
    say(page, "味噌汁と別卵が入っていませんでした")  # two items: "which item?" comes too
    expect(page.locator("#chat-log .line-row.me").last).to_contain_text("味噌汁と別卵が入っていませんでした")
    # which order? a quick reply per recent order, the one with the egg first
    chips.filter(has_text="#1001").first.click()
    # which item? then the remedies, with the egg's exact price
    chips.filter(has_text="別卵").first.click()
    # the remedies: real fixes first, each with its exact amount or time, as chips too
    expect(phone.locator(".line-row.them").last).to_contain_text("別卵の代金¥80を返金")
    expect(chips.filter(has_text="¥80")).to_be_visible()
    # the order is shown as LINE's Flex card: items and prices, the total
    expect(page.locator(".fx-bubble").first).to_contain_text("合計 / Total")
    screenshot(page, "live-1-remedies")

    say(page, ANGRY_REFUSAL)
    expect(phone.locator(".line-row.them").last).to_contain_text("担当者")
    # "a person will take over" answers the refusal itself: it quotes it (LINE's quoteToken)
    expect(phone.locator(".line-row.them .bubble .quote").last).to_have_text(ANGRY_REFUSAL)
    screenshot(page, "live-quoted-reply")
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"]["case_id"]
    assert case_id

    # the case's card arrives in the agent pane: reason, customer, order, item, buttons
    card = page.locator("#channel .sk-msg").filter(has_text=case_id)
    expect(card).to_be_visible()
    for expected in ("Every remedy refused", "デモ 太郎", "#1001", "別卵", "¥80", "Unclaimed"):
        expect(card).to_contain_text(expected)
    expect(card.locator('[data-action-id="case_claim"]')).to_be_visible()
    # the thread opened beside it, with the customer's own words in the transcript
    expect(page.locator("#thread")).to_contain_text("味噌汁と別卵が入っていませんでした")
    screenshot(page, "live-2-handoff")

    # the agent claims: the card says who (佐藤 花子 is the agent this page acts as)
    card.locator('[data-action-id="case_claim"]').click()
    expect(card).to_contain_text("Claimed by @佐藤 花子")
    expect(card.locator('[data-action-id="case_claim"]')).to_have_count(0)

    # the agent replies in the thread; it reaches the phone under the agent's name
    page.fill("#reply-text", AGENT_REPLY)
    page.press("#reply-text", "Enter")
    reply_on_phone = phone.locator(".line-row.them").filter(has_text=AGENT_REPLY)
    expect(reply_on_phone).to_be_visible()
    expect(reply_on_phone.locator(".sender")).to_contain_text("佐藤")
    # and the agent sees it was delivered (✅ on the reply)
    expect(page.locator("#thread .sk-msg").filter(has_text=AGENT_REPLY).locator(".sk-reaction")).to_contain_text("✅")
    screenshot(page, "live-3-agent-reply")

    # resolve: the bot is back and asks whether it is solved; the customer taps "solved"
    card.locator('[data-action-id="case_resolve"]').click()
    expect(card).to_contain_text("Resolved by 佐藤 花子")
    expect(phone).to_contain_text("解決しましたか")
    chips.filter(has_text="解決した").first.click()
    expect(phone.locator(".line-row.them").last).to_contain_text("ありがとう")
    screenshot(page, "live-4-resolved")

    # the cases page counts it: one more case, one more handoff, resolved by the agent
    cases_after, handoffs_after = counts(page, f"{wb.url}/cases?preset=all&lang=ja")
    assert (cases_after, handoffs_after) == (cases_before + 1, handoffs_before + 1)
    row = page.locator(f'tr[data-case="{case_id}"]')
    for expected in ("入っていない", "解決済み", "佐藤 花子", "解決した"):
        expect(row).to_contain_text(expected)
    expect(row.locator("td").nth(5)).to_have_text("提案をすべて辞退")  # why it was handed off
    reasons = page.locator("figure.chart").filter(has_text="引き継ぎの理由")
    expect(reasons.locator("table.sr-only")).to_contain_text("提案をすべて辞退")
    satisfaction = page.locator("figure.chart").filter(has_text="満足度の回答")
    expect(satisfaction.locator("table.sr-only tr").filter(has_text="解決した").locator("td")).not_to_have_text("0")
    screenshot(page, "cases", full_page=True)
    # the period presets: today's case is inside the last 7 days
    page.get_by_role("link", name="過去7日").click()
    expect(page.locator(f'tr[data-case="{case_id}"]')).to_be_visible()
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Cases")
    expect(page.locator(f'tr[data-case="{case_id}"]')).to_contain_text("Missing item")
    screenshot(page, "cases-en", full_page=True)
