"""LINE's account link through the whole stack: the gateway, Rasa, the action server, the
demo shop's login page (devkit/shop_login.py) and the LINE emulator's accountLink page.

An unknown LINE user with a claim is offered the link beside the order number; they log in
on the shop's page with the phone number and an order number of 山田 花子 (a guest in the
seed data, no LINE account), LINE sends the accountLink event, the bot links them, and
their next claim needs no order number. The same nonce again links nothing.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from devkit.emulators.line_client import LineWebhookClient, emulator_tokens, new_user_id
from tests.support.line_stack import SECRET, reply_for, texts_of, wait_for

CLAIM = "牛丼に温泉卵が入っていませんでした"


async def answer(emu, event, timeout=60.0):
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), timeout, what="the reply to an event")
    return r["json"]["messages"]


def link_button(messages):
    for m in messages:
        if m["type"] != "flex":
            continue
        for c in m["contents"].get("footer", {}).get("contents", []):
            if c.get("type") == "button" and c["action"]["type"] == "uri":
                return c["action"]["uri"]
    return None


@pytest.mark.asyncio
async def test_an_unknown_customer_links_their_account_and_the_next_claim_needs_no_number(
    gateway, line_emulator, shop_login, rasa
):
    emu = line_emulator.emu
    user, other = new_user_id(), new_user_id()
    emu.set_profile(user, "はなこ", "ja")
    client = LineWebhookClient(gateway.webhook_url, SECRET, token_source=emulator_tokens(emu))
    try:
        event, res = await client.send_text(user, CLAIM)
        assert res.status == 200
        msgs = await answer(emu, event)
        assert "注文番号" in texts_of(msgs)
        login = link_button(msgs)  # beside the order number and the phone route
        assert login and login.startswith(shop_login.login_url + "?linkToken=")
        token = parse_qs(urlsplit(login).query)["linkToken"][0]

        async with aiohttp.ClientSession() as browser:
            async with browser.get(login) as resp:
                assert resp.status == 200 and "電話番号" in await resp.text()
            form = {"linkToken": token, "phone": "080-1234-5678", "order": "2001"}
            async with browser.post(shop_login.login_url, data=form, allow_redirects=False) as resp:
                assert resp.status == 302
                to_line = resp.headers["Location"]
            assert to_line.startswith(f"{line_emulator.url}/dialog/bot/accountLink?")
            nonce = parse_qs(urlsplit(to_line).query)["nonce"][0]
            async with browser.get(to_line) as resp:  # LINE: the link is made, back to LINE
                assert resp.status == 200

        linked = emu.account_links[-1]  # what the emulator posted to the gateway for that page
        assert linked["source"]["userId"] == user and linked["link"]["result"] == "ok"
        msgs = await answer(emu, linked)
        assert "山田 花子様のアカウントと連携しました" in texts_of(msgs)
        assert rasa.tracker(user)["slots"].get("account_link_nonce") is None

        # the next claim: a known customer now, the order found without its number
        event, _ = await client.send_text(user, CLAIM)
        msgs = await answer(emu, event)
        said = json.dumps(msgs, ensure_ascii=False)
        assert "注文番号（例" not in said and link_button(msgs) is None
        assert "2001" in said or "¥100" in said

        # the same nonce again (LINE, or anyone, sending it once more) links nothing
        assert await emu.send_account_link(other, nonce) == 200
        replay = emu.account_links[-1]
        assert replay["source"]["userId"] == other
        msgs = await answer(emu, replay)
        assert "すでに使用済み" in texts_of(msgs)
        event, _ = await client.send_text(other, CLAIM)
        msgs = await answer(emu, event)
        assert "注文番号" in texts_of(msgs) and link_button(msgs) is not None  # still unknown
    finally:
        await client.close()
