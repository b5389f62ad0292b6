"""Everything an agent can do on a case card, in the browser's agent pane, through the real
gateway, Rasa, action server and redis-server (LINE and Slack emulated):

a frustrated customer (デモ 太郎) refuses the remedies for the missing egg angrily -> the
card arrives with both rows of controls -> the agent claims it -> opens Goodwill (a modal
from views.open), submits a bad amount (the app's error shows under the amount, the modal
stays open), then ¥500 store credit (within an agent's own ¥2,000): the modal closes and
the phone shows the confirmation -> picks a suggested reply (static_select -> a modal
prefilled with the draft) and sends it: the phone shows it -> replies 「それはできません」:
only the agent sees the warning with the better draft, the phone does not get it ->
reassigns to someone outside the channel (a private "not a member" note), then to Alex Kim
(users_select): the card says who has it -> escalates: the card and the thread say so.

(Named to run after test_case_walk.py: the phone shows everything the LINE emulator ever
delivered to the customer, and the walk looks for the first Flex bubble being the order.)
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.support.line_stack import DEMO_CUSTOMER
from tests.system.browser.test_case_walk import ANGRY_REFUSAL, live_workbench  # noqa: F401  (fixture)

REFUSAL = "それはできません"


def say(page, text):
    page.fill("#chat-text", text)
    page.press("#chat-text", "Enter")


def test_an_agent_uses_every_control_of_the_card_from_the_workbench(live_workbench, page, rasa, screenshot):
    page.goto(f"{live_workbench.url}/?lang=ja")
    phone, chips = page.locator("#chat-log"), page.locator("#chips .chip")
    thread = page.locator("#thread")

    # the frustrated customer: the missing egg, the order, every remedy refused angrily
    say(page, "親子丼に別卵が付いていませんでした")
    chips.filter(has_text="#1001").first.click()
    expect(phone.locator(".line-row.them").last).to_contain_text("¥80")
    say(page, ANGRY_REFUSAL)
    expect(phone.locator(".line-row.them").last).to_contain_text("担当者")
    case_id = rasa.tracker(DEMO_CUSTOMER)["slots"]["case_id"]
    assert case_id

    # the card, both rows: claim / apply / resolve, then the tools (block_id carries the case)
    card = page.locator("#channel .sk-msg:not([data-broadcast])").filter(has_text=case_id)
    expect(card).to_be_visible()
    card.locator(".sk-thread-link").click()  # its thread beside it (earlier cases may be open)
    expect(page.locator("#channel .sk-msg.selected")).to_contain_text(case_id)
    tools = card.locator(f'.sk-actions[data-block-id="case_tools|{case_id}"]')
    for action_id in ("case_goodwill", "case_escalate", "case_reassign", "case_suggest_reply"):
        expect(tools.locator(f'[data-action-id="{action_id}"]')).to_be_visible()
    reassign = tools.locator('select[data-action-id="case_reassign"]')
    expect(reassign.locator("option")).to_contain_text(["Reassign to", "佐藤 花子", "Alex Kim", "外部 太郎"])

    card.locator('[data-action-id="case_claim"]').click()
    expect(card).to_contain_text("Claimed by @佐藤 花子")
    card.scroll_into_view_if_needed()
    screenshot(page, "agent-card")
    # a button's `confirm` is asked in the page first; Cancel sends nothing
    card.locator('[data-action-id^="case_approve_offered_"]').filter(has_text="coupon").click()
    confirm = page.locator(".sk-confirm")
    expect(confirm).to_contain_text("Apply? / 実行しますか")
    confirm.locator('[data-role="deny"]').click()
    expect(confirm).to_have_count(0)

    # Goodwill: the modal the click opened (views.open), drawn from its blocks
    tools.locator('[data-action-id="case_goodwill"]').click()
    modal = page.locator('#sk-modal[data-callback-id="case_goodwill"]')
    expect(modal).to_be_visible()
    expect(modal.locator(".sk-modal-title")).to_have_text("Goodwill / お詫び")
    expect(modal.locator('.sk-field[data-block-id="goodwill_amount"] .sk-hint')).to_contain_text("¥2,000")
    modal.locator('select[data-block-id="goodwill_kind"]').select_option("store_credit")
    modal.locator('input[data-block-id="goodwill_amount"]').fill("0")
    modal.locator('textarea[data-block-id="goodwill_reason"]').fill("Waited an hour and the egg was missing.")
    modal.locator('[data-role="submit"]').click()
    # the app answers response_action "errors": under the amount, the modal stays open
    amount_error = modal.locator('.sk-field[data-block-id="goodwill_amount"] .sk-error')
    expect(amount_error).to_contain_text("A whole number of yen from 1 to")
    expect(modal.locator('.sk-field[data-block-id="goodwill_reason"] .sk-error')).to_be_hidden()
    screenshot(page, "goodwill-modal")
    before = phone.locator(".line-row.them").count()
    modal.locator('input[data-block-id="goodwill_amount"]').fill("500")
    modal.locator('[data-role="submit"]').click()
    expect(modal).to_have_count(0)
    # within the agent's own limit: given at once, the customer is told on LINE
    confirmation = phone.locator(".line-row.them").filter(has_text="お詫びとして")
    expect(confirmation).to_contain_text("500")
    assert phone.locator(".line-row.them").count() > before
    expect(card).to_contain_text("Goodwill / お詫び: store credit ¥500 by 佐藤 花子")
    expect(tools.locator('[data-action-id="case_goodwill"]')).to_have_count(0)  # once per case

    # a suggested reply: static_select -> the draft in a modal, edited and sent
    tools.locator('select[data-action-id="case_suggest_reply"]').select_option(f"{case_id}|ask_for_photo")
    draft = page.locator('#sk-modal[data-callback-id="case_reply_draft"]')
    expect(draft).to_be_visible()
    text = draft.locator('textarea[data-block-id="reply_text"]')
    expect(text).to_have_value(re.compile("お写真"))
    draft.locator('[data-role="submit"]').click()
    expect(draft).to_have_count(0)
    expect(phone.locator(".line-row.them").filter(has_text="お写真を")).to_be_visible()
    expect(thread).to_contain_text("suggested reply, sent to the customer")

    # a bare refusal: held, and only this agent sees the warning with the better draft
    page.fill("#reply-text", REFUSAL)
    page.press("#reply-text", "Enter")
    warning = thread.locator(".sk-ephemeral").filter(has_text="できません")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("あなただけに表示されています")
    screenshot(page, "reply-warning")
    time.sleep(3.0)  # what would have reached LINE by now
    expect(phone.locator(".line-row.them").filter(has_text=REFUSAL)).to_have_count(0)

    # reassign: someone outside the handoff channel is refused (a private note), Alex Kim is not
    reassign.select_option("U0OUTSIDER")
    expect(thread.locator(".sk-ephemeral").filter(has_text="not a member")).to_be_visible()
    expect(card).to_contain_text("Claimed by @佐藤 花子")
    reassign.select_option("U0AGENT002")
    expect(card).to_contain_text("Claimed by @Alex Kim")
    expect(thread).to_contain_text("reassigned this case to @Alex Kim")

    # escalate: the supervisors' post (broadcast from the thread here), the card's status
    tools.locator('[data-action-id="case_escalate"]').click()
    expect(card).to_contain_text("Escalated")
    expect(tools.locator('[data-action-id="case_escalate"]')).to_have_count(0)
    expect(thread).to_contain_text(f"escalated case {case_id} to the supervisors")
    expect(thread).to_contain_text("escalated to supervisors by 佐藤 花子")
    expect(page.locator("#channel .sk-broadcast").filter(has_text=case_id)).to_be_visible()
    screenshot(page, "agent-escalated")
