"""The reply book (gateway/agent_replies.yml, gateway/core/replies.py): what it flags in an
agent's reply and what not, in both languages; the loader's errors name the line; every
draft renders in both languages, with blanks for what is not known."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.core.replies import (
    DEFAULT_REPLIES_PATH,
    PLACEHOLDERS,
    ReplyBookError,
    case_values,
    customer_language,
    load_reply_book,
    normalise,
    parse_reply_book,
    text_digest,
    warning_message,
)


@pytest.fixture(scope="module")
def book():
    return load_reply_book()


# --- what is flagged ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, language",
    [
        ("それはできません", "ja"),
        ("申し訳ございませんが、対応しかねます。", "ja"),
        ("ご返金は致しかねます", "ja"),
        ("返金はできません", "ja"),  # a next-step word inside the refusal is no next step
        ("交換は不可能です。", "ja"),
        ("無理です", "ja"),
        ("ｿﾚﾊﾃﾞｷﾏｾﾝ", "ja"),  # half-width katakana
        ("デキマセン", "ja"),  # katakana
        ("でき ません", "ja"),  # a stray space
        ("We can't do that.", "en"),
        ("WE CANNOT DO THAT", "en"),  # case
        ("We can’t help with this.", "en"),  # a typographic apostrophe
        ("Ｗｅ ｃａｎｎｏｔ ｄｏ ｔｈａｔ", "en"),  # full-width Latin
        ("Sorry, we are unable to help.", "en"),
        ("That is not possible.", "en"),
        ("We cannot refund this.", "en"),  # the refund is what is refused
    ],
)
def test_a_bare_refusal_is_flagged(book, text, language):
    finding = book.check(text, language)
    assert finding is not None and finding.kind == "bare_refusal", text
    assert finding.better_draft == "instead_of_refusal" and book.draft(finding.better_draft)
    assert finding.matched and finding.warning


@pytest.mark.parametrize(
    "text",
    [
        "それはできません。代わりに返金いたします。",
        "申し訳ございませんが返金はできませんので、代わりにクーポンをお送りします。",
        "交換はできかねますが、本日中に担当者からお電話いたします。",
        "再配達はできませんが、返金いたします。",
        "We can't do that, but we will refund the delivery fee.",
        "We cannot refund this, but I'll send you a coupon.",
        "That's not possible today. Instead we can offer a redelivery tomorrow.",
        "ＷＥ ＣＡＮ'Ｔ ｄｏ ｔｈａｔ, ＢＵＴ ＷＥ ＷＩＬＬ ｃａｌｌ ｙｏｕ.",
    ],
)
def test_a_refusal_with_a_next_step_is_not_flagged(book, text):
    assert book.check(text, "ja") is None, text


@pytest.mark.parametrize(
    "text",
    [
        "お届けが遅れて申し訳ございません。すぐに再配達を手配いたします。",
        "ご不便をおかけしました。返金いたしました。",
        "Sorry for the wait. I'll check with the shop and get back to you.",
        "Can do! The refund is on its way.",
        "",
    ],
)
def test_an_ordinary_reply_is_not_flagged(book, text):
    assert book.check(text, "ja") is None


@pytest.mark.parametrize(
    "text",
    [
        "お店との問題ですので当事者間で解決してください",
        "配達員に直接ご連絡ください。",
        "店舗に直接お問い合わせください。返金いたします。",  # flagged even with a next step
        "配達の遅れは弊社の責任ではありません",
        "その件については責任を負いかねます",
        "弊社の責任ﾃﾞﾊｱﾘﾏｾﾝ",  # half-width katakana
        "Please contact the restaurant directly.",
        "That's NOT OUR RESPONSIBILITY, we will refund nothing.",
        "Please settle it between yourselves.",
    ],
)
def test_blame_shifting_is_flagged_always(book, text):
    finding = book.check(text, "ja")
    assert finding is not None and finding.kind == "blame_shift", text
    assert finding.better_draft == "we_take_responsibility"


def test_every_language_is_checked_and_the_warning_leads_with_the_customers(book):
    ja = book.check("We can't do that.", "ja")
    en = book.check("それはできません", "en")
    assert ja and en and ja.kind == en.kind == "bare_refusal"
    assert ja.warning.startswith(ja.warnings["ja"]) and ja.warnings["en"] in ja.warning
    assert en.warning.startswith(en.warnings["en"])


def test_normalising_and_the_digest():
    assert normalise("ＡＢＣ　ﾃﾞｷﾏｾﾝ  We’re") == "abc できません we're"
    assert text_digest("それは できません") == text_digest("それは　できません ")
    assert text_digest("それはできません") != text_digest("それはできません。代わりに")


# --- drafts ---------------------------------------------------------------------------------


def test_the_book_has_the_usual_drafts(book):
    keys = [d.key for d in book.drafts()]
    for key in ("apology_with_remedy", "ask_for_photo", "call_back", "instead_of_refusal", "we_take_responsibility"):
        assert key in keys
    assert book.draft("no_such_draft") is None


@pytest.mark.parametrize("language", ["ja", "en"])
def test_every_draft_renders_and_passes_the_checks(book, language):
    values = {name: f"<{name}>" for name in PLACEHOLDERS}
    for draft in book.drafts():
        assert draft.label[language] and draft.label_in(language) == draft.label[language]
        full = draft.render(language, values)
        assert "{" not in full and "}" not in full
        for name in draft.placeholders:
            assert f"<{name}>" in full
        blank = draft.render(language, {})  # nothing known: blanks, never a KeyError
        assert ("〇〇" if language == "ja" else "___") in blank or not draft.placeholders
        assert book.check(full, language) is None, (draft.key, full)  # our drafts are fine to send


def test_a_draft_in_an_unknown_language_falls_back_to_japanese(book):
    draft = book.draft("call_back")
    assert draft.render("ko", {"agent": "佐藤"}) == draft.render("ja", {"agent": "佐藤"})
    assert draft.render("en-US", {}) == draft.render("en", {})
    assert "佐藤" in draft.render("ja", {"agent": "佐藤", "customer": None})


def test_case_values_and_the_customers_language():
    context = {
        "case_id": "K7",
        "customer": {"display_name": "デモ 太郎", "language": "en"},
        "order": {"number": "1001", "shop": "とり政 渋谷店"},
    }
    assert case_values(context, "佐藤 花子") == {
        "customer": "デモ 太郎",
        "agent": "佐藤 花子",
        "order": "1001",
        "shop": "とり政 渋谷店",
        "case_id": "K7",
    }
    assert customer_language(context) == "en" and customer_language({}) == "ja"


def test_the_warning_message_names_the_words_the_better_draft_and_how_to_send_anyway(book):
    finding = book.check("それはできません", "ja")
    note = warning_message(book, finding, "ja", {"customer": "デモ 太郎"})
    assert "「できません」" in note and "デモ 太郎様" in note and "代わりに" in note
    assert "Send it again to send it unchanged" in note


# --- the loader -----------------------------------------------------------------------------

GOOD = """\
version: 1
checks:
  - key: refusal
    kind: bare_refusal
    patterns:
      ja: [できません]
      en: [cannot]
    warning: {ja: だめ, en: not ok}
    better_draft: instead
next_steps:
  ja: [代わりに]
  en: [instead]
drafts:
  - key: instead
    label: {ja: 代案, en: Instead}
    text: {ja: "{customer}様", en: "Hi {customer}"}
"""


def test_a_small_book_loads(tmp_path):
    book = parse_reply_book(GOOD, "small.yml")
    assert book.check("できません", "ja").kind == "bare_refusal"
    assert book.check("できません。代わりに", "ja") is None
    path = tmp_path / "book.yml"
    path.write_text(GOOD, encoding="utf-8")
    assert [d.key for d in load_reply_book(path).drafts()] == ["instead"]


@pytest.mark.parametrize(
    "old, new, line, words",
    [
        ("    kind: bare_refusal", "    kind: rude", 4, "unknown kind"),
        ("    better_draft: instead", "    better_draft: nope", 9, "no draft `nope`"),
        ('    text: {ja: "{customer}様"', '    text: {ja: "{custmer}様"', 16, "unknown placeholder {custmer}"),
        ('    text: {ja: "{customer}様"', '    text: {ja: "{customer様"', 16, "brace"),
        ("  en: [instead]", "  en: []", 12, "non-empty list"),
        ("version: 1", "version: 2", 1, "unsupported version"),
        ("    label: {ja: 代案, en: Instead}", "    label: {ja: 代案}", 15, "missing `en`"),
        (
            "    warning: {ja: だめ, en: not ok}",
            "    warning: {ja: だめ, en: not ok}\n    colour: red",
            9,
            "unknown field",
        ),
        ("next_steps:", "next_steps: [", 12, "not valid YAML"),
    ],
)
def test_loader_errors_name_the_file_and_the_line(old, new, line, words):
    assert old in GOOD
    with pytest.raises(ReplyBookError) as error:
        parse_reply_book(GOOD.replace(old, new), "book.yml")
    assert str(error.value).startswith(f"book.yml:{line}:"), str(error.value)
    assert words in str(error.value)


def test_an_empty_or_missing_file_is_an_error(tmp_path):
    with pytest.raises(ReplyBookError, match=r"book.yml:1: the file is empty"):
        parse_reply_book("", "book.yml")
    with pytest.raises(ReplyBookError, match="cannot read"):
        load_reply_book(tmp_path / "missing.yml")


def test_the_path_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "book.yml"
    path.write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("AGENT_REPLIES_PATH", str(path))
    assert [d.key for d in load_reply_book().drafts()] == ["instead"]
    env = {"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "AGENT_REPLIES_PATH": str(path)}
    assert Settings.from_env(env).agent_replies_path == Path(path)
    assert Settings.from_env({**env, "AGENT_REPLIES_PATH": ""}).agent_replies_path is None
    path.write_text(GOOD.replace("version: 1", "version: 9"), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"book.yml:1: version"):
        Settings.from_env(env)


def test_the_shipped_book_is_the_default():
    assert DEFAULT_REPLIES_PATH.name == "agent_replies.yml" and DEFAULT_REPLIES_PATH.is_file()
