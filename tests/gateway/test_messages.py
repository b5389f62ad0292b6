"""Rasa REST responses -> LINE messages: each rule and each LINE limit."""

import json

from gateway.line.messages import (
    MAX_TEXT,
    batches,
    convert,
    format_price,
    order_card,
    split_text,
    to_line_messages,
)


def btn(title, payload):
    return {"title": title, "payload": payload}


# --- text ---------------------------------------------------------------------------


def test_plain_text():
    assert to_line_messages([{"recipient_id": "U1", "text": "こんにちは"}]) == [{"type": "text", "text": "こんにちは"}]


def test_empty_and_missing_text_produce_nothing():
    assert to_line_messages([{"text": ""}, {"recipient_id": "U1"}]) == []
    assert to_line_messages([]) == []


def test_text_at_limit_is_one_message():
    assert split_text("あ" * MAX_TEXT) == ["あ" * MAX_TEXT]


def test_long_text_splits_on_line_breaks():
    line = "x" * 999  # 1000 with the newline
    text = "\n".join([line] * 12)
    chunks = split_text(text)
    assert len(chunks) == 3
    assert all(len(c) <= MAX_TEXT for c in chunks)
    assert all(set(c.split("\n")) == {line} for c in chunks)  # no line cut in two
    assert "\n".join(chunks) == text


def test_single_overlong_line_is_cut_hard():
    chunks = split_text("a" * 12000)
    assert [len(c) for c in chunks] == [5000, 5000, 2000]


def test_emoji_counted_conservatively_and_never_split():
    chunks = split_text("😀" * 3000)  # 6000 UTF-16 units
    assert all(len(c.encode("utf-16-le")) // 2 <= MAX_TEXT for c in chunks)
    assert "".join(chunks) == "😀" * 3000


def test_long_text_becomes_several_messages():
    msgs = to_line_messages([{"text": "a" * 6000}])
    assert [m["type"] for m in msgs] == ["text", "text"]


# --- buttons -> quick reply -------------------------------------------------------------


def test_buttons_become_postback_quick_reply_on_last_text():
    msgs = to_line_messages(
        [
            {"text": "親子丼の別卵が届いていないのですね。"},
            {
                "text": "どうしますか？",
                "buttons": [
                    btn("別卵を送る", '/choose_remedy{"remedy":"send_item"}'),
                    btn("返金 ¥80", '/choose_remedy{"remedy":"refund"}'),
                ],
            },
        ]
    )
    assert "quickReply" not in msgs[0]
    items = msgs[1]["quickReply"]["items"]
    assert items[0] == {
        "type": "action",
        "action": {
            "type": "postback",
            "label": "別卵を送る",
            "data": '/choose_remedy{"remedy":"send_item"}',
            "displayText": "別卵を送る",
        },
    }
    assert [i["action"]["label"] for i in items] == ["別卵を送る", "返金 ¥80"]


def test_quick_reply_max_13_items():
    buttons = [btn(f"item {i}", f'/pick{{"n":{i}}}') for i in range(20)]
    [msg] = to_line_messages([{"text": "pick", "buttons": buttons}])
    assert len(msg["quickReply"]["items"]) == 13
    assert msg["quickReply"]["items"][-1]["action"]["label"] == "item 12"


def test_label_cut_to_20_characters_display_text_keeps_title():
    title = "親子丼を作り直してお届けします（30分ほど）"
    [msg] = to_line_messages([{"text": "?", "buttons": [btn(title, "/remake")]}])
    action = msg["quickReply"]["items"][0]["action"]
    assert len(action["label"]) == 20 and action["label"].endswith("…")
    assert action["displayText"] == title


def test_display_text_max_300():
    [msg] = to_line_messages([{"text": "?", "buttons": [btn("t" * 400, "/x")]}])
    assert len(msg["quickReply"]["items"][0]["action"]["displayText"]) == 300


def test_postback_data_max_300_longer_payload_dropped():
    ok, too_long = "/a" + "x" * 298, "/b" + "x" * 299
    [msg] = to_line_messages([{"text": "?", "buttons": [btn("ok", ok), btn("long", too_long)]}])
    assert [i["action"]["data"] for i in msg["quickReply"]["items"]] == [ok]


def test_duplicate_payloads_and_buttons_of_several_items_combined():
    msgs = to_line_messages(
        [
            {"text": "a", "buttons": [btn("A", "/a"), btn("B", "/b")]},
            {"text": "b", "buttons": [btn("B again", "/b"), btn("C", "/c")]},
        ]
    )
    assert "quickReply" not in msgs[0]
    assert [i["action"]["data"] for i in msgs[1]["quickReply"]["items"]] == ["/a", "/b", "/c"]


def test_buttons_without_text_get_a_prompt():
    [msg] = to_line_messages([{"buttons": [btn("A", "/a")]}])
    assert msg["type"] == "text" and msg["text"]
    assert msg["quickReply"]["items"][0]["action"]["data"] == "/a"


def test_quick_reply_moves_to_final_message_when_a_card_follows():
    msgs = to_line_messages(
        [
            {"text": "どの商品ですか？", "buttons": [btn("別卵", "/item")]},
            {"custom": {"order_card": {"order_id": "A1", "items": [{"name": "別卵", "price": 80}]}}},
        ]
    )
    assert "quickReply" not in msgs[0]
    assert msgs[-1]["type"] == "flex" and "quickReply" in msgs[-1]


# --- image, custom ----------------------------------------------------------------------


def test_image():
    [m] = to_line_messages([{"image": "https://example.com/a.jpg"}])
    assert m == {
        "type": "image",
        "originalContentUrl": "https://example.com/a.jpg",
        "previewImageUrl": "https://example.com/a.jpg",
    }


def test_order_card_flex_lists_items_and_prices():
    card = {
        "order_id": "A1001",
        "title": "ご注文 A1001",
        "status": "配達済み",
        "items": [
            {"name": "親子丼", "price": 980},
            {"name": "別卵", "price": 80},
            {"name": "味噌汁", "price": 150, "quantity": 2},
        ],
    }
    [m] = to_line_messages([{"custom": {"order_card": card}}])
    assert m["type"] == "flex" and m["contents"]["type"] == "bubble"
    dump = json.dumps(m, ensure_ascii=False)
    for s in ("ご注文 A1001", "配達済み", "親子丼", "¥980", "別卵", "¥80", "味噌汁 ×2", "¥300", "¥1,360"):
        assert s in dump, s
    assert "親子丼" in m["altText"] and len(m["altText"]) <= 400


def test_order_card_given_total_and_currency():
    m = order_card(
        {
            "order_id": "B2",
            "items": [{"name": "Pizza", "price": 12.5}],
            "total": 10,
            "currency": "usd",
            "alt_text": "Your order",
        }
    )
    dump = json.dumps(m)
    assert "12.50 USD" in dump and "10.00 USD" in dump and m["altText"] == "Your order"


def test_format_price():
    assert format_price(1060) == "¥1,060"
    assert format_price(80.0, "jpy") == "¥80"


def test_custom_line_passthrough_and_unknown_ignored():
    sticker = {"type": "sticker", "packageId": "446", "stickerId": "1988"}
    assert to_line_messages([{"custom": {"line": sticker}}]) == [sticker]
    assert to_line_messages([{"custom": {"line": [sticker, sticker]}}]) == [sticker, sticker]
    assert to_line_messages([{"custom": {"handoff": True}}]) == []
    assert to_line_messages([{"custom": "text"}]) == []


# --- batching -----------------------------------------------------------------------------


def test_five_messages_fit_one_reply():
    out = convert([{"text": f"m{i}"} for i in range(3)] + [{"image": "https://x/i.jpg"}] * 2)
    assert [len(b) for b in out] == [5]


def test_more_than_five_texts_are_merged_into_one_reply():
    out = convert([{"text": f"メッセージ{i}"} for i in range(7)])
    assert [len(b) for b in out] == [1]
    assert out[0][0]["text"] == "\n\n".join(f"メッセージ{i}" for i in range(7))


def test_more_than_five_unmergeable_messages_split_reply_then_push():
    cards = [{"custom": {"order_card": {"order_id": f"A{i}", "items": []}}} for i in range(7)]
    out = convert(cards + [{"text": "どれですか？", "buttons": [btn("A0", "/a0")]}])
    assert [len(b) for b in out] == [5, 3]
    assert all(len(b) <= 5 for b in out)
    assert "quickReply" in out[-1][-1] and out[-1][-1]["type"] == "text"


def test_merge_respects_text_limit():
    out = convert([{"text": "a" * 3000} for _ in range(6)])
    assert all(len(m["text"]) <= MAX_TEXT for b in out for m in b)
    assert sum(len(b) for b in out) == 6  # nothing could be merged
    assert [len(b) for b in out] == [5, 1]


def test_batches_helper():
    assert batches([]) == []
    assert [len(b) for b in batches([{}] * 11)] == [5, 5, 1]


def test_remedy_card_has_a_postback_button_per_option_after_its_detail():
    card = {
        "title": "別卵について",
        "options": [
            {
                "label": "今からお届け",
                "detail": "別卵を今からお届け（19:40ごろ到着）",
                "payload": '/inform{"remedy": "send_item"}',
                "recommended": True,
            },
            {
                "label": "¥80を返金するのでとても長いラベルになります",
                "detail": "別卵の代金¥80を返金",
                "payload": '/inform{"remedy": "refund_item"}',
            },
            {"label": "no payload", "payload": ""},
        ],
    }
    [m] = to_line_messages([{"custom": {"remedy_card": card}}])
    assert m["type"] == "flex"
    parts = m["contents"]["body"]["contents"]
    buttons = [p for p in parts if p["type"] == "button"]
    assert [b["action"]["data"] for b in buttons] == [
        '/inform{"remedy": "send_item"}',
        '/inform{"remedy": "refund_item"}',
    ]
    assert all(b["action"]["type"] == "postback" and len(b["action"]["label"]) <= 20 for b in buttons)
    assert buttons[0]["style"] == "primary"
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert "別卵の代金¥80を返金" in texts
