"""Event journal: record before ack, dedupe by webhookEventId, done, resume pending.

Every behaviour runs against both backends: memory and a real redis-server.
"""

import asyncio
import uuid

import pytest
import pytest_asyncio

from gateway.core.events import (
    DONE,
    PENDING,
    MemoryEventStore,
    RedisEventStore,
    make_event_store,
)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        s = MemoryEventStore()
    else:
        url = request.getfixturevalue("redis_url")
        s = RedisEventStore.from_url(url, prefix=f"test:{uuid.uuid4().hex}:")
    yield s
    await s.close()


def ev(text="卵が入っていません"):
    return {"type": "message", "message": {"type": "text", "text": text}}


@pytest.mark.asyncio
async def test_new_event_is_recorded_as_pending(store):
    assert await store.record("E1", "U1", 1000, ev())
    assert await store.status("E1") == PENDING
    [p] = await store.pending()
    assert (p.event_id, p.user_id, p.timestamp) == ("E1", "U1", 1000)
    assert p.payload == ev()  # Japanese text survives the round trip


@pytest.mark.asyncio
async def test_redelivered_event_is_recorded_once(store):
    assert await store.record("E1", "U1", 1000, ev())
    # LINE redelivery: same webhookEventId, isRedelivery true
    redelivered = dict(ev(), deliveryContext={"isRedelivery": True})
    assert not await store.record("E1", "U1", 1000, redelivered)
    assert [p.event_id for p in await store.pending()] == ["E1"]
    assert (await store.pending())[0].payload == ev()  # the first copy is kept


@pytest.mark.asyncio
async def test_concurrent_duplicates_only_one_wins(store):
    results = await asyncio.gather(*[store.record("E1", "U1", 1000, ev()) for _ in range(20)])
    assert results.count(True) == 1
    assert len(await store.pending()) == 1


@pytest.mark.asyncio
async def test_done_event_leaves_pending_and_is_not_recorded_again(store):
    await store.record("E1", "U1", 1000, ev())
    await store.mark_done("E1")
    assert await store.status("E1") == DONE
    assert await store.pending() == []
    # a redelivery arriving after processing must not be processed again
    assert not await store.record("E1", "U1", 1000, ev())
    assert await store.pending() == []


@pytest.mark.asyncio
async def test_mark_done_is_idempotent_and_ignores_unknown(store):
    await store.record("E1", "U1", 1000, ev())
    await store.mark_done("E1")
    await store.mark_done("E1")
    await store.mark_done("never-seen")
    assert await store.status("never-seen") is None
    assert await store.status("E1") == DONE


@pytest.mark.asyncio
async def test_pending_sorted_by_timestamp_and_filterable_by_user(store):
    await store.record("E3", "U1", 3000, ev("3"))
    await store.record("E1", "U1", 1000, ev("1"))
    await store.record("E2", "U2", 2000, ev("2"))
    await store.record("E4", "U2", 500, ev("4"))
    assert [p.event_id for p in await store.pending()] == ["E4", "E1", "E2", "E3"]
    assert [p.event_id for p in await store.pending("U1")] == ["E1", "E3"]
    assert [p.event_id for p in await store.pending("U2")] == ["E4", "E2"]


@pytest.mark.asyncio
async def test_redis_pending_survives_restart(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:"
    first = RedisEventStore.from_url(redis_url, prefix=prefix)
    await first.record("E1", "U1", 1000, ev())
    await first.record("E2", "U1", 2000, ev())
    await first.mark_done("E1")
    await first.close()  # the gateway process dies after the ack

    second = RedisEventStore.from_url(redis_url, prefix=prefix)
    try:
        assert [p.event_id for p in await second.pending()] == ["E2"]
        assert not await second.record("E1", "U1", 1000, ev())  # dedupe survives too
        assert not await second.record("E2", "U1", 2000, ev())
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_an_event_marked_done_by_another_gateway_mid_scan_is_not_listed(redis_url):
    # pending() reads the ids, then the records; another gateway may finish an event in
    # between. Seen under load (bench/load.py) as a KeyError that stalled the handler.
    store = RedisEventStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    other = RedisEventStore.from_url(redis_url, prefix=store._prefix)
    try:
        await store.record("E1", "U1", 1000, ev())
        await store.record("E2", "U1", 2000, ev())
        original_mget = store._r.mget

        async def mget_after_the_other_gateway_finished(keys):
            await other.mark_done("E1")
            return await original_mget(keys)

        store._r.mget = mget_after_the_other_gateway_finished
        assert [p.event_id for p in await store.pending()] == ["E2"]
    finally:
        await store.close()
        await other.close()


@pytest.mark.asyncio
async def test_ping_says_whether_events_can_be_recorded(store):
    assert await store.ping() is True
    import socket

    with socket.socket() as sock:  # a port where no Redis answers
        sock.bind(("127.0.0.1", 0))
        dead = RedisEventStore.from_url(f"redis://127.0.0.1:{sock.getsockname()[1]}/0")
        try:
            assert await dead.ping() is False
        finally:
            await dead.close()


@pytest.mark.asyncio
async def test_redis_done_record_drops_customer_text(redis_url):
    import redis.asyncio as aioredis

    prefix = f"test:{uuid.uuid4().hex}:"
    s = RedisEventStore.from_url(redis_url, prefix=prefix)
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await s.record("E1", "U1", 1000, ev("秘密のテキスト"))
        assert "秘密のテキスト" in await r.get(f"{prefix}event:E1")
        await s.mark_done("E1")
        raw = await r.get(f"{prefix}event:E1")
        assert "秘密のテキスト" not in raw and "U1" not in raw
        assert 0 < await r.ttl(f"{prefix}event:E1") <= 7 * 24 * 3600
    finally:
        await r.aclose()
        await s.close()


@pytest.mark.asyncio
async def test_memory_dedupe_forgets_after_ttl():
    now = [1000.0]
    s = MemoryEventStore(dedupe_ttl_s=60, clock=lambda: now[0])
    await s.record("E1", "U1", 1, ev())
    await s.mark_done("E1")
    now[0] += 61
    assert await s.status("E1") is None
    assert await s.record("E1", "U1", 1, ev())


def test_factory_picks_backend(redis_url):
    assert isinstance(make_event_store(None), MemoryEventStore)
    assert isinstance(make_event_store(""), MemoryEventStore)
    assert isinstance(make_event_store(redis_url), RedisEventStore)
