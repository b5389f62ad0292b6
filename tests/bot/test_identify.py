"""Reading an unknown customer's phone number and shop (bot/actions/identify.py)."""

import pytest

from bot.actions.identify import phone_digits, romaji_of, shop_matches, wants_other_way


@pytest.mark.parametrize(
    "said, digits",
    [
        ("08012345678", "08012345678"),
        ("080-1234-5678です", "08012345678"),
        ("０８０ー１２３４ー５６７８", "08012345678"),
        ("my phone is +81 80 1234 5678", "08012345678"),
        ("03-1234-5678", "0312345678"),
    ],
)
def test_phone_numbers_as_people_type_them(said, digits):
    assert phone_digits(said) == digits


@pytest.mark.parametrize("said", ["2001です", "12345", "注文は昨日です", "call me maybe"])
def test_what_is_not_a_phone_number(said):
    assert phone_digits(said) is None


@pytest.mark.parametrize(
    "said, shop",
    [
        ("牛丼太郎です", "牛丼太郎 新宿店"),
        ("新宿のお店", "牛丼太郎 新宿店"),
        ("Gyudon Taro Shinjuku", "牛丼太郎 新宿店"),
        ("the shinjuku one", "牛丼太郎 新宿店"),
        ("burger lab", "Burger Lab Roppongi"),
        ("ぎゅうどんたろう", "牛丼太郎 新宿店"),
    ],
)
def test_a_shop_named_in_either_script_matches(said, shop):
    assert shop_matches(said, shop)


@pytest.mark.parametrize(
    "said, shop",
    [
        ("すし匠", "牛丼太郎 新宿店"),
        ("Matsuya", "牛丼太郎 新宿店"),
        ("店", "牛丼太郎 新宿店"),
        ("ten", "牛丼太郎 新宿店"),
        ("わかりません", "牛丼太郎 新宿店"),
    ],
)
def test_another_shop_or_a_bare_word_does_not(said, shop):
    assert not shop_matches(said, shop)


def test_romaji_of_kana():
    assert romaji_of("ギュウドンタロウ") == "gyuudontarou"
    assert romaji_of("シンジュク") == "shinjuku"
    assert romaji_of("ホッカイドウ") == "hokkaidou"
    assert romaji_of("チャーハン") == "chahan"


@pytest.mark.parametrize(
    "said",
    [
        "注文番号がわかりません",
        "番号わからないです",
        "I don't have the order number",
        "can't find it",
        "電話番号でもいいですか",
    ],
)
def test_ways_of_saying_i_do_not_have_the_number(said):
    assert wants_other_way(said)
