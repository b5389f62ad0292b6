"""Incoming-event journal: record before the ack, dedupe, mark done, resume what is pending.

Why: the platform is acknowledged within milliseconds and the work happens afterwards, so
an event must be durable *before* the ack or a crash would lose it. The same journal
dedupes redeliveries: LINE redelivers with the same `webhookEventId`, and an event id that
was ever recorded is never recorded (or processed) again within the dedupe horizon.

Two backends behind one interface:
- MemoryEventStore: single process, state lost on restart (the embedded default).
- RedisEventStore: redis.asyncio; survives gateway restarts and is shared by processes.

The store is platform-neutral: callers pass the dedupe id, the ordering key (user id),
the ordering timestamp and the raw payload.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Set

log = logging.getLogger(__name__)

# How long an event id is remembered for dedupe after it was recorded / finished.
# LINE redelivers for a limited time only; a week is a wide margin.
DEFAULT_DEDUPE_TTL_S = 7 * 24 * 3600

PENDING = "pending"
DONE = "done"


@dataclass(frozen=True)
class StoredEvent:
    """One recorded event. `payload` is the raw platform event (it holds customer text:
    never log it)."""

    event_id: str
    user_id: str
    timestamp: int  # platform timestamp in ms; the per-user ordering key
    payload: Dict[str, Any] = field(repr=False)
    received_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "status": PENDING,
                "event_id": self.event_id,
                "user_id": self.user_id,
                "timestamp": self.timestamp,
                "payload": self.payload,
                "received_at": self.received_at,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> "StoredEvent":
        d = json.loads(raw)
        return cls(
            event_id=d["event_id"],
            user_id=d["user_id"],
            timestamp=int(d["timestamp"]),
            payload=d["payload"],
            received_at=float(d.get("received_at", 0.0)),
        )


class EventStore(Protocol):
    async def record(self, event_id: str, user_id: str, timestamp: int, payload: Dict[str, Any]) -> bool:
        """Record a new event as pending. False if this id was seen before (a duplicate)."""

    async def mark_done(self, event_id: str) -> None:
        """Finished: drop it from pending (and drop its content) but keep the id for dedupe."""

    async def status(self, event_id: str) -> Optional[str]:
        """PENDING, DONE, or None when unknown (never seen, or forgotten after the TTL)."""

    async def pending(self, user_id: Optional[str] = None) -> List[StoredEvent]:
        """Recorded, not done events, oldest timestamp first (optionally of one user)."""

    async def mark_step(self, event_id: str, step: str) -> None:
        """Notes that a step with an outside effect (sent to Rasa, reply token used, answer
        replied) has begun or finished, so a retry after a crash does not repeat it."""

    async def steps(self, event_id: str) -> Set[str]:
        """The steps noted for the event (empty when none, or forgotten after the TTL)."""

    async def ping(self) -> bool:
        """True when events can be recorded now (the gateway's readiness)."""

    async def close(self) -> None: ...


class MemoryEventStore:
    """In-process store, for the embedded default (no REDIS_URL) and for tests."""

    def __init__(self, dedupe_ttl_s: float = DEFAULT_DEDUPE_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self._ttl = dedupe_ttl_s
        self._clock = clock
        self._pending: Dict[str, StoredEvent] = {}
        self._seen: Dict[str, float] = {}  # event id -> forget-after time
        self._steps: Dict[str, Set[str]] = {}
        # Methods don't await between check and set, so they're atomic on one event loop.

    def _prune(self, now: float) -> None:
        expired = [k for k, until in self._seen.items() if until <= now and k not in self._pending]
        for k in expired:
            del self._seen[k]

    async def record(self, event_id: str, user_id: str, timestamp: int, payload: Dict[str, Any]) -> bool:
        now = self._clock()
        self._prune(now)
        if event_id in self._seen:
            return False
        self._seen[event_id] = now + self._ttl
        self._pending[event_id] = StoredEvent(event_id, user_id, int(timestamp), payload, now)
        return True

    async def mark_done(self, event_id: str) -> None:
        if self._pending.pop(event_id, None) is not None:
            self._seen[event_id] = self._clock() + self._ttl
        self._steps.pop(event_id, None)

    async def mark_step(self, event_id: str, step: str) -> None:
        self._steps.setdefault(event_id, set()).add(step)

    async def steps(self, event_id: str) -> Set[str]:
        return set(self._steps.get(event_id, ()))

    async def status(self, event_id: str) -> Optional[str]:
        if event_id in self._pending:
            return PENDING
        until = self._seen.get(event_id)
        return DONE if until is not None and until > self._clock() else None

    async def pending(self, user_id: Optional[str] = None) -> List[StoredEvent]:
        events = [e for e in self._pending.values() if user_id is None or e.user_id == user_id]
        return sorted(events, key=lambda e: (e.timestamp, e.received_at))

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


# Record atomically: the dedupe key (SET NX) and the pending index (ZADD) change together,
# so a crash can never leave an event recorded but invisible to the resume scan.
_RECORD_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""

# Done: remove from pending and replace the content by a small marker (no customer text
# kept longer than needed); the id stays for dedupe.
_DONE_LUA = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
"""


class RedisEventStore:
    """Redis backend. Keys (under `prefix`):
    - `{prefix}event:{id}`: JSON record (pending) or done marker, expires after the TTL;
    - `{prefix}pending`: sorted set of pending ids scored by platform timestamp;
    - `{prefix}steps:{id}`: set of the steps begun or done for a pending event (dropped
      when it is done; expires after the TTL).
    """

    def __init__(self, redis: Any, prefix: str = "gw:line:", dedupe_ttl_s: int = DEFAULT_DEDUPE_TTL_S) -> None:
        self._r = redis
        self._prefix = prefix
        self._ttl = int(dedupe_ttl_s)
        self._pending_key = f"{prefix}pending"
        self._record = redis.register_script(_RECORD_LUA)
        self._done = redis.register_script(_DONE_LUA)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "RedisEventStore":
        import redis.asyncio as aioredis  # local import: memory-only setups need no redis

        return cls(aioredis.Redis.from_url(url, decode_responses=True), **kwargs)

    def _key(self, event_id: str) -> str:
        return f"{self._prefix}event:{event_id}"

    async def record(self, event_id: str, user_id: str, timestamp: int, payload: Dict[str, Any]) -> bool:
        ev = StoredEvent(event_id, user_id, int(timestamp), payload, time.time())
        created = await self._record(
            keys=[self._key(event_id), self._pending_key],
            args=[ev.to_json(), self._ttl, int(timestamp), event_id],
        )
        return bool(created)

    async def mark_done(self, event_id: str) -> None:
        marker = json.dumps({"status": DONE, "event_id": event_id, "done_at": time.time()})
        await self._done(
            keys=[self._key(event_id), self._pending_key, self._steps_key(event_id)], args=[event_id, marker, self._ttl]
        )

    def _steps_key(self, event_id: str) -> str:
        return f"{self._prefix}steps:{event_id}"

    async def mark_step(self, event_id: str, step: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.sadd(self._steps_key(event_id), step)
            pipe.expire(self._steps_key(event_id), self._ttl)
            await pipe.execute()

    async def steps(self, event_id: str) -> Set[str]:
        return set(await self._r.smembers(self._steps_key(event_id)))

    async def status(self, event_id: str) -> Optional[str]:
        raw = await self._r.get(self._key(event_id))
        if raw is None:
            return None
        return json.loads(raw).get("status")

    async def pending(self, user_id: Optional[str] = None) -> List[StoredEvent]:
        ids = await self._r.zrange(self._pending_key, 0, -1)
        if not ids:
            return []
        raws = await self._r.mget([self._key(i) for i in ids])
        out: List[StoredEvent] = []
        lost: List[str] = []
        for event_id, raw in zip(ids, raws):
            if raw is None:
                lost.append(event_id)  # content expired while pending: nothing to resume
                continue
            record = json.loads(raw)
            if "user_id" not in record:
                continue  # marked done between the two reads (by this or another gateway)
            ev = StoredEvent.from_json(raw)
            if user_id is None or ev.user_id == user_id:
                out.append(ev)
        if lost:
            log.warning("dropping %d pending event ids whose records expired", len(lost))
            await self._r.zrem(self._pending_key, *lost)
        return sorted(out, key=lambda e: (e.timestamp, e.received_at))

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._r.ping(), timeout=2.0))
        except Exception:  # noqa: BLE001 - any failure means "cannot record now"
            return False

    async def close(self) -> None:
        close = getattr(self._r, "aclose", None) or self._r.close
        await close()


def make_event_store(redis_url: Optional[str] = None, **kwargs: Any) -> EventStore:
    """Redis when a URL is given (REDIS_URL), memory otherwise (the embedded default)."""
    if redis_url:
        return RedisEventStore.from_url(redis_url, **kwargs)
    return MemoryEventStore(**kwargs)


__all__ = [
    "DONE",
    "PENDING",
    "EventStore",
    "MemoryEventStore",
    "RedisEventStore",
    "StoredEvent",
    "make_event_store",
]
