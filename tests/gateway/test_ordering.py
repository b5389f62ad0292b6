"""Per-user serial processing: in timestamp order, never overlapping; users concurrent."""

import asyncio
import random
import uuid
from collections import defaultdict

import pytest
import pytest_asyncio

from gateway.core.events import StoredEvent
from gateway.core.ordering import LocalLease, RedisUserLease, UserSerializer

USERS, PER_USER = 20, 5


def make_event(user: str, ts: int) -> StoredEvent:
    return StoredEvent(event_id=f"{user}-{ts}", user_id=user, timestamp=ts, payload={"n": ts})


class Recorder:
    """Handler that sleeps a random time and records start/end per user."""

    def __init__(self, seed: int = 7, max_delay: float = 0.02):
        self.rng = random.Random(seed)
        self.max_delay = max_delay
        self.seen = defaultdict(list)  # user -> [timestamp, ...] in handling order
        self.active = defaultdict(int)  # user -> handlers running now
        self.overlaps = []  # users seen with two handlers at once
        self.running = 0
        self.max_running = 0

    async def __call__(self, ev: StoredEvent):
        self.active[ev.user_id] += 1
        if self.active[ev.user_id] > 1:
            self.overlaps.append(ev.user_id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            self.seen[ev.user_id].append(ev.timestamp)
            await asyncio.sleep(self.rng.random() * self.max_delay)
        finally:
            self.running -= 1
            self.active[ev.user_id] -= 1


def shuffled_events(seed: int = 3):
    events = [make_event(f"U{u:02d}", 1_700_000_000_000 + u * 10 + i) for u in range(USERS) for i in range(PER_USER)]
    random.Random(seed).shuffle(events)  # arrival order differs from timestamp order
    return events


@pytest_asyncio.fixture(params=["local", "redis"])
async def lease(request):
    if request.param == "local":
        yield LocalLease()
        return
    url = request.getfixturevalue("redis_url")
    lease = RedisUserLease.from_url(url, prefix=f"test:{uuid.uuid4().hex}:lease:", ttl_s=5)
    yield lease
    await lease.close()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_twenty_users_in_order_never_overlapping(lease):
    rec = Recorder()
    ser = UserSerializer(rec, lease=lease)
    for ev in shuffled_events():
        ser.submit(ev)
    await asyncio.wait_for(ser.join(), 20)
    assert len(rec.seen) == USERS
    for user, stamps in rec.seen.items():
        assert stamps == sorted(stamps), user
        assert len(stamps) == PER_USER
    assert rec.overlaps == []
    assert rec.max_running > 1  # different users really ran concurrently
    assert ser.active_users == 0


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_events_trickling_in_while_busy(lease):
    rec = Recorder(max_delay=0.01)
    ser = UserSerializer(rec, lease=lease)
    rng = random.Random(11)
    for i in range(PER_USER):
        for u in range(USERS):
            ser.submit(make_event(f"U{u:02d}", 1000 + i))
        await asyncio.sleep(rng.random() * 0.01)
    await asyncio.wait_for(ser.join(), 20)
    for stamps in rec.seen.values():
        assert stamps == [1000 + i for i in range(PER_USER)]
    assert rec.overlaps == []


@pytest.mark.asyncio
async def test_failing_handler_does_not_stop_the_queue():
    seen = []

    async def handler(ev):
        seen.append(ev.timestamp)
        if ev.timestamp == 2:
            raise RuntimeError("Rasa unreachable")

    ser = UserSerializer(handler)
    for ts in (1, 2, 3):
        ser.submit(make_event("U1", ts))
    await asyncio.wait_for(ser.join(), 5)
    assert seen == [1, 2, 3]


@pytest.mark.asyncio
async def test_duplicate_submit_is_ignored_while_queued():
    seen = []

    async def handler(ev):
        seen.append(ev.event_id)

    ser = UserSerializer(handler)
    assert ser.submit(make_event("U1", 1))
    assert not ser.submit(make_event("U1", 1))
    await ser.join()
    assert seen == ["U1-1"]


@pytest.mark.asyncio
async def test_max_concurrency_bounds_users_in_flight():
    rec = Recorder(max_delay=0.005)
    ser = UserSerializer(rec, max_concurrency=3)
    for ev in shuffled_events():
        ser.submit(ev)
    await asyncio.wait_for(ser.join(), 20)
    assert rec.max_running <= 3
    assert sum(len(s) for s in rec.seen.values()) == USERS * PER_USER


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_two_processes_never_handle_the_same_user_at_once(redis_url):
    """Two serializers with their own Redis connections stand in for two gateway processes;
    each receives some events of the same users."""
    prefix = f"test:{uuid.uuid4().hex}:lease:"
    lease_a = RedisUserLease.from_url(redis_url, prefix=prefix, ttl_s=5)
    lease_b = RedisUserLease.from_url(redis_url, prefix=prefix, ttl_s=5)
    rec = Recorder(seed=5, max_delay=0.01)  # shared recorder sees both "processes"
    a, b = UserSerializer(rec, lease=lease_a), UserSerializer(rec, lease=lease_b)
    try:
        for n, ev in enumerate(shuffled_events()):
            (a if n % 2 else b).submit(ev)
        await asyncio.wait_for(asyncio.gather(a.join(), b.join()), 25)
        assert rec.overlaps == []
        assert sum(len(s) for s in rec.seen.values()) == USERS * PER_USER
    finally:
        await lease_a.close()
        await lease_b.close()


@pytest.mark.asyncio
async def test_lease_of_a_crashed_holder_expires(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:lease:"
    crashed = RedisUserLease.from_url(redis_url, prefix=prefix, ttl_s=0.3)
    other = RedisUserLease.from_url(redis_url, prefix=prefix, ttl_s=0.3)
    try:
        token = await crashed.acquire("U1")  # never released: the process died
        assert await other.try_acquire("U1") is None
        got = await asyncio.wait_for(other.acquire("U1"), 3)
        assert got != token
        assert not await crashed.renew("U1", token)  # the old holder can't extend it
        await crashed.release("U1", token)  # nor delete the new holder's lease
        assert await other.try_acquire("U1") is None
        await other.release("U1", got)
        assert await other.try_acquire("U1") is not None
    finally:
        await crashed.close()
        await other.close()


@pytest.mark.asyncio
async def test_lease_is_renewed_during_a_long_handler(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:lease:"
    lease = RedisUserLease.from_url(redis_url, prefix=prefix, ttl_s=0.3)
    probe = RedisUserLease.from_url(redis_url, prefix=prefix, ttl_s=0.3)
    stolen = []

    async def slow(ev):
        await asyncio.sleep(0.8)  # longer than the TTL: renewal must keep the lease
        stolen.append(await probe.try_acquire(ev.user_id))

    ser = UserSerializer(slow, lease=lease)
    try:
        ser.submit(make_event("U1", 1))
        await asyncio.wait_for(ser.join(), 5)
        assert stolen == [None]
    finally:
        await lease.close()
        await probe.close()
