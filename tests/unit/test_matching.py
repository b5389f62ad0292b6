"""Free-typed answers inside a claim: item names in any spelling, ordinals, numbers."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.actions.matching import match_items, match_order, order_number_in, ordinal_in
from bot.policy.types import ItemView, OrderView

OYAKODON = ItemView(1, "OYAKODON", "親子丼", "Oyakodon", "dish", 980)
EGG = ItemView(2, "EXTRA-EGG", "別卵", "Extra egg", "topping", 80)
MISO = ItemView(3, "MISO-SOUP", "味噌汁", "Miso soup", "side", 150)
FRIES = ItemView(4, "FRIES", "フライドポテト", "French fries", "side", 350)
ITEMS = [OYAKODON, EGG, MISO]


@pytest.mark.parametrize(
    "mentions,expected",
    [
        (["別卵"], [EGG]),
        (["たまご"], [EGG]),
        (["タマゴ"], [EGG]),
        (["卵"], [EGG]),
        (["egg"], [EGG]),
        (["the egg"], [EGG]),
        (["Extra Egg"], [EGG]),
        (["みそしる"], [MISO]),
        (["おやこどん"], [OYAKODON]),
        (["親子丼", "別卵"], [OYAKODON, EGG]),
        (["item:3"], [MISO]),
        (["ポテト"], []),
        (["ご"], []),  # one kana says nothing
    ],
)
def test_items_are_found_by_any_spelling(mentions, expected):
    assert match_items(mentions, ITEMS) == expected


def test_fries_in_katakana_or_english():
    assert match_items(["ポテト"], [FRIES]) == [FRIES]
    assert match_items(["fries"], [FRIES]) == [FRIES]


@pytest.mark.parametrize(
    "text,index",
    [("2番目", 1), ("the second one", 1), ("最後", 2), ("1", 0), ("２つ目でお願いします", 1), ("first", 0), ("どれでもない", None)],
)
def test_ordinals(text, index):
    assert ordinal_in(text, 3) == index


def test_order_numbers_in_text():
    assert order_number_in("注文番号は＃１００２です") == "1002"
    assert order_number_in("order 55") is None


def _order(number, items):
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    return OrderView(number, 1, "food_delivery", "delivered", "shop", now, now, now, 300, tuple(items))


def test_orders_are_picked_by_number_ordinal_or_item():
    orders = [_order("1001", ITEMS), _order("1003", [FRIES])]
    assert match_order("#1003", orders).number == "1003"
    assert match_order("2番目", orders).number == "1003"
    assert match_order("ポテトのやつ", orders).number == "1003"
    assert match_order("9999", orders) is None
