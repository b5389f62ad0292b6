"""The LINE rich menu in the workbench's phone: published to the LINE emulator with the
real tool (`python -m gateway.line.rich_menu apply`, what `make rich-menu` runs), shown
under the chat, and a tap on 「注文状況」 goes to the real gateway and Rasa as LINE sends it
(an unsigned postback; its displayText shown as the customer's message)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from devkit import stack
from tests.support.line_stack import ACCESS_TOKEN, DEMO_CUSTOMER
from tests.system.browser.test_case_walk import live_workbench  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def rich_menu_published(line_emulator):
    env = {
        **os.environ,
        "LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
        "LINE_API_BASE_URL": line_emulator.url,
        "LINE_DATA_API_BASE_URL": line_emulator.url,
    }
    env.pop("POSTBACK_PLAIN_PAYLOADS", None)
    out = subprocess.run(
        [str(stack.GATEWAY_PYTHON), "-m", "gateway.line.rich_menu", "apply"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    emu = line_emulator.emu
    yield emu.default_rich_menu
    # the other tests of the session see no menu, as before
    emu.default_rich_menu = None
    emu.user_rich_menus.clear()
    emu.rich_menu_images.clear()
    emu.rich_menus.clear()


def test_the_rich_menu_shows_under_the_chat_and_a_tap_reaches_the_bot(
    rich_menu_published, live_workbench, page, rasa, screenshot
):
    wb = live_workbench
    page.goto(f"{wb.url}/?lang=ja")
    menu = page.locator("#rich-menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("data-rich-menu-id", rich_menu_published)
    expect(menu).to_have_attribute("data-source", "default")
    image = menu.locator("img.rm-image")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('#rich-menu img.rm-image').naturalWidth === 2500")
    assert menu.locator(".rm-bar").inner_text().startswith("メニュー")
    areas = menu.locator(".rm-area")
    expect(areas).to_have_count(4)
    # the area buttons lie over the image's four quarters
    img_box = image.bounding_box()
    status_box = menu.get_by_role("button", name="注文状況").bounding_box()
    assert abs(status_box["x"] - (img_box["x"] + img_box["width"] / 2)) < 2
    assert abs(status_box["width"] - img_box["width"] / 2) < 2 and status_box["y"] == pytest.approx(img_box["y"], abs=2)

    phone = page.locator("#chat-log")
    menu.get_by_role("button", name="注文状況").click()
    # LINE posts the postback's displayText as the customer's message
    expect(phone.locator(".line-row.me").last).to_contain_text("注文状況を確認")
    # and the bot answers it: the order status claim starts (which order?)
    answer = phone.locator(".line-row.me + .line-row.them")
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("ご注文")
    tracker = rasa.tracker(DEMO_CUSTOMER)
    assert tracker["latest_message"]["intent"]["name"] == "check_order_status"
    assert tracker["latest_message"]["text"] == "/check_order_status"
    screenshot(page, "live-rich-menu")

    # the chat bar closes and opens the menu
    menu.locator(".rm-bar").click()
    expect(image).to_be_hidden()
    menu.locator(".rm-bar").click()
    expect(image).to_be_visible()
