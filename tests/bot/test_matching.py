"""Free-typed answers inside a claim: item names in any spelling, ordinals, numbers."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.actions.matching import item_words, match_items, match_order, order_number_in, ordinal_in, parse_item_words
from bot.remedy_policy.loader import PolicyError
from bot.remedy_policy.types import ItemView, OrderView

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
    [
        ("2番目", 1),
        ("the second one", 1),
        ("最後", 2),
        ("1", 0),
        ("２つ目でお願いします", 1),
        ("first", 0),
        ("どれでもない", None),
    ],
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


# --- the alias lexicon (bot/item_words.yml), readings in a sentence, typos ----------------
GYUDON = ItemView(10, "GYUDON", "牛丼", "Gyudon", "dish", 650)
ONSEN = ItemView(11, "ONSEN-TAMAGO", "温泉卵", "Soft-boiled egg", "topping", 100)
BURGER = ItemView(5, "CHEESEBURGER", "チーズバーガー", "Cheeseburger", "dish", 880)
COLA = ItemView(6, "COLA", "コーラ", "Cola", "drink", 200)
SHOP = [BURGER, FRIES, COLA, GYUDON, ONSEN]  # the demo data's names (bot/store/seed.py)


@pytest.mark.parametrize(
    "mention,expected",
    [
        ("温玉", [ONSEN]),
        ("おんたま", [ONSEN]),
        ("onsen egg", [ONSEN]),
        ("soft boiled egg", [ONSEN]),
        ("温泉たまご", [ONSEN]),
        ("coke", [COLA]),
        ("coca cola", [COLA]),
        ("Coke", [COLA]),
        ("fries", [FRIES]),
        ("chips", [FRIES]),
        ("ポテト", [FRIES]),
        ("burger", [BURGER]),
        ("バーガー", [BURGER]),
        ("gyudon", [GYUDON]),
        ("frys", [FRIES]),
        ("burgr", [BURGER]),
        ("chese burger", [BURGER]),
        ("cheeseburgers", [BURGER]),
        ("french fires", [FRIES]),  # typos and plurals in Latin words
    ],
)
def test_lexicon_words_and_small_typos_name_the_item(mention, expected):
    assert match_items([mention], SHOP) == expected


@pytest.mark.parametrize(
    "mention",
    [
        "price",
        "prices",
        "order",
        "bad",
        "late",
        "cold",
        "came",
        "come",
        "code",
        "fried",
        "nice",
        "chocolate",
        "ok",
        "where do I find it",
        "ご",
    ],
)
def test_ordinary_words_name_no_item(mention):
    assert match_items([mention], SHOP) == []


def test_an_egg_in_an_order_with_two_eggs_names_both_but_onsen_egg_only_one():
    assert match_items(["egg"], [EGG, ONSEN]) == [EGG, ONSEN]
    assert match_items(["onsen egg"], [EGG, ONSEN]) == [ONSEN]
    assert match_items(["別卵"], [EGG, ONSEN]) == [EGG]


@pytest.mark.parametrize(
    "text,number",
    [
        ("親子丼のベツタマゴが入ってなかった", "1001"),
        ("べつたまごがない", "1001"),
        ("牛丼の温玉がついてなかった", "2001"),
        ("the coke is missing", "1006"),
        ("my frys never came", "1006"),
        ("みそ汁のやつ", "1001"),
        ("the price was wrong", None),
    ],
)
def test_an_order_is_picked_by_an_item_named_in_a_sentence(text, number):
    orders = [_order("1001", ITEMS), _order("2001", [GYUDON, ONSEN]), _order("1006", [BURGER, FRIES, COLA])]
    found = match_order(text, orders)
    assert (found.number if found else None) == number


def test_the_lexicon_file_loads():
    words = item_words()
    assert ("温泉卵" in dict(words.groups)) and "温玉" in dict(words.groups)["温泉卵"]
    assert "cold" in words.not_typos


@pytest.mark.parametrize(
    "text,where",
    [
        ("version: 1\nwords:\n  温泉卵: [温玉, 温玉]\n", "item_words.yml:3: words.温泉卵: '温玉' is listed twice"),
        ("version: 1\nwords:\n  温泉卵: [温玉]\n  コーラ: coke\n", "item_words.yml:4: words.コーラ: expected a list"),
        ("version: 1\nwords:\n  コーラ: []\n", "item_words.yml:3: words.コーラ: list at least one"),
        ("version: 1\nwords:\n  コーラ: [c]\n", "item_words.yml:3: words.コーラ: 'c' is too short"),
        ("version: 1\nwords:\n  コーラ: [coke]\nnot_typos: [寒い]\n", "item_words.yml:4: not_typos:"),
        ("version: 1\nwords:\n  コーラ: [coke]\nsynonyms: []\n", "item_words.yml:4: synonyms: unknown field"),
        ("version: 1\nwords:\n  コーラ: [coke\n", "item_words.yml:4: not valid YAML"),
        ("version: 1\n", "item_words.yml:1: : missing `words`"),
    ],
)
def test_a_mistake_in_the_lexicon_names_the_file_and_line(text, where):
    with pytest.raises(PolicyError) as error:
        parse_item_words(text, "item_words.yml")
    assert str(error.value).startswith(where)


def test_an_order_number_is_taken_only_where_it_is_marked_as_one():
    from bot.actions.matching import marked_order_number

    assert marked_order_number("Order #2001 - the soft boiled egg was missing") == "2001"
    assert marked_order_number("注文番号は1003です") == "1003"
    assert marked_order_number("#１００１の別卵") == "1001"
    # a price or a phone number is not an order
    assert marked_order_number("It was 4800 yen!") is None
    assert marked_order_number("080-1234-5678") is None
