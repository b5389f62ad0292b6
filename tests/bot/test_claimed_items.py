"""Which of the items a message names is the claim (bot/actions/matching.claimed_items), and
the claim form using it on a real Tracker against the demo orders."""

from __future__ import annotations

import pytest

from bot.actions.matching import claimed_items
from bot.remedy_policy.types import ItemView
from tests.bot.test_actions import egg_id, tracker, validate

# every test here runs against a fresh orders database (tests/bot/conftest.py)
pytestmark = pytest.mark.usefixtures("orders_db")

OYAKODON = [
    ItemView(1, "OYAKO", "親子丼", "Oyakodon", "dish", 980),
    ItemView(2, "EGG", "別卵", "Extra egg", "topping", 80),
    ItemView(3, "MISO", "味噌汁", "Miso soup", "side", 150),
]
BURGER = [
    ItemView(4, "B", "チーズバーガー", "Cheeseburger", "dish", 900),
    ItemView(5, "F", "ポテト", "Fries", "side", 300),
    ItemView(6, "C", "コーラ", "Cola", "drink", 200),
]


@pytest.mark.parametrize(
    "text, items, mentions, claimed",
    [
        ("さっき届いた親子丼、別卵がなかったんだけど。。", OYAKODON, ["親子丼", "別卵"], ["別卵"]),
        ("親子丼に別卵が付いていませんでした", OYAKODON, [], ["別卵"]),
        ("親子丼は来たけど味噌汁が入ってない", OYAKODON, [], ["味噌汁"]),
        ("別卵が入ってない親子丼", OYAKODON, [], ["別卵"]),
        ("親子丼と味噌汁", OYAKODON, [], ["親子丼", "味噌汁"]),  # says neither: both named
        ("味噌汁と別卵が入っていませんでした", OYAKODON, [], ["別卵", "味噌汁"]),
        (
            "味噌汁と別卵が入っていませんでした",
            OYAKODON,
            ["味噌汁と", "別卵"],
            ["別卵", "味噌汁"],
        ),  # as the extractor cuts it  # both missing (order's order)
        ("the miso soup and the egg were missing", OYAKODON, ["miso soup", "egg"], ["別卵", "味噌汁"]),
        ("チーズバーガーとコーラは届いたけどポテトがない", BURGER, [], ["ポテト"]),
        ("the burger came without the fries", BURGER, ["burger", "fries"], ["ポテト"]),
        ("got the burger and coke though, no fries", BURGER, ["burger", "coke", "fries"], ["ポテト"]),
        ("I got the cheeseburger and cola but where are my fries?", BURGER, ["fries"], ["ポテト"]),
        ("my fries are missing", BURGER, ["fries"], ["ポテト"]),
    ],
)
def test_the_missing_item_is_told_apart_from_the_ones_that_came(text, items, mentions, claimed):
    assert [i.name_ja for i in claimed_items(text, items, mentions)] == claimed


def test_a_first_message_naming_the_dish_and_its_missing_egg_claims_the_egg():
    text = "さっき届いた親子丼、別卵がなかったんだけど。。"
    entities = [
        {"entity": "item", "value": "親子丼", "start": 6, "end": 9},
        {"entity": "item", "value": "別卵", "start": 10, "end": 12},
    ]
    first = {
        "event": "user",
        "text": text,
        "timestamp": 1764000000.0,
        "parse_data": {"intent": {"name": "report_missing_item"}, "entities": entities, "text": text},
    }
    t = tracker(
        slots={"problem": "missing_item", "item": ["親子丼", "別卵"]},
        text="1001",
        events=[first, {"event": "user", "text": "1001", "parse_data": {"entities": []}}],
    )
    result, _ = validate("validate_order_id", "1001", t)
    assert result["claim_items"] == [str(egg_id())]  # no "which item?" question
    refunds = [o["amount"] for o in result["offers"]["remedies"] if o["kind"] == "refund_item"]
    assert refunds == [80]  # the egg's price, not the ¥980 dish


@pytest.mark.parametrize(
    "answer",
    ["わかりました、探してみます", "注文番号ってどこに書いてありますか？", "ok, let me check", "where do I find it"],
)
def test_an_unknown_customer_looking_for_the_number_is_told_where_and_no_miss_is_counted(answer):
    from tests.bot.test_actions import STRANGER

    for _ in range(3):  # however often: a person is not needed for this
        result, messages = validate(
            "validate_order_id",
            answer,
            tracker(sender=STRANGER, slots={"problem": "missing_item", "failed_attempts": 0}, text=answer),
        )
        assert [m["response"] for m in messages] == ["utter_order_number_where"]
        assert result == {"order_id": None}


def test_an_answer_that_is_no_order_still_counts_as_a_miss():
    from tests.bot.test_actions import STRANGER

    result, messages = validate(
        "validate_order_id", "親子丼", tracker(sender=STRANGER, slots={"problem": "missing_item"})
    )
    assert messages[0]["response"] == "utter_order_not_understood" and result["failed_attempts"] == 1


# As the demo data (bot/store/seed.py) names them; no entity mentions: the extractor may miss them.
GYUDON = [
    ItemView(7, "GYUDON", "牛丼", "Gyudon", "dish", 650),
    ItemView(8, "ONSEN-TAMAGO", "温泉卵", "Soft-boiled egg", "topping", 100),
]
SEED_BURGER = [
    ItemView(4, "CHEESEBURGER", "チーズバーガー", "Cheeseburger", "dish", 880),
    ItemView(5, "FRIES", "フライドポテト", "French fries", "side", 350),
    ItemView(6, "COLA", "コーラ", "Cola", "drink", 200),
]


@pytest.mark.parametrize(
    "text, items, claimed",
    [
        ("親子丼のベツタマゴが入ってなかった", OYAKODON, ["別卵"]),  # a reading in katakana
        ("親子丼のべつたまごが入ってなかった", OYAKODON, ["別卵"]),
        ("親子丼は来たけどみそ汁が入ってない", OYAKODON, ["味噌汁"]),
        ("牛丼の温玉がついてなかった", GYUDON, ["温泉卵"]),  # a lexicon word (bot/item_words.yml)
        ("牛丼は届いたけど温泉たまごがない", GYUDON, ["温泉卵"]),
        ("the onsen egg was missing from my gyudon", GYUDON, ["温泉卵"]),
        ("got the burger and coke but no fries", SEED_BURGER, ["フライドポテト"]),
        ("the coke is missing", SEED_BURGER, ["コーラ"]),
        ("my frys never came", SEED_BURGER, ["フライドポテト"]),  # typos in English words
        ("the burgr came but no fries", SEED_BURGER, ["フライドポテト"]),
        ("chese burger is missing", SEED_BURGER, ["チーズバーガー"]),
        ("got the burger and fries but the coke is missing", SEED_BURGER, ["コーラ"]),
        ("got the burger and fries", SEED_BURGER, []),  # both arrived: neither is the claim
        ("ポテトは来たけどコーラがない", SEED_BURGER, ["コーラ"]),
    ],
)
def test_items_are_found_in_a_sentence_by_reading_lexicon_word_or_typo(text, items, claimed):
    assert [i.name_ja for i in claimed_items(text, items)] == claimed


@pytest.mark.parametrize(
    "text",
    [
        "the price was wrong",
        "my order was late",
        "the food was cold and bad",
        "it didn't come",
        "the code didn't work",
        "注文が遅い",
        "水曜日に頼んだ",
    ],
)
def test_ordinary_words_in_a_sentence_name_no_item(text):
    assert claimed_items(text, SEED_BURGER + GYUDON) == []


def test_a_lone_kana_read_as_an_item_is_not_an_item_name_but_a_lone_kanji_is():
    from bot.actions.claims import item_mentions

    assert item_mentions(["お"]) == []  # 「返金でお願いします」 once gave the item お
    assert item_mentions(["ー", "、"]) == []
    assert item_mentions(["卵", "マグカップ"]) == ["卵", "マグカップ"]
    assert item_mentions("別卵") == ["別卵"] and item_mentions(None) == []
