"""Per-user serial processing: one user's events strictly by timestamp, one at a time;
different users concurrently.

Why: a customer's second message must not reach Rasa before the first one's answer, and
Rasa's own Redis lock store can race across instances (rasa PR 11428 was reverted from
open source), so the gateway serialises each user itself:
- in one process: one asyncio task per user with a busy queue, draining a heap ordered by
  the platform timestamp (LINE may deliver, and redeliver, out of order);
- across processes: a per-user lease key in Redis (SET NX PX + renewal), so two gateway
  processes never handle the same user at once, and a crashed holder's lease expires.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Protocol, Set, Tuple

from gateway.core.events import StoredEvent

log = logging.getLogger(__name__)

Handler = Callable[[StoredEvent], Awaitable[None]]


class UserLease(Protocol):
    """Exclusive right to handle one user's events."""

    ttl_s: float

    async def acquire(self, user_id: str) -> str:
        """Wait until held; returns the holder token."""

    async def renew(self, user_id: str, token: str) -> bool:
        """Extend a held lease; False if it was lost (expired and taken by another)."""

    async def release(self, user_id: str, token: str) -> None: ...


class LocalLease:
    """Single process: the per-user task already serialises, so the lease is a no-op."""

    ttl_s = 0.0

    async def acquire(self, user_id: str) -> str:
        return "local"

    async def renew(self, user_id: str, token: str) -> bool:
        return True

    async def release(self, user_id: str, token: str) -> None:
        return None


# Only the holder (same token) may extend or delete its lease.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisUserLease:
    """Per-user lease `{prefix}{user_id}` with expiry, shared by gateway processes."""

    def __init__(
        self,
        redis: Any,
        prefix: str = "gw:lease:user:",
        ttl_s: float = 30.0,
        poll_s: float = 0.02,
        max_poll_s: float = 0.5,
    ) -> None:
        self._r = redis
        self._prefix = prefix
        self.ttl_s = ttl_s
        self._poll_s = poll_s
        self._max_poll_s = max_poll_s
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "RedisUserLease":
        import redis.asyncio as aioredis

        return cls(aioredis.Redis.from_url(url, decode_responses=True), **kwargs)

    def _key(self, user_id: str) -> str:
        return f"{self._prefix}{user_id}"

    async def try_acquire(self, user_id: str) -> Optional[str]:
        token = uuid.uuid4().hex
        ok = await self._r.set(self._key(user_id), token, nx=True, px=int(self.ttl_s * 1000))
        return token if ok else None

    async def acquire(self, user_id: str) -> str:
        delay = self._poll_s
        while True:
            token = await self.try_acquire(user_id)
            if token:
                return token
            # jittered backoff so waiting processes don't poll Redis in lockstep
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_poll_s)

    async def renew(self, user_id: str, token: str) -> bool:
        return bool(await self._renew(keys=[self._key(user_id)], args=[token, int(self.ttl_s * 1000)]))

    async def release(self, user_id: str, token: str) -> None:
        await self._release(keys=[self._key(user_id)], args=[token])

    async def close(self) -> None:
        close = getattr(self._r, "aclose", None) or self._r.close
        await close()


class UserSerializer:
    """Runs `handler` for each submitted event: per user in timestamp order, one at a time.

    A user's task exists only while that user has queued work, so idle users cost nothing.
    A failing handler is logged (without customer data) and the next event still runs;
    retrying is the handler's business (the event stays pending in the store until done).
    """

    def __init__(
        self, handler: Handler, lease: Optional[UserLease] = None, max_concurrency: Optional[int] = None
    ) -> None:
        self._handler = handler
        self._lease: UserLease = lease or LocalLease()
        self._heaps: Dict[str, List[Tuple[int, int, StoredEvent]]] = {}
        self._queued: Set[str] = set()
        self._workers: Dict[str, asyncio.Task] = {}
        self._seq = itertools.count()
        self._sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active_users(self) -> int:
        return len(self._workers)

    def submit(self, event: StoredEvent) -> bool:
        """Queue an event; False if the same event id is already queued (e.g. resume + new)."""
        if event.event_id in self._queued:
            return False
        self._queued.add(event.event_id)
        heap = self._heaps.setdefault(event.user_id, [])
        heapq.heappush(heap, (event.timestamp, next(self._seq), event))
        if event.user_id not in self._workers:
            self._idle.clear()
            self._workers[event.user_id] = asyncio.create_task(self._run(event.user_id))
        return True

    async def join(self) -> None:
        """Wait until every queued event has been handled."""
        await self._idle.wait()

    async def aclose(self) -> None:
        tasks = list(self._workers.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_lease(self, user_id: str, token: str) -> None:
        interval = self._lease.ttl_s / 3
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            if not await self._lease.renew(user_id, token):
                log.warning("per-user lease lost while handling; another process may take over")
                return

    async def _handle(self, event: StoredEvent) -> None:
        try:
            if self._sem is None:
                await self._handler(event)
            else:
                async with self._sem:
                    await self._handler(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # exc_info only: the event payload holds customer text and ids
            log.error("event handler failed; event stays pending", exc_info=True)

    async def _acquire(self, user_id: str) -> str:
        # Redis briefly unreachable must not strand the queue: retry with backoff.
        delay = 0.1
        while True:
            try:
                return await self._lease.acquire(user_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("per-user lease unavailable; retrying", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _run(self, user_id: str) -> None:
        token = await self._acquire(user_id)
        keeper = asyncio.create_task(self._keep_lease(user_id, token))
        try:
            heap = self._heaps[user_id]
            while heap:
                _, _, event = heapq.heappop(heap)
                try:
                    await self._handle(event)
                finally:
                    self._queued.discard(event.event_id)
            # No await between the empty check and unregistering: a submit() from now on
            # starts a fresh worker instead of appending to a queue nobody drains.
            del self._heaps[user_id]
            del self._workers[user_id]
            if not self._workers:
                self._idle.set()
        finally:
            keeper.cancel()
            try:
                await self._lease.release(user_id, token)
            except Exception:
                log.warning("could not release a per-user lease; it will expire", exc_info=True)
            if self._workers.get(user_id) is asyncio.current_task():
                # cancelled mid-queue: unregister so the state stays consistent
                self._workers.pop(user_id, None)
                if not self._workers:
                    self._idle.set()


__all__ = ["Handler", "LocalLease", "RedisUserLease", "UserLease", "UserSerializer"]
