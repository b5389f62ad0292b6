"""Handoff case state (gateway/core/cases.py) in memory and in a real redis-server:
one owner per customer, claims that cannot both win, resolve hands back to the bot, and
the state survives a new store object (a gateway restart)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import pytest_asyncio

from gateway.core.cases import (
    AGENT,
    BOT,
    CLAIMED,
    OPEN,
    RESOLVED,
    WAITING,
    Case,
    CaseConflict,
    MemoryCaseStore,
    RedisCaseStore,
)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store_factory(request, redis_url):
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    made = []

    def make():
        if request.param == "memory":
            if not made:
                made.append(MemoryCaseStore())
            return made[0]  # memory state lives as long as the object
        store = RedisCaseStore.from_url(redis_url)
        store._p = prefix
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


def new_case(user="U1", case_id=None, **context):
    return Case(
        case_id=case_id or f"C{uuid.uuid4().hex[:6]}", user_id=user, context={"reason": "request_human", **context}
    )


@pytest.mark.asyncio
async def test_opening_a_case_moves_the_customer_from_bot_to_waiting(store_factory):
    store = store_factory()
    assert await store.owner("U1") == BOT
    case, new = await store.open(new_case())
    assert new and case.status == OPEN
    assert await store.owner("U1") == WAITING
    assert await store.owner("U2") == BOT


@pytest.mark.asyncio
async def test_a_second_handoff_joins_the_open_case_instead_of_opening_another(store_factory):
    store = store_factory()
    first, _ = await store.open(new_case(case_id="A"))
    second, new = await store.open(new_case(case_id="B"))
    assert not new and second.case_id == "A"
    assert [c.case_id for c in await store.open_cases()] == ["A"]


@pytest.mark.asyncio
async def test_two_agents_claiming_at_once_one_wins_the_other_is_told(store_factory):
    store = store_factory()
    case, _ = await store.open(new_case())
    results = await asyncio.gather(
        store.claim(case.case_id, "UA", "Aki", 1.0), store.claim(case.case_id, "UB", "Ben", 1.0), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, Case)]
    losers = [r for r in results if isinstance(r, CaseConflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert "already claimed" in str(losers[0])
    assert await store.owner("U1") == AGENT
    # the winner claiming again is harmless
    again = await store.claim(case.case_id, winners[0].agent_id, winners[0].agent_name, 2.0)
    assert again.status == CLAIMED and again.claimed_at == 1.0


@pytest.mark.asyncio
async def test_resolve_hands_back_to_the_bot_and_a_new_case_can_open(store_factory):
    store = store_factory()
    case, _ = await store.open(new_case(case_id="A"))
    await store.set_thread("A", "C1", "100.1", 5.0)
    resolved = await store.resolve("A", "UA", "Aki", 9.0)
    assert resolved.status == RESOLVED and resolved.agent_name == "Aki"
    assert await store.owner("U1") == BOT
    with pytest.raises(CaseConflict):
        await store.resolve("A", "UA", "Aki", 10.0)
    with pytest.raises(CaseConflict):
        await store.claim("A", "UA", "Aki", 10.0)
    # the thread still finds the (resolved) case, so late replies can be refused clearly
    assert (await store.by_thread("C1", "100.1")).status == RESOLVED
    _, new = await store.open(new_case(case_id="B"))
    assert new and await store.owner("U1") == WAITING


@pytest.mark.asyncio
async def test_state_survives_a_new_store_object(store_factory):
    store = store_factory()
    case, _ = await store.open(new_case(customer={"display_name": "デモ 太郎"}))
    await store.set_thread(case.case_id, "C1", "200.2", 1.0)
    await store.claim(case.case_id, "UA", "Aki", 2.0)
    restarted = store_factory()
    found = await restarted.by_thread("C1", "200.2")
    assert found.case_id == case.case_id and found.agent_name == "Aki"
    assert found.context["customer"]["display_name"] == "デモ 太郎"
    assert await restarted.owner("U1") == AGENT


@pytest.mark.asyncio
async def test_event_ids_are_handled_the_first_time_only(store_factory):
    store = store_factory()
    assert await store.first_time("slack-event:Ev1")
    assert not await store.first_time("slack-event:Ev1")
    assert await store.first_time("slack-event:Ev2")


@pytest.mark.asyncio
async def test_unknown_case_is_a_key_error(store_factory):
    store = store_factory()
    with pytest.raises(KeyError):
        await store.claim("nope", "UA", "Aki", 1.0)
