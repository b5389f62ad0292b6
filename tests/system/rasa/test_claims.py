"""Whole conversations through the real Rasa server and action server.

A customer reports a problem in their own words, taps the buttons the bot offers (sending
the button payloads, as the LINE gateway does for postbacks) and ends with a remedy
applied exactly once, a status, or a person.
"""

from __future__ import annotations

import json

import pytest

from bot.formatting import clock
from bot.store import OrdersRepository, make_engine
from tests.support.rasa_stack import (
    DEMO_CUSTOMER,
    ENGLISH_CUSTOMER,
    button,
    buttons,
    handoff_case,
    texts,
)


def remedies_for(orders_url: str, case_id: str):
    repository = OrdersRepository(make_engine(orders_url))
    return repository.remedy_for_case(case_id)


def payload_for_remedy(messages, kind: str) -> str:
    for b in buttons(messages):
        if json.dumps(kind) in b["payload"] or f'"remedy": "{kind}"' in b["payload"]:
            return b["payload"]
    raise AssertionError(f"{kind} not offered: {[b['payload'] for b in buttons(messages)]}")


def test_japanese_missing_egg_ends_with_the_egg_refunded_once(bot, orders_url):
    chat = bot(DEMO_CUSTOMER, language="ja", display_name="デモ 太郎")

    reply = chat.say("親子丼に別卵が付いていませんでした")
    # The bot finds the order itself: the only recent one with the egg, confirmed in one tap.
    assert buttons(reply)[0]["title"] == "はい、#1001です"
    assert "ですね" in texts(reply) and "どのご注文" not in texts(reply)

    # The message said the egg is what is missing: no "which item?" question.
    reply = reply_with_offers = chat.say(button(reply, "#1001"))
    assert "どの商品" not in texts(reply) and "別卵の件" in texts(reply)
    offered = texts(reply)
    assert "¥80" in offered  # the egg's exact price, not a flat discount
    titles = [b["title"] for b in buttons(reply)]
    assert "クーポン" not in titles[0] and "coupon" not in buttons(reply)[0]["payload"]
    assert len([t for t in titles if "クーポン" not in t]) >= 3  # real remedies + "none of these"

    reply = chat.say(payload_for_remedy(reply, "refund_item"))
    confirmation = texts(reply)
    case_id = chat.slot("case_id")
    assert case_id and case_id in confirmation
    assert "¥80" in confirmation
    applied = remedies_for(orders_url, case_id)
    assert (applied.kind, applied.amount) == ("refund_item", 80)

    # A second tap on the same button says it is already done and does not refund again.
    again = chat.say(payload_for_remedy(reply_with_offers, "refund_item"))
    assert "すでに" in texts(again) and case_id in texts(again)
    remedies = OrdersRepository(make_engine(orders_url)).customer_history(applied_customer(orders_url)).claim_times
    assert len(remedies) == 1


def applied_customer(orders_url: str) -> int:
    return OrdersRepository(make_engine(orders_url)).customer_by_line_id(DEMO_CUSTOMER).id


def test_english_missing_fries_sends_them_with_a_time(bot, orders_url):
    chat = bot(ENGLISH_CUSTOMER, language="en", display_name="Emma")

    reply = chat.say("my order is missing the fries")
    assert "Is this about" in texts(reply) and "#1101" in texts(reply)
    assert buttons(reply)[0]["title"] == "Yes, #1101"

    reply = chat.say(button(reply, "#1101"))
    # Only one item of the order is called fries: no need to ask which.
    assert "¥350" in texts(reply)
    reply = chat.say(payload_for_remedy(reply, "send_item"))
    confirmation = texts(reply)
    assert "Case number" in confirmation
    applied = remedies_for(orders_url, chat.slot("case_id"))
    assert applied.kind == "send_item" and applied.eta is not None
    assert clock(applied.eta) in confirmation  # the honest arrival time, Tokyo time


def test_claim_window_passed_goes_to_a_person_with_the_case(bot):
    chat = bot(DEMO_CUSTOMER, language="ja")

    reply = chat.say("カレーを頼んだのにポテトが入っていませんでした")
    assert "#1003" in buttons(reply)[0]["title"]
    reply = chat.say(button(reply, "#1003"))

    case = handoff_case(reply)
    assert case is not None, texts(reply)
    assert case["reason"] == "claim_window_passed"
    assert case["order"]["number"] == "1003"
    # Both named items are on the card; the agent sees what the customer talked about.
    assert "フライドポテト" in [i["name_ja"] for i in case["items"] if i["claimed"]]
    assert case["customer"]["line_user_id"] == DEMO_CUSTOMER
    assert case["transcript"][0]["text"] == "カレーを頼んだのにポテトが入っていませんでした"
    assert "担当者" in texts(reply)  # says what happens next, never just "we can't"
    # The conversation is paused for the agent: the bot stays quiet.
    assert chat.say("まだですか") == []


@pytest.mark.parametrize(
    "sender,language,message,expected",
    [
        (DEMO_CUSTOMER, "ja", "卵アレルギーなのに卵が入っていて、じんましんが出ました", "119"),
        (ENGLISH_CUSTOMER, "en", "I think I got food poisoning from the chicken you sent", "119"),
    ],
)
def test_safety_goes_to_a_person_at_once(bot, sender, language, message, expected):
    chat = bot(sender, language=language)
    reply = chat.say(message)
    case = handoff_case(reply)
    assert case is not None and case["reason"] == "safety"
    assert expected in texts(reply)


def test_refusing_every_remedy_reaches_a_person_with_what_was_refused(bot):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("別卵が入ってなかった")
    reply = chat.say(button(reply, "#1001"))
    if "どの商品" in texts(reply):
        reply = chat.say(button(reply, "別卵"))
    offered = [b["payload"] for b in buttons(reply) if "remedy" in b["payload"]]
    reply = chat.say(button(reply, "どれも希望しない"))
    case = handoff_case(reply)
    assert case["reason"] == "all_remedies_refused"
    assert len(case["remedies_refused"]) == len(offered) > 0


def test_guest_finds_the_order_by_number_and_cannot_see_others(bot):
    chat = bot()  # a LINE user the shop does not know
    reply = chat.say("牛丼に温泉卵が入っていませんでした")
    assert "注文番号" in texts(reply)

    reply = chat.say("1001")  # another customer's order: not found, not revealed
    assert "見つかりませんでした" in texts(reply)
    assert "とり政" not in texts(reply)

    reply = chat.say("注文番号は2001です")
    # the first message said the egg was missing: its remedies at once, no item question
    assert "¥100" in texts(reply)  # the soft-boiled egg's price


def test_late_delivery_offers_the_delivery_fee_back(bot, orders_url):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("注文したラーメンがまだ届きません")
    assert "#1004" in buttons(reply)[0]["title"]
    reply = chat.say(button(reply, "#1004"))
    assert "¥300" in texts(reply)


def test_cancelling_a_preparing_order_refunds_it_in_full(bot, orders_url):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("さっきの注文をキャンセルしたいです")
    assert buttons(reply)[0]["title"].startswith("#1006")
    reply = chat.say(button(reply, "#1006"))
    assert "¥1,730" in texts(reply)
    reply = chat.say(payload_for_remedy(reply, "cancel_order"))
    # it cannot be undone: asked first, and nothing is cancelled before the yes
    assert "よろしいですか" in texts(reply) and "¥1,730" in texts(reply)
    repository = OrdersRepository(make_engine(orders_url))
    assert repository.order_by_number("1006").status != "cancelled"
    reply = chat.say(button(reply, "はい、キャンセルする"))
    assert repository.order_by_number("1006").status == "cancelled"
    assert remedies_for(orders_url, chat.slot("case_id")).amount == 1730


def test_no_to_the_cancellation_question_keeps_the_order(bot, orders_url):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("さっきの注文をキャンセルしたいです")
    reply = chat.say(button(reply, "#1006"))
    reply = chat.say(payload_for_remedy(reply, "cancel_order"))
    reply = chat.say("やっぱりキャンセルしないでください")
    assert "そのまま" in texts(reply)
    repository = OrdersRepository(make_engine(orders_url))
    assert repository.order_by_number("1006").status != "cancelled"
    assert remedies_for(orders_url, chat.slot("case_id")) is None


def test_an_item_in_one_recent_order_is_confirmed_in_one_tap_and_the_remedies_follow(bot, orders_url):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("さっき届いた親子丼、別卵がなかったんだけど。。")
    assert "#1001" in texts(reply) and "別卵" in texts(reply)
    assert [b["title"] for b in buttons(reply)] == ["はい、#1001です", "ちがう注文"]
    reply = chat.say(button(reply, "はい"))
    assert "¥80" in texts(reply)  # the egg's remedies: no item question
    assert "どの商品" not in texts(reply)


def test_order_status_tells_how_late_it_is(bot):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("注文の配達状況を教えてください")
    reply = chat.say(button(reply, "#1004"))
    assert "配達中" in texts(reply) and "分過ぎ" in texts(reply)


def test_asking_for_a_person_hands_off_with_the_reason(bot):
    chat = bot(ENGLISH_CUSTOMER, language="en")
    reply = chat.say("can I talk to a real person please")
    case = handoff_case(reply)
    assert case["reason"] == "request_human"
    assert "team" in texts(reply)


def test_request_for_a_person_in_the_middle_of_a_claim(bot):
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("別卵が入っていませんでした")
    reply = chat.say("もういいから人間の担当者と話させて")
    case = handoff_case(reply)
    assert case is not None and case["reason"] in ("request_human", "frustration")
    assert case["problem"] == "missing_item"


def test_two_off_topic_messages_in_a_row_reach_a_person(bot):
    chat = bot(DEMO_CUSTOMER, language="ja")
    first = chat.say("明日の東京の天気を教えて")
    assert handoff_case(first) is None
    second = chat.say("おすすめの映画はありますか")
    case = handoff_case(second)
    assert case is not None and case["reason"] in ("out_of_scope", "repeated_misunderstanding")


def test_nonsense_gets_a_question_back_not_a_guess(bot, orders_url):
    # The classifier alone read this as a safety report (a person at once) at 0.7.
    chat = bot(ENGLISH_CUSTOMER, language="en")
    reply = chat.say("xyzzy zorkmid")  # no word of it near a training word ("plugh" is a typo of "plug")
    assert handoff_case(reply) is None
    assert "didn't quite get that" in texts(reply)

    # With the remedies on screen, a keyboard mash chooses nothing; the buttons still work.
    chat = bot(DEMO_CUSTOMER, language="ja")
    reply = chat.say("親子丼に別卵が付いていませんでした")
    reply = offers = chat.say(button(reply, "#1001"))  # the egg: no item question
    reply = chat.say("ぴよぴよぽぽぽ ふがふが")
    assert handoff_case(reply) is None
    assert remedies_for(orders_url, chat.slot("case_id")) is None, texts(reply)
    reply = chat.say(payload_for_remedy(offers, "refund_item"))
    applied = remedies_for(orders_url, chat.slot("case_id"))
    assert (applied.kind, applied.amount) == ("refund_item", 80)
