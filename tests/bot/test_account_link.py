"""LINE's account link on the bot's side (bot/actions/account_link.py), on real rasa-sdk
Trackers against a real (SQLite) orders database: a signed nonce links a LINE user to the
customer it names, once."""

from __future__ import annotations

import time

import pytest

from bot.actions import services
from bot.actions.account_link import ActionAccountLinked, ActionOfferAccountLink, ActionUnlinkAccount
from bot.actions.claims import ActionAskOrderId
from contracts.account_link import sign_nonce
from tests.bot.test_actions import DEMO, STRANGER, run, slots_of, tracker

pytestmark = pytest.mark.usefixtures("orders_db")

KEY = "unit-test-account-link-key"
NEWCOMER = "U0000000000000000000000000000abcd"


@pytest.fixture(autouse=True)
def link_key(monkeypatch):
    monkeypatch.setenv("ACCOUNT_LINK_KEY", KEY)


def hanako_id() -> int:
    """山田 花子: a guest with no LINE account (bot/store/seed.py)."""
    return services.repository().order_by_number("2001").customer_id


def nonce_for(customer_id: int, key: str = KEY, issued_at=None) -> str:
    return sign_nonce(key, customer_id, time.time() if issued_at is None else issued_at)


def linked(nonce, sender: str = NEWCOMER):
    return run(
        ActionAccountLinked(),
        tracker(sender=sender, slots={"account_link_nonce": nonce}, intent="EXTERNAL_account_linked"),
    )


def responses(messages):
    return [m.get("response") for m in messages]


def test_a_signed_fresh_nonce_links_the_line_user_to_the_customer_once():
    messages, events = linked(nonce_for(hanako_id()))
    assert responses(messages) == ["utter_account_linked", "utter_how_can_i_help"]
    assert messages[0]["name"] == "山田 花子"
    assert slots_of(events) == {"account_link_nonce": None}  # not kept in the tracker
    customer = services.repository().customer_by_line_id(NEWCOMER)
    assert customer is not None and customer.id == hanako_id()


def test_a_replayed_nonce_links_nothing():
    nonce = nonce_for(hanako_id())
    linked(nonce)
    # someone else sending the same nonce again gets nothing
    messages, _ = linked(nonce, sender=STRANGER)
    assert responses(messages) == ["utter_account_link_used"]
    assert services.repository().customer_by_line_id(STRANGER) is None
    # the same delivery again (a retry) is told it is in place; nothing more is linked
    messages, _ = linked(nonce)
    assert responses(messages) == ["utter_account_already_linked"]
    assert services.repository().customer_by_line_id(NEWCOMER).id == hanako_id()
    # ... and after an unlink, the old nonce does not link again
    run(ActionUnlinkAccount(), tracker(sender=NEWCOMER, intent="unlink_account"))
    messages, _ = linked(nonce)
    assert responses(messages) == ["utter_account_link_used"]
    assert services.repository().customer_by_line_id(NEWCOMER) is None


@pytest.mark.parametrize("kind", ["forged", "stale", "other-key", "garbage", "missing", "future"])
def test_a_nonce_the_shop_did_not_sign_now_links_nothing(kind):
    customer = hanako_id()
    good = nonce_for(customer)
    nonce = {
        "forged": good.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA",
        "stale": nonce_for(customer, issued_at=time.time() - 3600),
        "other-key": nonce_for(customer, key="not-the-shops-key"),
        "garbage": "not a nonce at all",
        "missing": None,
        "future": nonce_for(customer, issued_at=time.time() + 3600),
    }[kind]
    messages, _ = linked(nonce)
    assert responses(messages) == ["utter_account_link_failed"]
    assert services.repository().customer_by_line_id(NEWCOMER) is None


def test_without_the_key_nothing_is_linked(monkeypatch):
    nonce = nonce_for(hanako_id())
    monkeypatch.delenv("ACCOUNT_LINK_KEY")
    messages, _ = linked(nonce)
    assert responses(messages) == ["utter_account_link_failed"]
    assert services.repository().customer_by_line_id(NEWCOMER) is None


def test_a_nonce_for_a_customer_we_do_not_have_links_nothing():
    messages, _ = linked(nonce_for(987654))
    assert responses(messages) == ["utter_account_link_failed"]
    assert services.repository().customer_by_line_id(NEWCOMER) is None


def test_a_line_account_or_customer_linked_to_another_is_never_moved():
    demo = services.repository().customer_by_line_id(DEMO)
    # デモ 太郎's LINE account asks to link 山田 花子's shop account: refused, both stay
    messages, _ = linked(nonce_for(hanako_id()), sender=DEMO)
    assert responses(messages) == ["utter_account_link_taken"]
    assert services.repository().customer_by_line_id(DEMO).id == demo.id
    assert services.repository().customer_by_id(hanako_id()).line_user_id is None
    # another LINE account asks for デモ 太郎's shop account: refused as well
    messages, _ = linked(nonce_for(demo.id))
    assert responses(messages) == ["utter_account_link_taken"]
    assert services.repository().customer_by_line_id(NEWCOMER) is None
    assert services.repository().customer_by_id(demo.id).line_user_id == DEMO


def test_unlink_takes_the_line_id_off_the_customer_and_says_whose_it_was():
    linked(nonce_for(hanako_id()))
    messages, _ = run(ActionUnlinkAccount(), tracker(sender=NEWCOMER, intent="unlink_account"))
    assert responses(messages) == ["utter_account_unlinked"] and messages[0]["name"] == "山田 花子"
    assert services.repository().customer_by_line_id(NEWCOMER) is None
    messages, _ = run(ActionUnlinkAccount(), tracker(sender=NEWCOMER, intent="unlink_account"))
    assert responses(messages) == ["utter_account_not_linked"]


def test_the_offer_names_the_linked_customer_or_asks_the_gateway_for_the_link_button():
    messages, _ = run(ActionOfferAccountLink(), tracker(sender=DEMO, intent="link_account"))
    assert responses(messages) == ["utter_account_already_linked"] and messages[0]["name"] == "デモ 太郎"
    assert not any(m.get("custom") for m in messages)
    messages, _ = run(ActionOfferAccountLink(), tracker(sender=NEWCOMER, intent="link_account"))
    assert responses(messages) == ["utter_account_link_offer", None]
    assert messages[1]["custom"] == {"account_link": {}}


def test_an_unknown_customer_asked_for_the_order_number_is_offered_the_link_too():
    messages, _ = run(ActionAskOrderId(), tracker(sender=NEWCOMER, slots={"problem": "missing_item"}))
    assert messages[0]["response"] == "utter_ask_order_number" and messages[0]["buttons"]
    assert messages[-1]["custom"] == {"account_link": {}}
    # not during the phone-and-shop check, and never to a known customer
    messages, _ = run(ActionAskOrderId(), tracker(sender=NEWCOMER, slots={"verify_step": "phone"}))
    assert not any(m.get("custom") for m in messages)
    messages, _ = run(ActionAskOrderId(), tracker(sender=DEMO, slots={"problem": "missing_item"}))
    assert not any((m.get("custom") or {}).get("account_link") is not None for m in messages)
