"""A typed remedy choice moves money only when it is clear (bot/remedy_policy/reading.py, and
validate_remedy / action_complete_claim on real Trackers against a real orders database)."""

from __future__ import annotations

import pytest

from bot.actions import services
from bot.actions.remedies import ActionAskRemedy, ActionCompleteClaim
from bot.remedy_policy import PolicyError, load_policy
from bot.remedy_policy.reading import parse_choice_words, read_remedy
from tests.bot.test_actions import run, tracker, validate

# every test here runs against a fresh orders database (tests/bot/conftest.py)
pytestmark = pytest.mark.usefixtures("orders_db")

POLICY = load_policy()
FOOD = ["send_item", "refund_item", "store_credit", "coupon"]
REMAKE = ["remake_dish", "refund_item", "store_credit", "coupon"]


@pytest.mark.parametrize(
    "text, offered, chosen, refused",
    [
        ("返金して", FOOD, "refund_item", ()),
        ("返金でお願いします", FOOD, "refund_item", ()),
        ("返金はいらない", FOOD, None, ("refund_item",)),
        ("返金じゃなくて送ってほしい", FOOD, "send_item", ("refund_item",)),
        ("返金より届けてほしいです", FOOD, "send_item", ("refund_item",)),
        ("クーポンはいらないので作り直してください", REMAKE, "remake_dish", ("coupon",)),
        ("返金してクーポンはいらない", FOOD, "refund_item", ("coupon",)),
        ("クーポンは結構です。返金で", FOOD, "refund_item", ("coupon",)),
        ("キャンセルしなくて大丈夫です", ["cancel_order"], None, ("cancel_order",)),
        ("キャンセルでお願いします", ["cancel_order"], "cancel_order", ()),
        ("２番で", FOOD, "refund_item", ()),
        ("refund please", FOOD, "refund_item", ()),
        ("I want my money back", FOOD, "refund_item", ()),
        ("no coupon, just fix it", FOOD, None, ("coupon",)),
        ("actually, send one instead of a refund", FOOD, "send_item", ("refund_item",)),
        ("I don't want a refund, send it please", FOOD, "send_item", ("refund_item",)),
        ("a refund isn't necessary, send it", FOOD, "send_item", ("refund_item",)),
        ("don't cancel after all", ["cancel_order"], None, ("cancel_order",)),
        ("send it now", FOOD, "send_item", ()),  # "no" is not in "now"
    ],
)
def test_a_typed_choice_is_read_with_its_negations(text, offered, chosen, refused):
    reading = read_remedy(POLICY, text, offered)
    assert (reading.chosen, reading.refused, reading.retracted) == (chosen, refused, False)


@pytest.mark.parametrize(
    "text", ["やっぱりいいです", "やっぱりキャンセルはやめておきます", "never mind", "Actually, forget it"]
)
def test_a_retraction_chooses_nothing(text):
    reading = read_remedy(POLICY, text, ["cancel_order"] + FOOD)
    assert reading.retracted and reading.chosen is None


def test_the_word_lists_are_checked_at_load_with_the_line_named():
    with pytest.raises(PolicyError, match=r"words.yml:3: retraction: expected a list of words"):
        parse_choice_words("version: 1\nnegation_after_ja: [a]\nretraction: nope\n", "words.yml")
    with pytest.raises(PolicyError, match=r"words.yml:2: negations: unknown list"):
        parse_choice_words("version: 1\nnegations: [a]\n", "words.yml")


def egg_claim():
    chosen, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["別卵"]}))
    return {"problem": "missing_item", **chosen}


def test_a_refused_remedy_is_not_offered_again_nor_applied():
    slots = egg_claim()
    result, messages = validate(
        "validate_remedy", "クーポンはいらないです", tracker(slots=slots, text="クーポンはいらないです")
    )
    assert result == {"remedy": None, "refused_remedies": ["coupon"]} and messages == []  # no miss counted
    slots = {**slots, **result}
    offered, _ = run(ActionAskRemedy(), tracker(slots=slots))
    card = offered[0]["custom"]["remedy_card"]["options"]
    assert [o["payload"] for o in card] == [
        '/inform{"remedy": "send_item"}',
        '/inform{"remedy": "refund_item"}',
        '/inform{"remedy": "store_credit"}',
    ]
    # even if a tracker says the refused coupon was chosen, it is not applied
    messages, _ = run(ActionCompleteClaim(), tracker(slots={**slots, "remedy": "coupon"}))
    assert not any(m.get("response") == "utter_remedy_applied" for m in messages)
    assert services.repository().remedy_for_case(slots["case_id"]) is None


def test_a_negated_remedy_is_never_chosen_and_the_named_one_is():
    slots = egg_claim()
    result, _ = validate("validate_remedy", "返金じゃなくて送ってほしい", tracker(slots=slots))
    assert result["remedy"] == "send_item" and result["refused_remedies"] == ["refund_item"]


def test_a_retraction_before_choosing_ends_the_claim_with_nothing_applied():
    chosen, _ = validate("validate_order_id", "1006", tracker(slots={"problem": "cancel_order"}))
    slots = {"problem": "cancel_order", **chosen}
    assert [o["kind"] for o in slots["offers"]["remedies"]] == ["cancel_order"]
    result, messages = validate("validate_remedy", "やっぱりキャンセルはやめておきます", tracker(slots=slots))
    assert messages[0]["response"] == "utter_claim_withdrawn" and result["remedy"] is None
    assert "handoff_reason" not in result
    done, _ = run(ActionCompleteClaim(), tracker(slots={**slots, **result}))
    assert [m["response"] for m in done] == ["utter_anything_else"]
    assert services.repository().remedy_for_case(slots["case_id"]) is None
    assert services.repository().order_by_number("1006").status == "preparing"


def test_a_negated_cancellation_is_not_a_cancellation():
    chosen, _ = validate("validate_order_id", "1006", tracker(slots={"problem": "cancel_order"}))
    slots = {"problem": "cancel_order", **chosen}
    result, _ = validate("validate_remedy", "キャンセルしなくて大丈夫です", tracker(slots=slots))
    assert result.get("remedy") is None
    assert services.repository().remedy_for_case(slots["case_id"]) is None


def test_a_remedy_asked_for_in_the_first_message_is_offered_first_and_a_refused_one_not_at_all():
    first = "親子丼に別卵が付いてなかった。クーポンはいらないので返金してほしい"
    report = {
        "event": "user",
        "text": first,
        "timestamp": 1764000000.0,
        "parse_data": {"intent": {"name": "report_missing_item"}, "entities": [], "text": first},
    }
    slots = egg_claim()
    messages, events = run(ActionAskRemedy(), tracker(slots=slots, events=[report]))
    options = messages[0]["custom"]["remedy_card"]["options"]
    assert options[0]["payload"] == '/inform{"remedy": "refund_item"}' and options[0]["recommended"]
    assert all("coupon" not in o["payload"] for o in options)
    assert {"event": "slot", "name": "refused_remedies", "value": ["coupon"], "timestamp": None} in events


def test_a_typed_refund_read_as_a_payment_question_still_chooses_the_refund():
    slots = egg_claim()
    result, _ = validate(
        "validate_remedy",
        "へんきんしてください",
        tracker(slots=slots, intent="ask_payment_or_account", text="へんきんしてください"),
    )
    assert result["remedy"] == "refund_item" and "handoff_reason" not in result


def test_declining_the_cancellation_itself_keeps_the_order_without_a_person():
    chosen, _ = validate("validate_order_id", "1006", tracker(slots={"problem": "cancel_order"}))
    slots = {"problem": "cancel_order", **chosen}
    result, messages = validate(
        "validate_remedy", "やっぱりキャンセルしなくて大丈夫です", tracker(slots=slots, intent="deny")
    )
    assert messages[0]["response"] == "utter_claim_withdrawn" and "handoff_reason" not in result


@pytest.mark.parametrize("answer", ["あ、見つかりました！すみません", "never mind, found it"])
def test_found_it_at_the_order_question_ends_the_claim_with_nothing_applied(answer):
    slots = {"problem": "missing_item", "item": ["別卵"]}
    result, messages = validate("validate_order_id", answer, tracker(slots=slots, text=answer))
    assert messages[0]["response"] == "utter_claim_withdrawn"
    assert "handoff_reason" not in result and result["offers"]["notice"] == "withdrawn"
    done, _ = run(ActionCompleteClaim(), tracker(slots={**slots, **result}))
    assert [m["response"] for m in done] == ["utter_anything_else"]


def test_a_refund_typed_at_the_remedy_question_is_no_payment_handoff():
    from bot.actions.handoff import ActionHandoff

    slots = egg_claim()
    t = tracker(
        slots={**slots, "requested_slot": "remedy"}, intent="ask_payment_or_account", text="へんきんしてください"
    )
    t.active_loop = {"name": "claim_form"}
    messages, events = run(ActionHandoff(), t)
    assert not any(m.get("custom") for m in messages)  # no case for a person
    assert {"event": "slot", "name": "remedy", "value": "refund_item", "timestamp": None} in events
    assert {"event": "followup", "name": "action_complete_claim", "timestamp": None} in events
    # outside the remedy question a payment question still goes to a person
    t = tracker(slots=slots, intent="ask_payment_or_account", text="返金はいつ口座に入りますか")
    messages, _ = run(ActionHandoff(), t)
    assert any(m.get("custom", {}).get("handoff") for m in messages if m.get("custom"))


def test_a_remedy_wished_for_at_the_order_question_is_no_miss_and_no_person():
    from bot.actions.handoff import ActionHandoff

    t = tracker(
        slots={"problem": "missing_item", "requested_slot": "order_id"},
        intent="ask_payment_or_account",
        text="へんきんしてください",
    )
    messages, events = run(ActionHandoff(), t)
    assert messages == [] and events == [{"event": "followup", "name": "claim_form", "timestamp": None}]
    result, messages = validate("validate_order_id", "へんきんしてください", tracker(slots={"problem": "missing_item"}))
    assert result == {"order_id": None} and messages == []
    # "found it, order 2001" is an order number, not a retraction
    result, messages = validate(
        "validate_order_id", "found it, it's order 1001", tracker(slots={"problem": "missing_item"})
    )
    assert result["order_id"] == "1001"
