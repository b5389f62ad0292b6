"""Each action on real rasa-sdk Trackers against a real (SQLite) orders database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import services
from bot.actions.claims import ActionAskClaimItems, ActionAskOrderId, ActionStartClaim, ValidateClaimForm
from bot.actions.fallback import ActionClarifyOrHandoff
from bot.actions.handoff import ActionHandoff
from bot.actions.remedies import ActionAskRemedy, ActionAskRemedyConfirmed, ActionCompleteClaim

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
DEMO = "U00000000000000000000000000000001"
STRANGER = "Uffffffffffffffffffffffffffffffff"


# every test here runs against a fresh orders database (tests/bot/conftest.py)
pytestmark = pytest.mark.usefixtures("orders_db")


def tracker(
    sender: str = DEMO,
    slots: Optional[Dict[str, Any]] = None,
    intent: str = "inform",
    text: str = "",
    entities: Optional[List[Dict[str, Any]]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 0.99}, "text": text, "entities": entities or []}
    return Tracker(
        sender,
        {"language": "ja", "failed_attempts": 0, **(slots or {})},
        latest,
        events or [{"event": "user", "text": text, "parse_data": latest, "timestamp": 1764000000.0}],
        False,
        None,
        {"name": "claim_form"},
        "action_listen",
    )


def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, DOMAIN))
    return dispatcher.messages, events


def slots_of(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def egg_id() -> int:
    order = services.repository().order_by_number("1001")
    return next(i.item_id for i in order.items if i.sku == "EXTRA-EGG")


def test_start_claim_takes_the_problem_from_the_intent_and_forgets_the_last_claim():
    _, events = run(
        ActionStartClaim(),
        tracker(
            intent="report_late_delivery", slots={"problem": "missing_item", "case_id": "C-1", "remedy": "refund_item"}
        ),
    )
    slots = slots_of(events)
    assert slots["problem"] == "late_delivery"
    assert slots["case_id"] is None and slots["remedy"] is None


def test_the_one_order_holding_the_named_item_is_confirmed_in_one_tap():
    # 別卵 is in #1001 only: no list of four orders, one question with yes / no
    messages, events = run(
        ActionAskOrderId(),
        tracker(slots={"problem": "missing_item", "item": ["別卵"]}, text="さっき届いた親子丼、別卵がなかった"),
    )
    assert messages[0]["response"] == "utter_confirm_order"
    assert messages[0]["order_number"] == "1001" and messages[0]["items"] == "別卵"
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert titles == ["はい、#1001です", "ちがう注文"]
    assert json.loads(messages[0]["buttons"][0]["payload"][len("/inform") :]) == {"order_id": "1001"}
    assert slots_of(events) == {"order_proposal": "1001"}


def test_an_item_in_several_orders_gets_the_list_with_those_orders_first():
    # no item named: nothing to propose, every recent delivered order as a button
    messages, _ = run(ActionAskOrderId(), tracker(slots={"problem": "missing_item"}, text="商品が足りない"))
    assert messages[0]["response"] == "utter_choose_order"
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert titles[0].startswith("#1001") and len(titles) > 1
    assert all(len(t) <= 20 for t in titles)  # LINE quick-reply label limit


def test_after_no_to_the_proposal_the_list_comes():
    messages, _ = run(
        ActionAskOrderId(), tracker(slots={"problem": "missing_item", "item": ["別卵"], "order_proposal": "declined"})
    )
    assert messages[0]["response"] == "utter_choose_order"


@pytest.mark.parametrize(
    "said, intent",
    [
        ("はい", "affirm"),
        ("そうです", "affirm"),
        ("yes", "affirm"),
        ("持ってきてくれる？", "inform"),
        ("#1001", "inform"),
    ],
)
def test_yes_to_the_proposal_takes_that_order_and_its_named_item(said, intent):
    t = tracker(
        slots={"problem": "missing_item", "order_proposal": "1001", "item": ["別卵"]},
        intent=intent,
        text=said,
        events=[
            _said("さっき届いた親子丼、別卵がなかった", entities=[{"entity": "item", "value": "別卵"}]),
            _said(said, intent=intent),
        ],
    )
    result, _ = validate("validate_order_id", said, t)
    assert result["order_id"] == "1001"
    assert result["claim_items"] == [str(egg_id())]  # and no item question


@pytest.mark.parametrize(
    "said, intent",
    [("ちがう", "deny"), ("いいえ、別の注文です", "deny"), ("no, another one", "deny"), ("違います", "inform")],
)
def test_no_to_the_proposal_asks_with_the_list_and_counts_no_miss(said, intent):
    t = tracker(slots={"problem": "missing_item", "order_proposal": "1001"}, intent=intent, text=said)
    result, messages = validate("validate_order_id", said, t)
    assert result == {"order_id": None, "order_proposal": "declined", "failed_attempts": 0}
    assert messages == []


def _said(text: str, intent: str = "inform", entities=None) -> Dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "timestamp": 1764000000.0,
        "parse_data": {"intent": {"name": intent}, "text": text, "entities": entities or []},
    }


def test_unknown_customer_is_asked_for_the_order_number():
    messages, _ = run(ActionAskOrderId(), tracker(sender=STRANGER, slots={"problem": "missing_item"}))
    assert messages[0]["response"] == "utter_ask_order_number"


def validate(method: str, value: Any, t: Tracker):
    dispatcher = CollectingDispatcher()
    result = getattr(ValidateClaimForm(), method)(value, dispatcher, t, DOMAIN)
    return result, dispatcher.messages


def test_an_order_of_another_customer_is_not_found_for_a_stranger():
    result, messages = validate(
        "validate_order_id", "1001", tracker(sender=STRANGER, slots={"problem": "missing_item"})
    )
    assert result["order_id"] is None
    assert messages[0]["response"] == "utter_order_not_found"


def test_a_guest_order_is_found_by_number():
    result, _ = validate(
        "validate_order_id", "注文番号は２００１です", tracker(sender=STRANGER, slots={"problem": "missing_item"})
    )
    assert result["order_id"] == "2001"


def test_naming_one_item_skips_the_item_question_and_offers_remedies():
    result, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["たまご"]}))
    assert result["claim_items"] == [str(egg_id())]
    kinds = {o["kind"]: o["amount"] for o in result["offers"]["remedies"]}
    assert kinds["refund_item"] == 80
    assert result["case_id"].startswith("C-")
    assert result["offers"]["remedies"][0]["kind"] != "coupon"


def test_an_old_order_is_out_of_policy_and_escalates():
    result, _ = validate(
        "validate_claim_items",
        ["item:0"],
        tracker(
            slots={"problem": "missing_item", "order_id": "1003"},
            text="ポテト",
            entities=[{"entity": "item", "value": "ポテト"}],
        ),
    )
    assert result["handoff_reason"] == "claim_window_passed"


def test_refusing_every_remedy_escalates_with_the_refused_list():
    offers = {
        "remedies": [
            {"kind": "send_item", "amount": 0, "eta": None},
            {"kind": "refund_item", "amount": 80, "eta": None},
        ]
    }
    result, _ = validate(
        "validate_remedy", "いらない", tracker(intent="deny", slots={"problem": "missing_item", "offers": offers})
    )
    assert result["handoff_reason"] == "all_remedies_refused"
    assert result["refused_remedies"] == ["send_item", "refund_item"]


def test_a_request_for_a_person_answers_any_question_of_the_form():
    result, _ = validate(
        "validate_claim_items", "人と話したい", tracker(intent="request_human", slots={"order_id": "1001"})
    )
    assert result["handoff_reason"] == "request_human"


def test_the_chosen_remedy_is_applied_once_even_when_the_action_runs_twice():
    chosen, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["別卵"]}))
    slots = {"problem": "missing_item", **chosen, "remedy": "refund_item"}
    messages, _ = run(ActionAskRemedy(), tracker(slots=slots))
    assert "¥80" in str(messages[0])
    first, _ = run(ActionCompleteClaim(), tracker(slots=slots))
    assert first[0]["response"] == "utter_remedy_applied"
    assert "¥80" in first[0]["confirmation"]
    services.reset()  # a restarted action server: new engine, same database
    second, _ = run(ActionCompleteClaim(), tracker(slots={**slots, "remedy": "send_item"}))
    assert second[0]["response"] == "utter_remedy_already_applied"
    applied = services.repository().remedy_for_case(slots["case_id"])
    assert (applied.kind, applied.amount) == ("refund_item", 80)
    assert len(services.repository().customer_history(applied_customer_id()).claim_times) == 1


def test_the_remedy_applied_is_the_engines_whatever_the_slots_say():
    chosen, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["別卵"]}))
    forged = {
        "remedies": [
            {"kind": "refund_item", "amount": 999999, "eta": None, "needs_approval": False},
            {"kind": "cancel_order", "amount": 999999, "eta": None, "needs_approval": False},
        ]
    }
    # a remedy the engine does not offer for this claim goes to a person, nothing is applied
    slots = {"problem": "missing_item", **chosen, "offers": forged, "remedy": "cancel_order"}
    messages, _ = run(ActionCompleteClaim(), tracker(slots=slots))
    assert any(m.get("custom", {}).get("handoff") for m in messages if m.get("custom"))
    assert services.repository().remedy_for_case(slots["case_id"]) is None
    # an offered one is applied at the engine's amount (the separate egg: ¥80)
    messages, _ = run(ActionCompleteClaim(), tracker(slots={**slots, "remedy": "refund_item"}))
    assert messages[0]["response"] == "utter_remedy_applied" and "¥80" in messages[0]["confirmation"]
    assert services.repository().remedy_for_case(slots["case_id"]).amount == 80


def test_a_case_of_another_customer_is_never_applied_from_this_conversation():
    chosen, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["別卵"]}))
    slots = {"problem": "missing_item", **chosen, "remedy": "refund_item"}
    messages, _ = run(ActionCompleteClaim(), tracker(sender=STRANGER, slots=slots))
    assert not any(m.get("response") == "utter_remedy_applied" for m in messages)
    assert services.repository().remedy_for_case(slots["case_id"]) is None


def applied_customer_id() -> int:
    return services.repository().customer_by_line_id(DEMO).id


def test_handoff_builds_the_case_and_pauses_the_conversation():
    t = tracker(
        intent="report_safety_issue",
        text="卵アレルギーなのに卵が入っていた",
        slots={"problem": "missing_item", "order_id": "1001", "claim_items": [str(egg_id())]},
    )
    messages, events = run(ActionHandoff(), t)
    case = next(m["custom"]["handoff"] for m in messages if m.get("custom"))
    assert case["reason"] == "safety"
    assert case["order"]["number"] == "1001"
    assert [i["name_ja"] for i in case["items"] if i["claimed"]] == ["別卵"]
    assert case["transcript"][0]["text"] == "卵アレルギーなのに卵が入っていた"
    assert case["case_id"]
    assert any(e.get("event") == "pause" for e in events) or ConversationPaused() in events
    assert services.repository().handoffs_for_customer(applied_customer_id())


def _user(intent: str) -> Dict[str, Any]:
    return {"event": "user", "text": "x", "parse_data": {"intent": {"name": intent}}}


def test_first_unclear_message_is_clarified_the_second_goes_to_a_person():
    once = [_user("greet"), {"event": "bot", "text": "hi"}, _user("nlu_fallback")]
    messages, events = run(ActionClarifyOrHandoff(), tracker(intent="nlu_fallback", events=once))
    assert messages[0]["response"] == "utter_clarify" and events == []
    twice = once + [{"event": "bot", "text": "?"}, _user("out_of_scope")]
    messages, events = run(ActionClarifyOrHandoff(), tracker(intent="out_of_scope", events=twice))
    assert any(m.get("custom", {}).get("handoff", {}).get("reason") == "out_of_scope" for m in messages)


@pytest.mark.parametrize(
    "text,before,after",
    [
        ("my fries are missing", "ja", "en"),
        ("別卵がありません", "en", "ja"),
        ("OK", "en", None),  # nothing to say: the slot stays
        ('/inform{"order_id": "1001"}', "ja", None),  # a button tap is not the customer's words
        ("EXTERNAL: EXTERNAL_agent_resolved", "ja", None),  # an agent's action in Slack, not the customer
    ],
)
def test_the_language_follows_the_customer(text, before, after):
    from bot.actions.language import ActionDetectLanguage

    _, events = run(ActionDetectLanguage(), tracker(text=text, slots={"language": before}))
    assert slots_of(events).get("language") == after


def test_the_item_question_shows_the_order_as_a_card_with_prices():
    messages, _ = run(ActionAskClaimItems(), tracker(slots={"problem": "missing_item", "order_id": "1001"}))
    card = messages[0]["custom"]["order_card"]
    assert card["order_id"] == "1001"
    assert {"name": "別卵", "price": 80, "quantity": 1} in card["items"]
    assert {"name": "配送料", "price": 300} in card["items"]
    assert card["total"] == 1510  # 980 + 80 + 150 + the ¥300 fee: what the customer paid
    assert messages[1]["response"] == "utter_choose_items"
    assert [b["title"] for b in messages[1]["buttons"]] == ["親子丼", "別卵", "味噌汁"]


def test_remedies_are_offered_as_buttons_and_as_a_card_with_full_details():
    chosen, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["別卵"]}))
    messages, _ = run(ActionAskRemedy(), tracker(slots={"problem": "missing_item", **chosen}))
    card, offer = messages[0]["custom"]["remedy_card"], messages[1]
    assert offer["response"] == "utter_offer_remedies"
    assert [o["payload"] for o in card["options"]] == [b["payload"] for b in offer["buttons"][:-1]]
    assert card["options"][0]["recommended"] and "coupon" not in card["options"][0]["payload"]
    assert "別卵の代金¥80を返金" in [o["detail"] for o in card["options"]]
    assert offer["buttons"][-1]["payload"] == "/deny"  # "none of these" reaches a person


# --- confirmation before money moves (remedy_policy.yml confirm_first) ---------------------------


def _cancel_claim() -> Dict[str, Any]:
    """A claim to cancel #1006 (preparing, ¥1,730 with the fee) with its offers decided."""
    chosen, _ = validate("validate_order_id", "1006", tracker(slots={"problem": "cancel_order"}))
    return {"problem": "cancel_order", **chosen}


def test_a_tapped_cancellation_is_confirmed_first_and_applied_only_on_yes():
    slots = _cancel_claim()
    result, _ = validate(
        "validate_remedy", "cancel_order", tracker(slots=slots, text='/inform{"remedy": "cancel_order"}')
    )
    assert result["remedy"] == "cancel_order" and result["confirm_remedy"] == "cancel_order"
    slots = {**slots, **result}
    form = ValidateClaimForm()
    required = asyncio.run(form.required_slots([], CollectingDispatcher(), tracker(slots=slots), DOMAIN))
    assert required[-1] == "remedy_confirmed"  # the form asks before anything is applied
    messages, _ = run(ActionAskRemedyConfirmed(), tracker(slots=slots))
    assert "¥1,730" in messages[0]["offer"]
    assert [b["title"] for b in messages[0]["buttons"]] == ["はい、キャンセルする", "キャンセルしない"]
    # without the yes nothing is applied, whatever the tracker says
    run(ActionCompleteClaim(), tracker(slots=slots))
    assert services.repository().remedy_for_case(slots["case_id"]) is None
    yes, _ = validate("validate_remedy_confirmed", "/affirm", tracker(intent="affirm", slots=slots, text="/affirm"))
    assert yes["remedy_confirmed"] is True
    messages, _ = run(ActionCompleteClaim(), tracker(slots={**slots, **yes}))
    assert messages[0]["response"] == "utter_remedy_applied"
    assert services.repository().remedy_for_case(slots["case_id"]).amount == 1730


@pytest.mark.parametrize(
    "said, intent",
    [
        ("/deny", "deny"),
        ("やっぱりキャンセルしないで", "inform"),
        ("キャンセルしなくて大丈夫です", "inform"),
        ("no, keep it", "deny"),
    ],
)
def test_no_to_a_cancellation_keeps_the_order_and_applies_nothing(said, intent):
    slots = {**_cancel_claim(), "remedy": "cancel_order", "confirm_remedy": "cancel_order"}
    result, messages = validate("validate_remedy_confirmed", said, tracker(intent=intent, slots=slots, text=said))
    assert messages[0]["response"] == "utter_claim_withdrawn"
    assert result["offers"]["notice"] == "withdrawn" and result["remedy"] is None
    messages, _ = run(ActionCompleteClaim(), tracker(slots={**slots, **result}))
    assert services.repository().remedy_for_case(slots["case_id"]) is None


def test_a_costly_remedy_typed_is_confirmed_but_a_cheap_one_or_a_tap_is_not():
    offers = {
        "remedies": [
            {"kind": "refund_item", "amount": 4800, "eta": None},
            {"kind": "coupon", "amount": 300, "eta": None},
        ]
    }
    typed, _ = validate(
        "validate_remedy",
        "返金でお願いします",
        tracker(slots={"problem": "missing_item", "offers": offers}, text="返金でお願いします"),
    )
    assert typed["remedy"] == "refund_item" and typed["confirm_remedy"] == "refund_item"
    tapped, _ = validate(
        "validate_remedy",
        "refund_item",
        tracker(slots={"problem": "missing_item", "offers": offers}, text='/inform{"remedy": "refund_item"}'),
    )
    assert tapped["remedy"] == "refund_item" and tapped["confirm_remedy"] is None
    cheap, _ = validate(
        "validate_remedy", "クーポンで", tracker(slots={"problem": "missing_item", "offers": offers}, text="クーポンで")
    )
    assert cheap["remedy"] == "coupon" and cheap["confirm_remedy"] is None


def test_no_to_a_typed_remedy_goes_back_to_the_choice():
    offers = {"remedies": [{"kind": "refund_item", "amount": 4800, "eta": None}]}
    slots = {"problem": "missing_item", "offers": offers, "remedy": "refund_item", "confirm_remedy": "refund_item"}
    result, _ = validate("validate_remedy_confirmed", "/deny", tracker(intent="deny", slots=slots, text="/deny"))
    assert result["remedy"] is None and result["remedy_confirmed"] is None


@pytest.mark.parametrize("said", ["キャンセルせんといて", "no cancel please", "やっぱりいいです"])
def test_taking_a_cancellation_back_at_the_order_question_keeps_the_order(said):
    for proposal in (None, "1006"):
        t = tracker(slots={"problem": "cancel_order", "order_proposal": proposal}, text=said)
        result, messages = validate("validate_order_id", said, t)
        assert messages[0]["response"] == "utter_claim_withdrawn"
        assert result["offers"]["notice"] == "withdrawn"


def test_found_it_after_all_at_the_order_question_withdraws_the_claim():
    said = "袋の底にありました！大丈夫です"
    result, messages = validate("validate_order_id", said, tracker(slots={"problem": "missing_item"}, text=said))
    assert messages[0]["response"] == "utter_claim_withdrawn"


# --- a customer the shop does not know yet (bot/actions/identify.py) ----------------------


def test_an_unknown_customer_can_find_the_order_by_phone_and_shop_and_is_linked():
    asked, _ = run(ActionAskOrderId(), tracker(sender=STRANGER, slots={"problem": "missing_item"}))
    assert asked[0]["response"] == "utter_ask_order_number"
    assert [b["title"] for b in asked[0]["buttons"]] == ["番号がわからない"]
    said = asked[0]["buttons"][0]["payload"]  # the button fills order_id with "by_phone"
    step, _ = validate(
        "validate_order_id", "by_phone", tracker(sender=STRANGER, slots={"problem": "missing_item"}, text=said)
    )
    assert step["verify_step"] == "phone"
    asked, _ = run(ActionAskOrderId(), tracker(sender=STRANGER, slots={"problem": "missing_item", **step}))
    assert asked[0]["response"] == "utter_ask_phone"
    phone, messages = validate(
        "validate_order_id",
        "０８０ー１２３４ー５６７８です",
        tracker(sender=STRANGER, slots={"problem": "missing_item", **step}),
    )
    assert phone["verify_step"] == "shop" and phone["verify_phone"] == "08012345678"
    assert messages == []  # nothing revealed before the shop matches too
    slots = {"problem": "missing_item", **step, **phone}
    shop, messages = validate(
        "validate_order_id", "牛丼太郎です", tracker(sender=STRANGER, slots=slots, text="牛丼太郎です")
    )
    assert messages[0]["response"] == "utter_identity_verified"
    assert shop["order_id"] == "2001" and shop["verify_step"] is None
    assert services.repository().customer_by_line_id(STRANGER).display_name == "山田 花子"


@pytest.mark.parametrize(
    "phone, shop", [("080-1234-5678", "すし匠"), ("090-9999-9999", "牛丼太郎"), ("090-0000-0001", "とり政")]
)
def test_a_phone_and_shop_that_do_not_match_reveal_nothing_and_link_nothing(phone, shop):
    # the third is a customer already on LINE: never moved to another LINE account
    slots = {"problem": "missing_item", "verify_step": "shop", "verify_phone": phone.replace("-", "")}
    result, messages = validate("validate_order_id", shop, tracker(sender=STRANGER, slots=slots, text=shop))
    assert messages[0]["response"] == "utter_identity_not_verified"
    assert result["order_id"] is None and result["verify_failures"] == 1
    assert services.repository().customer_by_line_id(STRANGER) is None


def test_the_third_failed_check_goes_to_a_person():
    slots = {"problem": "missing_item", "verify_step": "shop", "verify_phone": "08012345678", "verify_failures": 2}
    result, _ = validate("validate_order_id", "すし匠", tracker(sender=STRANGER, slots=slots, text="すし匠"))
    assert result["handoff_reason"] == "identity_not_verified"


def test_a_status_question_inside_the_claim_is_answered_and_the_claim_goes_on():
    chosen, _ = validate("validate_order_id", "1004", tracker(slots={"problem": "late_delivery"}))
    slots = {"problem": "late_delivery", **chosen}
    said = "で、いつ届くの？"
    result, messages = validate("validate_remedy", said, tracker(intent="check_order_status", slots=slots, text=said))
    assert messages[0]["response"].startswith("utter_status_")
    assert result == {"remedy": None}  # no miss counted: the choices come again


def test_what_are_my_options_shows_the_choices_again_without_a_miss():
    offers = {"remedies": [{"kind": "send_item", "amount": 0, "eta": None}]}
    result, messages = validate(
        "validate_remedy",
        "what are my options?",
        tracker(slots={"problem": "missing_item", "offers": offers}, text="what are my options?"),
    )
    assert result == {"remedy": None} and messages == []


def test_yes_after_asking_for_a_remedy_takes_that_one_when_it_is_shown_first():
    offers = {
        "remedies": [
            {"kind": "refund_item", "amount": 2400, "eta": None},
            {"kind": "replace_item", "amount": 0, "eta": None},
        ]
    }
    events = [
        _said("マグカップが欠けてました", intent="report_damaged_item"),
        _said("返金でお願いします"),
        _said("はい", intent="affirm"),
    ]
    t = tracker(intent="affirm", text="はい", events=events, slots={"problem": "damaged_item", "offers": offers})
    result, _ = validate("validate_remedy", "はい", t)
    assert result["remedy"] == "refund_item" and result["confirm_remedy"] is None


def test_two_problems_in_one_message_one_after_the_other_saying_so():
    said = "別卵が入ってなかったし、届くのも遅かった"
    messages, events = run(ActionStartClaim(), tracker(intent="report_missing_item", text=said))
    assert slots_of(events)["next_problem"] == "late_delivery"
    assert messages[0]["response"] == "utter_other_problem_later"
    assert messages[0]["first"] == "商品が足りない" and messages[0]["other"] == "配達が遅い"
    # settled: the other one offered as a button with the same order
    chosen, _ = validate("validate_order_id", "1001", tracker(slots={"problem": "missing_item", "item": ["別卵"]}))
    slots = {"problem": "missing_item", **chosen, "remedy": "refund_item", "next_problem": "late_delivery"}
    messages, events = run(ActionCompleteClaim(), tracker(slots=slots))
    offer = next(m for m in messages if m.get("response") == "utter_other_problem_now")
    assert offer["buttons"][0]["payload"] == '/report_late_delivery{"order_id": "1001"}'
    assert slots_of(events) == {"next_problem": None}


def test_one_problem_gets_the_usual_question():
    messages, events = run(
        ActionStartClaim(), tracker(intent="report_missing_item", text="チョコレートが入ってなかった")
    )
    assert slots_of(events)["next_problem"] is None and messages == []


def test_the_phone_number_is_read_from_the_whole_message_not_an_entity_in_it():
    said = "my phone is +81 80 1234 5678"
    t = tracker(
        sender=STRANGER,
        slots={"problem": "missing_item", "verify_step": "phone"},
        text=said,
        entities=[{"entity": "order_id", "value": "5678"}],
    )
    result, _ = validate("validate_order_id", "5678", t)
    assert result["verify_phone"] == "08012345678"


@pytest.mark.parametrize(
    "said, intent",
    [
        ("注文番号がわかりません", "request_human"),
        ("注文番号わからないです…", "express_frustration"),
        ("I don't have the order number, sorry", "express_frustration"),
    ],
)
def test_i_dont_have_the_number_misread_still_takes_the_phone_route(said, intent):
    t = tracker(sender=STRANGER, intent=intent, slots={"problem": "missing_item"}, text=said)
    result, _ = validate("validate_order_id", said, t)
    assert result["verify_step"] == "phone" and "handoff_reason" not in result


def test_a_correction_of_the_item_at_the_order_question_is_not_a_retraction():
    said = "sorry, my mistake, the cola is here. It's the fries that are missing"
    t = tracker(
        sender="U00000000000000000000000000000002",
        text=said,
        slots={"problem": "missing_item", "order_proposal": "1101", "language": "en"},
        events=[_said(said, entities=[{"entity": "item", "value": "cola"}, {"entity": "item", "value": "fries"}])],
    )
    result, messages = validate("validate_order_id", said, t)
    assert result["order_id"] == "1101"
    fries = next(i.item_id for i in services.repository().order_by_number("1101").items if i.sku == "FRIES")
    assert result["claim_items"] == [str(fries)]


def test_a_remedy_named_without_a_word_for_a_person_is_its_answer_not_a_handoff():
    offers = {
        "remedies": [
            {"kind": "refund_item", "amount": 1800, "eta": None},
            {"kind": "store_credit", "amount": 2160, "eta": None},
        ]
    }
    said = "actually, store credit instead"
    result, _ = validate(
        "validate_remedy",
        said,
        tracker(intent="request_human", text=said, slots={"problem": "damaged_item", "offers": offers}),
    )
    assert result["remedy"] == "store_credit" and "handoff_reason" not in result
    said = "store credit is fine but I want to talk to a person"
    result, _ = validate(
        "validate_remedy",
        said,
        tracker(intent="request_human", text=said, slots={"problem": "damaged_item", "offers": offers}),
    )
    assert result["handoff_reason"] == "request_human"


def test_found_them_under_another_item_is_a_retraction_not_a_claim_for_that_item():
    said = "oh wait, never mind, found them under the burger box"
    t = tracker(
        sender="U00000000000000000000000000000002",
        text=said,
        slots={"problem": "missing_item", "order_proposal": "1101", "language": "en"},
        events=[_said(said, entities=[{"entity": "item", "value": "burger"}])],
    )
    result, messages = validate("validate_order_id", said, t)
    assert messages[0]["response"] == "utter_claim_withdrawn"


def test_a_late_claim_about_an_order_delivered_on_time_tells_when_it_came():
    asked = "Has my ceramic bowl been delivered yet?"
    t = tracker(
        sender="U00000000000000000000000000000002",
        slots={"problem": "late_delivery", "language": "en"},
        events=[_said(asked, intent="report_late_delivery"), _said("1102")],
    )
    result, _ = validate("validate_order_id", "1102", t)
    assert result["problem"] == "check_order_status" and "handoff_reason" not in result
    # "it came way late" when the record says on time is not answered with the record
    told = "the bowl showed up way late"
    t = tracker(
        sender="U00000000000000000000000000000002",
        slots={"problem": "late_delivery", "language": "en"},
        events=[_said(told, intent="report_late_delivery"), _said("1102")],
    )
    result, _ = validate("validate_order_id", "1102", t)
    assert result.get("problem") != "check_order_status"


def test_found_them_read_as_safety_without_a_safety_word_is_still_a_retraction():
    said = "oh wait, never mind, found them under the burger box"
    t = tracker(
        sender="U00000000000000000000000000000002",
        intent="report_safety_issue",
        text=said,
        slots={"problem": "missing_item", "order_proposal": "1101", "language": "en"},
    )
    result, messages = validate("validate_order_id", said, t)
    assert messages[0]["response"] == "utter_claim_withdrawn" and "handoff_reason" not in result
    # with a safety word the lexicon found, safety wins: a person at once
    said = "found them, but my son is allergic and ate some"
    t = tracker(
        sender="U00000000000000000000000000000002",
        intent="report_safety_issue",
        text=said,
        slots={"problem": "missing_item", "order_proposal": "1101", "language": "en"},
    )
    t.latest_message["safety_signals"] = [{"signal": "allergy", "text": "allergic"}]
    result, _ = validate("validate_order_id", said, t)
    assert result["handoff_reason"] == "safety"


def test_found_them_read_as_frustration_is_still_a_retraction():
    said = "oh wait, never mind, found them under the burger box"
    t = tracker(
        sender="U00000000000000000000000000000002",
        intent="express_frustration",
        text=said,
        slots={"problem": "missing_item", "order_proposal": "1101", "language": "en"},
    )
    result, messages = validate("validate_order_id", said, t)
    assert messages[0]["response"] == "utter_claim_withdrawn" and "handoff_reason" not in result
