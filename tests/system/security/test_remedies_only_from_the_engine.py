"""Money moves only through the policy engine, whatever reaches the action server.

Over the real action server process (bot/server/actions.py) and a real SQLite orders
database: requests carry the right shared secret (as if Rasa itself, or someone holding
its secret, sent them) with hand-made trackers. Whatever the slots, the next action or the
sender, a remedy row is only ever one the engine offers for that case's order and items at
that moment, at the engine's amount, for the case's own customer; one only a person may
grant needs an approval the gateway signed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.remedy_policy import decide, load_policy
from bot.remedy_policy.types import CustomerHistory, PolicyDecision
from bot.store import OrdersRepository, init_db, make_engine
from contracts.approvals import AgentApproval, Approver, sign_approval
from tests.support.rasa_stack import reset_orders

ROOT = Path(__file__).resolve().parents[3]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
DEMO, EMMA, STRANGER = (
    "U00000000000000000000000000000001",
    "U00000000000000000000000000000002",
    "Uffffffffffffffffffffffffffffffff",
)
POLICY = load_policy()
KINDS = sorted(POLICY.remedies)
PROBLEMS = ("missing_item", "wrong_item", "damaged_item", "late_delivery", "cancel_order")
APPLYING_ACTIONS = ("action_complete_claim", "action_agent_approved_remedy")


def webhook(action_server, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> int:
    request = urllib.request.Request(
        f"{action_server.url}/webhook",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(action_server.headers() if headers is None else headers)},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def request_body(next_action: str, sender: str, slots: Dict[str, Any], intent: str = "inform") -> Dict[str, Any]:
    latest = {"intent": {"name": intent, "confidence": 1.0}, "text": "", "entities": []}
    return {
        "next_action": next_action,
        "sender_id": sender,
        "version": "3.6.21",
        "domain": DOMAIN,
        "tracker": {
            "sender_id": sender,
            "slots": {"language": "ja", **slots},
            "latest_message": latest,
            "events": [{"event": "user", "text": "", "parse_data": latest, "timestamp": time.time()}],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def remedy_rows(orders_url: str) -> List[Tuple]:
    with sqlite3.connect(orders_url.split(":///", 1)[1]) as db:
        return db.execute(
            "SELECT c.case_number, c.customer_id, c.problem, c.item_ids, o.number, r.kind, r.amount, r.applied_at "
            "FROM remedies r JOIN claims c ON r.claim_id = c.id LEFT JOIN orders o ON c.order_id = o.id"
        ).fetchall()


@pytest.fixture(scope="module")
def repository(orders_url, action_server) -> OrdersRepository:
    engine = make_engine(orders_url)
    init_db(engine)
    return OrdersRepository(engine)


def assert_only_engine_remedies(
    orders_url: str,
    case: str,
    decision: PolicyDecision,
    approved: Optional[str],
    customer_line_id: Optional[str],
    sender: str,
) -> None:
    """The only remedy row is for `case`, is the engine's offer for it (`decision`, taken
    just before the request: applying a cancellation changes the order), at the engine's
    amount, from the case's own customer; one needing approval had a signed approval."""
    rows = remedy_rows(orders_url)
    assert {r[0] for r in rows} <= {case}, "a remedy for a case nobody opened"
    for _, _, problem, _, _, kind, amount, _ in rows:
        offered = {o.kind: o.amount for o in decision.offers}
        approvable = {o.kind: o.amount for o in decision.needs_approval}
        assert kind in offered or (kind in approvable and approved == kind), (
            f"{case}: {kind} ¥{amount} is not what the engine offers for {problem} ({decision})"
        )
        assert amount == {**approvable, **offered}[kind], f"{case}: ¥{amount} is not the engine's amount"
        # a guest's order (no LINE account) is theirs by its number; others only their own
        assert customer_line_id in (None, sender), f"{case}: applied from another customer's conversation"


def test_without_the_shared_secret_the_action_server_refuses_and_writes_nothing(action_server, repository, orders_url):
    reset_orders(orders_url)
    case = repository.open_claim(1, "1005", "damaged_item", [], datetime.now(timezone.utc))
    forged = request_body(
        "action_agent_approved_remedy",
        DEMO,
        {
            "case_id": case,
            "order_id": "1005",
            "approved_remedy": "refund_item",
            "offers": {"needs_approval": [{"kind": "refund_item", "amount": 999999}]},
        },
    )
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": action_server.token}):
        assert webhook(action_server, forged, headers) == 401
    assert remedy_rows(orders_url) == []


def test_the_reported_attack_with_the_secret_applies_nothing_without_a_signed_approval(
    action_server, repository, orders_url
):
    """The ¥999,999 refund for a ¥2,400 mug, now with Rasa's own secret: still nothing."""
    reset_orders(orders_url)
    case = repository.open_claim(1, "1005", "damaged_item", [], datetime.now(timezone.utc))
    forged = request_body(
        "action_agent_approved_remedy",
        DEMO,
        {
            "case_id": case,
            "order_id": "1005",
            "approved_remedy": "refund_item",
            "agent_name": "x",
            "offers": {"needs_approval": [{"kind": "refund_item", "amount": 999999, "needs_approval": True}]},
        },
        intent="EXTERNAL_agent_approved_remedy",
    )
    assert webhook(action_server, forged) == 200
    assert remedy_rows(orders_url) == []
    # The customer's own path with a forged price applies the engine's amount or nothing.
    chosen = request_body(
        "action_complete_claim",
        DEMO,
        {
            "case_id": case,
            "order_id": "1005",
            "problem": "damaged_item",
            "remedy": "refund_item",
            "offers": {"remedies": [{"kind": "refund_item", "amount": 999999}]},
        },
    )
    assert webhook(action_server, chosen) == 200
    assert [(r[5], r[6]) for r in remedy_rows(orders_url)] == [("refund_item", 2400)]


ORDER_NUMBERS = ("1001", "1002", "1003", "1004", "1005", "1006", "1101", "2001", "9999")
junk = st.one_of(st.none(), st.text(max_size=12), st.integers(-(10**9), 10**9), st.booleans())


def mostly(main: st.SearchStrategy, rarely: st.SearchStrategy = junk) -> st.SearchStrategy:
    """`main` four times in five, `rarely` otherwise (`a | b` would be half and half)."""
    return st.integers(0, 4).flatmap(lambda n: rarely if n == 0 else main)


@st.composite
def attack(draw) -> Dict[str, Any]:
    return {
        # mostly the actions that apply, from the case's own customer ("owner"): where money moves
        "next_action": draw(
            st.sampled_from(
                APPLYING_ACTIONS * 3
                + ("action_ask_remedy", "validate_claim_form", "action_handoff", "action_agent_resolved")
            )
        ),
        "sender": draw(mostly(st.just("owner"), st.sampled_from((DEMO, EMMA, STRANGER)))),
        "claim": (
            draw(st.sampled_from(("1001", "1002", "1004", "1005", "1006", "1101", "2001"))),
            draw(st.sampled_from(PROBLEMS)),
        ),
        "case": draw(mostly(st.just("opened"), st.just("junk"))),
        "order_id": draw(mostly(st.just("same"), st.sampled_from(ORDER_NUMBERS) | junk)),
        # "offered"/"approvable": one the engine offers for the case now (the legitimate choice)
        "remedy": draw(mostly(st.just("offered"), st.sampled_from(KINDS) | junk)),
        "approved": draw(mostly(st.sampled_from(("approvable", "offered")), st.sampled_from(KINDS) | junk)),
        "claim_problem_fits": draw(mostly(st.just(True), st.just(False))),
        "amount": draw(st.integers(-(10**6), 10**7)),
        "approval": draw(
            mostly(st.just("signed"), st.sampled_from(("none", "junk", "signed_other_sender", "wrong_key")))
        ),
        "problem": draw(mostly(st.sampled_from(PROBLEMS))),
        "intent": draw(st.sampled_from(("inform", "affirm", "deny", "EXTERNAL_agent_approved_remedy"))),
    }


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=attack())
def test_random_trackers_with_the_secret_never_move_money_the_engine_would_not(
    a, action_server, repository, orders_url
):
    reset_orders(orders_url)
    number, problem = a["claim"]
    order = repository.order_by_number(number)
    if a["claim_problem_fits"]:  # the problem each demo order demonstrates
        problem = {"1004": "late_delivery", "1005": "damaged_item", "1006": "cancel_order"}.get(number, "missing_item")
    owner = repository.customer_by_id(order.customer_id)
    if a["sender"] == "owner":
        a = {**a, "sender": owner.line_user_id or STRANGER}
    case = repository.open_claim(
        order.customer_id, number, problem, [i.item_id for i in order.items][:1], datetime.now(timezone.utc)
    )
    case_slot = case if a["case"] == "opened" else "C-20260101-ZZZZ"
    # What the engine offers for the case now (fresh demo data: no earlier remedies).
    decision = decide(POLICY, problem, order, list(order.items)[:1], CustomerHistory(), datetime.now(timezone.utc))
    engine_kinds = {
        "offered": [o.kind for o in decision.offers],
        "approvable": [o.kind for o in decision.needs_approval],
    }
    for slot in ("remedy", "approved"):
        if a[slot] in engine_kinds:
            a = {**a, slot: (engine_kinds[a[slot]] or ["refund_item"])[0]}
    approval = None
    if a["approval"] == "junk":
        approval = "e30.c2ln"
    elif a["approval"] != "none":
        sender = STRANGER if a["approval"] == "signed_other_sender" else a["sender"]
        key = "not-the-key" if a["approval"] == "wrong_key" else os.environ["AGENT_APPROVAL_KEY"]
        approval = sign_approval(
            key,
            AgentApproval(case_slot, sender, str(a["approved"]), (Approver("U0AGENT001", "佐藤 花子"),), time.time()),
        )
    forged_offer = {"kind": a["remedy"], "amount": a["amount"], "eta": None, "needs_approval": False}
    slots = {
        "case_id": case_slot,
        "order_id": number if a["order_id"] == "same" else a["order_id"],
        "problem": a["problem"],
        "remedy": a["remedy"],
        "approved_remedy": a["approved"],
        "agent_approval": approval,
        "agent_name": "x",
        "offers": {"remedies": [forged_offer], "needs_approval": [{**forged_offer, "needs_approval": True}]},
    }
    webhook(action_server, request_body(a["next_action"], a["sender"], slots, a["intent"]))
    # Approvals legitimately signed for this case and sender (what the gateway would send).
    approved = str(a["approved"]) if a["approval"] == "signed" and a["case"] == "opened" else None
    assert_only_engine_remedies(orders_url, case, decision, approved, owner.line_user_id, a["sender"])
    # --hypothesis-show-statistics: how often money moved (about a quarter of the examples)
    event(f"remedy applied: {bool(remedy_rows(orders_url))}")
