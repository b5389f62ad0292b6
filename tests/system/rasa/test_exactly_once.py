"""A remedy is applied once per case, whatever is repeated: a second tap, a request Rasa
retries to the action server, or the same request after the action server restarted.

Rasa retries an action request when the action server is slow or restarts; the request
carries the whole tracker, so the only thing that can stop a second refund is the orders
database (one remedy row per case, keyed by the case number).
"""

from __future__ import annotations

from bot.store import OrdersRepository, make_engine
from devkit import stack
from tests.support.rasa_stack import DEMO_CUSTOMER, button, texts
from tests.system.rasa.test_claims import payload_for_remedy


def settle_egg_claim_with_a_refund(chat) -> str:
    reply = chat.say("別卵が付いていませんでした")
    reply = chat.say(button(reply, "#1001"))
    if "どの商品" in texts(reply):
        reply = chat.say(button(reply, "別卵"))
    reply = chat.say(payload_for_remedy(reply, "refund_item"))
    assert "¥80" in texts(reply)
    return chat.slot("case_id")


def remedies_of_demo_customer(orders_url: str) -> int:
    repository = OrdersRepository(make_engine(orders_url))
    customer = repository.customer_by_line_id(DEMO_CUSTOMER)
    return len(repository.customer_history(customer.id).claim_times)


def said(answer: dict) -> str:
    """The first response the action server asked Rasa to say (it names responses, Rasa
    fills in the language's text)."""
    return answer["responses"][0].get("response")


def action_request(chat, rasa_server) -> dict:
    """The request Rasa sends to run `action_complete_claim` for this conversation."""
    return {
        "next_action": "action_complete_claim",
        "sender_id": chat.sender,
        "tracker": chat.tracker(),
        "domain": stack.get_json(rasa_server.api("/domain")),
        "version": "3.6.21",
    }


def test_retried_and_replayed_action_requests_refund_once(bot, rasa_server, action_server, orders_url, log_dir):
    chat = bot(DEMO_CUSTOMER, language="ja")
    case_id = settle_egg_claim_with_a_refund(chat)
    assert remedies_of_demo_customer(orders_url) == 1
    request = action_request(chat, rasa_server)

    # Rasa retries the same request (e.g. after a timeout): confirmed again, not refunded again.
    for _ in range(2):
        # Rasa's request, with the secret Rasa sends (the action server refuses it otherwise)
        answer = stack.post_json(f"{action_server.url}/webhook", request, headers=action_server.headers())
        assert said(answer) == "utter_remedy_already_applied"
        assert answer["responses"][0]["case_id"] == case_id
    assert remedies_of_demo_customer(orders_url) == 1

    # A fresh action server process (after a crash or a deploy) sees the same record.
    restarted = stack.start_action_server(log_dir, env={"ORDERS_DATABASE_URL": orders_url})
    try:
        answer = stack.post_json(f"{restarted.url}/webhook", request, headers=restarted.headers())
    finally:
        restarted.stop()
    assert said(answer) == "utter_remedy_already_applied"
    assert remedies_of_demo_customer(orders_url) == 1
