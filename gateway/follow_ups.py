"""Follow-ups at the promised time: "別卵は届きましたか？" pushed once, a while after the
time the bot promised ("別卵を今からお届け、18:04ごろ到着").

The bot's confirmation of such a remedy carries `{"follow_up": {"case_id", "due_at",
"language"}}` (bot/actions/follow_up.py). The processor hands Rasa's answer to
`FollowUps.schedule_from`, which takes that payload out (it is never sent to LINE) and
schedules the case in Redis: ZADD `gw:followup:due` with score `due_at + FOLLOW_UP_AFTER_S`
(default 600 s) and a hash `gw:followup:entry:<case>` (user id, case id, language, due_at).
A loop started with the app (`run_forever`) then, for each entry that is due:

1. claims it, once across every gateway: one Lua script takes the due members AND moves
   their score to now + `lease_s` in the same atomic step, so a second gateway sees them
   as not due. Why a lease and not a plain ZREM: a gateway killed between the claim and the
   push must not lose the follow-up silently; the entry becomes due again when the lease
   runs out and another gateway (or this one, restarted) takes it. The push carries an
   X-Line-Retry-Key derived from the case id, so a push LINE already accepted before the
   crash is refused as a duplicate (409) rather than shown twice. The price: after such a
   crash the bot may be triggered twice, so Rasa's tracker can show the question twice
   while the customer reads it once. After `max_attempts` claims it is given up (logged).
2. skips it when a person owns the conversation (an open case): they are talking already.
3. checks the monthly push budget (LINE bills pushes; LINE_PUSH_BUDGET_MONTHLY, unset = no
   limit, 0 = no follow-ups): one Lua script counts the push in `gw:push:YYYY-MM` (the
   month in Japan, when LINE's quota resets) only while under the budget; over it the
   follow-up is skipped, counted in `gw:followup:skipped:YYYY-MM` and logged.
4. holds the customer's per-user lease (core/ordering.py) so the triggered turn does not
   interleave with a message of theirs being handled; busy -> tried again shortly.
5. looks at the conversation in Rasa: paused (a person) -> skipped; in the middle of a
   question of the bot's (a form, e.g. a new claim) -> tried again later, so the trigger
   never lands inside another question; otherwise
   appends the slot event follow_up_case=<case> to the tracker and triggers
   `EXTERNAL_follow_up_due`; the bot re-reads the case from the orders database and asks
   (or says nothing: answered already, a person has it). Its messages are PUSHED.
6. marks it done: removed from the schedule, and a `gw:followup:done:<case>` marker (kept
   90 days) makes a redelivered answer carrying the same payload schedule nothing again.

The clock is `clock()` (epoch seconds). Tests move it: `run_due(now)` in-process, or, for
a gateway process over the real stack, GATEWAY_CLOCK_OFFSET_FILE (seconds added to the
real clock, read on every pass) — honoured only when LINE_API_BASE_URL is on loopback (the
LINE emulator), never against the real LINE API. Why not a negative FOLLOW_UP_AFTER_S: the
test then would not exercise the setting operators use, nor show that nothing is sent
before the time.

Without Redis (the local demo without REDIS_URL) the schedule lives in memory: one process,
lost on restart, like the rest of the gateway's state then.

Nothing here logs customer text or names; user ids appear only as the case number.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from gateway.core.cases import BOT, CaseStore
from gateway.core.rasa_client import RasaClient, RasaRejected, RasaUnavailable
from gateway.customer_input import PostbackSigner
from gateway.line import messages as line_messages
from gateway.line.api import LineApi, LineApiError

log = logging.getLogger(__name__)

DUE_KEY = "gw:followup:due"
ENTRY_PREFIX = "gw:followup:entry:"
DONE_PREFIX = "gw:followup:done:"
PUSH_PREFIX = "gw:push:"
SKIPPED_PREFIX = "gw:followup:skipped:"
DONE_TTL_S = 90 * 24 * 3600
COUNTER_TTL_S = 400 * 24 * 3600  # a month's counters stay readable for a year
FOLLOW_UP_INTENT = "EXTERNAL_follow_up_due"
FOLLOW_UP_SLOT = "follow_up_case"
# LINE's monthly message quota resets on the first of the month, Japan time.
QUOTA_ZONE = ZoneInfo("Asia/Tokyo")
# Namespace of the push retry keys derived from a case id (any fixed UUID works).
_RETRY_KEY_NS = uuid.UUID("3d0c5a52-8f7e-4f0b-b1a9-5c7e2d9f4a61")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class FollowUp:
    case_id: str
    user_id: str
    language: str
    due_at: float  # the promised time (epoch seconds)
    attempts: int = 0


def month_of(now: float) -> str:
    return datetime.fromtimestamp(now, QUOTA_ZONE).strftime("%Y-%m")


def retry_key(case_id: str, index: int) -> str:
    """The push's X-Line-Retry-Key: the same for every attempt at this case's follow-up."""
    return str(uuid.uuid5(_RETRY_KEY_NS, f"follow-up:{case_id}:{index}"))


def follow_up_payloads(responses: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The `{"follow_up": {...}}` payloads of a bot answer (well-formed ones only)."""
    found = []
    for r in responses:
        custom = r.get("custom")
        item = custom.get("follow_up") if isinstance(custom, dict) else None
        if (
            isinstance(item, dict)
            and isinstance(item.get("case_id"), str)
            and item["case_id"]
            and isinstance(item.get("due_at"), (int, float))
            and not isinstance(item.get("due_at"), bool)
        ):
            found.append(item)
    return found


def without_follow_ups(responses: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The answer as it goes to LINE: follow-up payloads taken out (a message holding only
    one is dropped)."""
    out = []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, dict) and "follow_up" in custom:
            rest_custom = {k: v for k, v in custom.items() if k != "follow_up"}
            r = {k: v for k, v in r.items() if k != "custom"}
            if rest_custom:
                r["custom"] = rest_custom
            if not (r.get("text") or r.get("buttons") or r.get("image") or r.get("custom")):
                continue
        out.append(r)
    return out


# --- where the schedule lives --------------------------------------------------------------


class FollowUpStore(Protocol):
    async def schedule(self, entry: FollowUp, at: float) -> bool: ...
    async def claim_due(self, now: float, lease_s: float, limit: int) -> List[FollowUp]: ...
    async def finish(self, case_id: str) -> None: ...
    async def later(self, case_id: str, at: float) -> None: ...
    async def take_push(self, month: str, budget: Optional[int]) -> bool: ...
    async def give_back_push(self, month: str) -> None: ...
    async def count_skipped(self, month: str) -> int: ...
    async def counts(self, month: str) -> Dict[str, int]: ...
    async def scheduled(self) -> Dict[str, float]: ...
    async def close(self) -> None: ...


_SCHEDULE_LUA = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'case_id', ARGV[1], 'user_id', ARGV[2], 'language', ARGV[3], 'due_at', ARGV[5],
           'attempts', 0)
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
return 1
"""
# Due members, each moved to now + lease in the same atomic step: claimed by one caller.
_CLAIM_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
"""
_TAKE_PUSH_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] ~= '' and used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisFollowUpStore:
    def __init__(self, redis: Any) -> None:
        self._r = redis
        self._schedule = redis.register_script(_SCHEDULE_LUA)
        self._claim = redis.register_script(_CLAIM_LUA)
        self._take_push = redis.register_script(_TAKE_PUSH_LUA)

    @classmethod
    def from_url(cls, url: str) -> "RedisFollowUpStore":
        import redis.asyncio as aioredis

        return cls(aioredis.Redis.from_url(url, decode_responses=True))

    async def schedule(self, entry: FollowUp, at: float) -> bool:
        keys = [DUE_KEY, ENTRY_PREFIX + entry.case_id, DONE_PREFIX + entry.case_id]
        args = [entry.case_id, entry.user_id, entry.language, at, entry.due_at]
        return bool(await self._schedule(keys=keys, args=args))

    async def claim_due(self, now: float, lease_s: float, limit: int) -> List[FollowUp]:
        claimed = await self._claim(keys=[DUE_KEY], args=[now, now + lease_s, limit])
        out = []
        for case_id in claimed:
            key = ENTRY_PREFIX + case_id
            attempts = await self._r.hincrby(key, "attempts", 1)
            data = await self._r.hgetall(key)
            if not data.get("user_id"):  # the entry's hash is gone: nothing to send
                await self.finish(case_id)
                continue
            out.append(
                FollowUp(
                    case_id, data["user_id"], data.get("language") or "ja", float(data.get("due_at") or 0), attempts
                )
            )
        return out

    async def finish(self, case_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.zrem(DUE_KEY, case_id)
            pipe.delete(ENTRY_PREFIX + case_id)
            pipe.set(DONE_PREFIX + case_id, "1", ex=DONE_TTL_S)
            await pipe.execute()

    async def later(self, case_id: str, at: float) -> None:
        await self._r.zadd(DUE_KEY, {case_id: at}, xx=True)

    async def take_push(self, month: str, budget: Optional[int]) -> bool:
        args = ["" if budget is None else budget, COUNTER_TTL_S]
        return bool(await self._take_push(keys=[PUSH_PREFIX + month], args=args))

    async def give_back_push(self, month: str) -> None:
        await self._r.decr(PUSH_PREFIX + month)

    async def count_skipped(self, month: str) -> int:
        key = SKIPPED_PREFIX + month
        count = await self._r.incr(key)
        await self._r.expire(key, COUNTER_TTL_S)
        return int(count)

    async def counts(self, month: str) -> Dict[str, int]:
        pushed, skipped = await self._r.mget(PUSH_PREFIX + month, SKIPPED_PREFIX + month)
        return {"pushed": int(pushed or 0), "skipped": int(skipped or 0)}

    async def scheduled(self) -> Dict[str, float]:
        return {m: float(s) for m, s in await self._r.zrange(DUE_KEY, 0, -1, withscores=True)}

    async def close(self) -> None:
        close = getattr(self._r, "aclose", None) or self._r.close
        await close()


class MemoryFollowUpStore:
    """One process, lost on restart (no REDIS_URL: the local demo)."""

    def __init__(self) -> None:
        self._due: Dict[str, float] = {}
        self._entries: Dict[str, FollowUp] = {}
        self._done: set = set()
        self._counters: Dict[str, int] = {}

    async def schedule(self, entry: FollowUp, at: float) -> bool:
        if entry.case_id in self._done or entry.case_id in self._due:
            return False
        self._due[entry.case_id], self._entries[entry.case_id] = at, entry
        return True

    async def claim_due(self, now: float, lease_s: float, limit: int) -> List[FollowUp]:
        due = sorted((at, c) for c, at in self._due.items() if at <= now)[:limit]
        out = []
        for _, case_id in due:
            self._due[case_id] = now + lease_s
            entry = self._entries[case_id]
            entry = self._entries[case_id] = FollowUp(
                entry.case_id, entry.user_id, entry.language, entry.due_at, entry.attempts + 1
            )
            out.append(entry)
        return out

    async def finish(self, case_id: str) -> None:
        self._due.pop(case_id, None)
        self._entries.pop(case_id, None)
        self._done.add(case_id)

    async def later(self, case_id: str, at: float) -> None:
        if case_id in self._due:
            self._due[case_id] = at

    async def take_push(self, month: str, budget: Optional[int]) -> bool:
        used = self._counters.get(PUSH_PREFIX + month, 0)
        if budget is not None and used >= budget:
            return False
        self._counters[PUSH_PREFIX + month] = used + 1
        return True

    async def give_back_push(self, month: str) -> None:
        self._counters[PUSH_PREFIX + month] = self._counters.get(PUSH_PREFIX + month, 1) - 1

    async def count_skipped(self, month: str) -> int:
        self._counters[SKIPPED_PREFIX + month] = self._counters.get(SKIPPED_PREFIX + month, 0) + 1
        return self._counters[SKIPPED_PREFIX + month]

    async def counts(self, month: str) -> Dict[str, int]:
        return {
            "pushed": self._counters.get(PUSH_PREFIX + month, 0),
            "skipped": self._counters.get(SKIPPED_PREFIX + month, 0),
        }

    async def scheduled(self) -> Dict[str, float]:
        return dict(self._due)

    async def close(self) -> None:
        return None


def make_follow_up_store(redis_url: Optional[str]) -> FollowUpStore:
    return RedisFollowUpStore.from_url(redis_url) if redis_url else MemoryFollowUpStore()


# --- the clock ---------------------------------------------------------------------------------


def emulated(line_api_base_url: str) -> bool:
    """The LINE API is on this machine: the emulator, never the real LINE platform."""
    return (urlsplit(line_api_base_url).hostname or "") in LOOPBACK_HOSTS


def make_clock(offset_file: Optional[Path], line_api_base_url: str) -> Callable[[], float]:
    """The real clock, or (GATEWAY_CLOCK_OFFSET_FILE, emulated LINE only) the real clock
    plus the seconds in that file, re-read on every call (a test moves time forward)."""
    if offset_file is None:
        return time.time
    if not emulated(line_api_base_url):
        log.warning("GATEWAY_CLOCK_OFFSET_FILE ignored: LINE_API_BASE_URL is not the local emulator")
        return time.time

    def offset_clock() -> float:
        try:
            return time.time() + float(offset_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return time.time()

    return offset_clock


# --- the scheduler -------------------------------------------------------------------------------


class FollowUps:
    def __init__(
        self,
        store: FollowUpStore,
        rasa: RasaClient,
        line: LineApi,
        cases: CaseStore,
        postbacks: PostbackSigner,
        *,
        lease: Any = None,  # core.ordering's user lease (RedisUserLease or LocalLease)
        after_s: float = 600.0,
        budget: Optional[int] = None,
        claim_lease_s: float = 120.0,
        busy_retry_s: float = 30.0,
        max_attempts: int = 5,
        batch: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.rasa = rasa
        self.line = line
        self.cases = cases
        self.postbacks = postbacks
        self.lease = lease
        self.after_s = after_s
        self.budget = budget
        self.claim_lease_s = claim_lease_s
        self.busy_retry_s = busy_retry_s
        self.max_attempts = max_attempts
        self.batch = batch
        self.clock = clock
        self.stats = {"scheduled": 0, "asked": 0, "over_budget": 0, "person": 0, "nothing_asked": 0, "failed": 0}

    async def schedule_from(self, responses: List[Dict[str, Any]], user_id: str) -> List[Dict[str, Any]]:
        """Schedules the answer's follow-ups and returns the answer without them. Never
        fails the turn: a follow-up that cannot be scheduled is logged and dropped."""
        found = follow_up_payloads(responses)
        if not found and not any(isinstance(r.get("custom"), dict) and "follow_up" in r["custom"] for r in responses):
            return responses
        for item in found:
            entry = FollowUp(item["case_id"], user_id, str(item.get("language") or "ja"), float(item["due_at"]))
            try:
                if await self.store.schedule(entry, entry.due_at + self.after_s):
                    self.stats["scheduled"] += 1
                    log.info("follow-up of case %s scheduled", entry.case_id)
            except Exception as exc:  # the answer itself must still go out
                log.error("follow-up of case %s not scheduled (%s)", entry.case_id, type(exc).__name__)
        return without_follow_ups(responses)

    async def run_due(self, now: Optional[float] = None) -> Dict[str, int]:
        """One pass: every follow-up due at `now` (default: the clock) that this gateway
        claims. Returns what happened to them (outcome -> count)."""
        now = self.clock() if now is None else now
        outcomes: Dict[str, int] = {}
        for entry in await self.store.claim_due(now, self.claim_lease_s, self.batch):
            outcome = await self._follow_up(entry, now)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    async def run_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("follow-up loop: %s", type(exc).__name__)
            await asyncio.sleep(interval_s)

    async def _follow_up(self, entry: FollowUp, now: float) -> str:
        case_id, user = entry.case_id, entry.user_id
        if entry.attempts > self.max_attempts:
            log.error("follow-up of case %s given up after %d attempts", case_id, entry.attempts - 1)
            return await self._done(case_id, "failed")
        if await self.cases.owner(user) != BOT:
            log.info("follow-up of case %s skipped: a person has the conversation", case_id)
            return await self._done(case_id, "person")
        month = month_of(now)
        if not await self.store.take_push(month, self.budget):
            skipped = await self.store.count_skipped(month)
            log.warning(
                "follow-up of case %s skipped: the monthly push budget (%s) is spent; %d skipped in %s",
                case_id,
                self.budget,
                skipped,
                month,
            )
            return await self._done(case_id, "over_budget")
        token = await self._try_user_lease(user)
        if token is None:  # the customer's own message is being handled: soon again
            await self.store.give_back_push(month)
            await self.store.later(case_id, now + self.busy_retry_s)
            return "busy"
        try:
            return await self._ask(entry, month, now)
        finally:
            if token:
                try:
                    await self.lease.release(user, token)
                except Exception:
                    log.warning("could not release a per-user lease; it will expire")

    async def _ask(self, entry: FollowUp, month: str, now: float) -> str:
        case_id, user = entry.case_id, entry.user_id
        try:
            state = await self.rasa.conversation(user)
            if state.get("paused"):  # a person has the conversation in Rasa's eyes
                await self.store.give_back_push(month)
                return await self._done(case_id, "person")
            if (state.get("active_loop") or {}).get("name"):
                # in the middle of a question of the bot's (a new claim): not now, later
                await self.store.give_back_push(month)
                await self.store.later(case_id, now + self.busy_retry_s * 10)
                return "busy"
            await self.rasa.append_events(user, [{"event": "slot", "name": FOLLOW_UP_SLOT, "value": case_id}])
            responses = await self.rasa.trigger_intent(user, FOLLOW_UP_INTENT)
        except RasaUnavailable as exc:
            # kept: the claim's lease runs out and the follow-up is tried again
            log.warning("follow-up of case %s waits: %s", case_id, exc)
            await self.store.give_back_push(month)
            return "retry"
        except RasaRejected as exc:
            log.error("Rasa refused the follow-up of case %s: %s", case_id, exc)
            await self.store.give_back_push(month)
            return await self._done(case_id, "failed")
        responses = without_follow_ups(responses)
        batches = [b for b in self.postbacks.sign_batches(line_messages.convert(responses), user) if b]
        if not batches:
            # the bot asked nothing (answered already, a person has the case): no push spent
            await self.store.give_back_push(month)
            log.info("follow-up of case %s: the bot had nothing to ask", case_id)
            return await self._done(case_id, "nothing_asked")
        if await self.cases.owner(user) != BOT:  # a person took over while the bot ran
            await self.store.give_back_push(month)
            return await self._done(case_id, "person")
        for index, batch in enumerate(batches):
            try:
                await self.line.push(user, batch, retry_key=retry_key(case_id, index))
            except LineApiError as exc:
                if exc.status is None or exc.status == 429 or exc.status >= 500:
                    log.warning("follow-up of case %s: LINE unavailable (HTTP %s); tried again", case_id, exc.status)
                    await self.store.give_back_push(month)  # taken again by the next attempt
                    return "retry"  # the lease runs out; the retry key keeps it once
                log.error("LINE refused the follow-up of case %s (HTTP %s)", case_id, exc.status)
                return await self._done(case_id, "failed")
        log.info("follow-up of case %s asked", case_id)
        return await self._done(case_id, "asked")

    async def _try_user_lease(self, user: str) -> Optional[str]:
        """The customer's lease ("" when this gateway has none to take: one process)."""
        try_acquire = getattr(self.lease, "try_acquire", None)
        if try_acquire is None:
            return ""
        return await try_acquire(user)

    async def _done(self, case_id: str, outcome: str) -> str:
        await self.store.finish(case_id)
        self.stats[outcome] = self.stats.get(outcome, 0) + 1
        return outcome

    async def close(self) -> None:
        await self.store.close()


__all__ = [
    "DUE_KEY",
    "FOLLOW_UP_INTENT",
    "FollowUp",
    "FollowUps",
    "MemoryFollowUpStore",
    "RedisFollowUpStore",
    "follow_up_payloads",
    "make_clock",
    "make_follow_up_store",
    "month_of",
    "retry_key",
    "without_follow_ups",
]
