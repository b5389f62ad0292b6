"""What the agent reads of the conversation is what the customer saw: a tapped button is
its label, never the payload behind it."""

from rasa_sdk import Tracker

from bot.actions.handoff import transcript

ORDER_PAYLOAD = '/inform{"order_id": "1001"}'
ITEM_PAYLOAD = '/inform{"item": "item:2"}'


def tracker_of(events) -> Tracker:
    return Tracker("U1", {}, {"intent": {"name": "inform"}}, events, False, None, {}, "action_listen")


def bot(text, buttons=()):
    return {"event": "bot", "text": text, "timestamp": 1.0, "data": {"buttons": list(buttons)}}


def user(text, intent="inform"):
    return {"event": "user", "text": text, "timestamp": 2.0, "parse_data": {"intent": {"name": intent}}}


def test_taps_read_as_the_labels_the_customer_tapped():
    turns = transcript(
        tracker_of(
            [
                user("別卵が入ってなかった", "report_missing_item"),
                bot(
                    "どのご注文ですか？",
                    [
                        {"title": "#1001 親子丼ほか2点", "payload": ORDER_PAYLOAD},
                        {"title": "#1000 ほか", "payload": '/inform{"order_id": "1000"}'},
                    ],
                ),
                user(ORDER_PAYLOAD),
                bot(
                    "どの商品ですか？",
                    [
                        {"title": "親子丼", "payload": '/inform{"item": "item:1"}'},
                        {"title": "別卵", "payload": ITEM_PAYLOAD},
                    ],
                ),
                user(ITEM_PAYLOAD),
            ]
        )
    )
    said = [t.text for t in turns if t.role == "customer"]
    assert said == ["別卵が入ってなかった", "[tapped] #1001 親子丼ほか2点", "[tapped] 別卵"]
    assert not any(t.text.startswith("/") for t in turns)


def test_a_payload_of_no_button_shown_is_not_shown_as_the_customers_words():
    turns = transcript(tracker_of([bot("こんにちは"), user('/inform{"order_id": "9999"}')]))
    assert turns[-1].text == "[tapped a button]"
