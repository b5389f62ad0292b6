"""Handoff cases and who owns each customer's conversation: the bot, or a person.

One atomic ownership state per customer (DESIGN: "one owner at a time"):
  bot      no open case: the customer talks to Rasa;
  waiting  a case is open and nobody has claimed it yet (the customer's messages go to
           the agents' thread, the bot stays quiet);
  agent    an agent claimed the case; their thread replies reach the customer.
It is derived from one key per customer (`owner:<user>` -> open case id), set with
SET NX when a case opens and deleted when it is resolved, and read right before every
send on both sides. Case records change through compare-and-set transactions, so two
agents pressing Claim at once cannot both win.

Plain module: no platform SDK. Redis when REDIS_URL is set (state survives a gateway
restart and is shared by gateway instances), memory otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

BOT, WAITING, AGENT = "bot", "waiting", "agent"
# case status
OPEN, CLAIMED, RESOLVED = "open", "claimed", "resolved"
RESOLVED_TTL_S = 90 * 24 * 3600  # resolved cases are kept for reporting, then expire
SEEN_TTL_S = 24 * 3600  # Slack retries an event for minutes, not days
REPLY_WARNING_TTL_S = 24 * 3600  # an agent warned about a reply may send it unchanged for a day


@dataclass
class Case:
    case_id: str
    user_id: str  # LINE user id (the customer)
    context: Dict[str, Any]  # what the bot's handoff action built
    status: str = OPEN
    created_at: float = field(default_factory=time.time)
    channel: Optional[str] = None  # Slack channel and the card's ts (= thread parent)
    thread_ts: Optional[str] = None
    announced_at: Optional[float] = None
    agent_id: Optional[str] = None
    agent_name: Optional[str] = None
    claimed_at: Optional[float] = None
    resolved_at: Optional[float] = None
    resolved_by: Optional[str] = None
    approved: List[Dict[str, Any]] = field(default_factory=list)
    # remedy -> who pressed Approve for it so far ({"slack_user_id", "name"}, one per person)
    approvals: Dict[str, List[Dict[str, str]]] = field(default_factory=dict)
    photos: List[Dict[str, Any]] = field(default_factory=list)
    # the markAsReadToken of the customer's latest message before an agent claimed the case
    # (LINE marks it, and the earlier ones, read at the claim)
    unread_token: Optional[str] = None
    # the customer's latest messages in the case ({"text", "token"}: LINE quoteTokens), so
    # an agent's Slack reply that quotes one ("> ...") quotes it on LINE too
    quotes: List[Dict[str, str]] = field(default_factory=list)
    relayed: Dict[str, int] = field(default_factory=lambda: {"to_agent": 0, "to_customer": 0})
    # a goodwill gesture above an agent's own limit, waiting for a supervisor's approval:
    # {"kind", "amount", "reason", "approvers": [{"slack_user_id", "name"}, ...]}
    pending_goodwill: Optional[Dict[str, Any]] = None
    # escalated to the supervisors (once): when and by whom
    escalated_at: Optional[float] = None
    escalated_by: Optional[str] = None

    @property
    def owner(self) -> str:
        return {OPEN: WAITING, CLAIMED: AGENT}.get(self.status, BOT)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> "Case":
        data = json.loads(raw)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class CaseConflict(Exception):
    """A transition that does not apply to the case's current state (e.g. claimed twice)."""

    def __init__(self, case: Case, message: str) -> None:
        super().__init__(message)
        self.case = case


Mutation = Callable[[Case], None]  # changes the case in place or raises CaseConflict


class CaseStore:
    """Interface; see MemoryCaseStore and RedisCaseStore."""

    async def open(self, case: Case) -> Tuple[Case, bool]:
        """Opens `case` unless the customer already has an open case; returns the case
        that is open now and whether it is the new one."""
        raise NotImplementedError

    async def get(self, case_id: str) -> Optional[Case]:
        raise NotImplementedError

    async def open_case_for(self, user_id: str) -> Optional[Case]:
        raise NotImplementedError

    async def by_thread(self, channel: str, thread_ts: str) -> Optional[Case]:
        raise NotImplementedError

    async def update(self, case_id: str, mutate: Mutation) -> Case:
        """Applies `mutate` atomically; raises KeyError for an unknown case."""
        raise NotImplementedError

    async def open_cases(self) -> List[Case]:
        raise NotImplementedError

    async def all_cases(self) -> List[Case]:
        raise NotImplementedError

    async def first_time(self, key: str) -> bool:
        """True the first time `key` is seen (Slack event ids: retries are not redone)."""
        raise NotImplementedError

    # Agent events (an agent's thread reply) are journalled before they are acted on, like
    # LINE events (events.py): a gateway killed between Slack's ack and the push to LINE
    # finds them on restart instead of losing the agent's words.
    async def journal_agent_event(self, key: str, entry: Dict[str, Any]) -> bool:
        """Records an agent event as pending; False if `key` was recorded before."""
        raise NotImplementedError

    async def pending_agent_events(self) -> List[Dict[str, Any]]:
        raise NotImplementedError

    async def take_agent_event(self, key: str, lease_s: float) -> bool:
        """The right to act on a pending agent event for `lease_s` (one process at a time;
        a crashed holder's right expires)."""
        raise NotImplementedError

    async def agent_event_done(self, key: str) -> None:
        raise NotImplementedError

    # A reply the reply book flagged (gateway/core/replies.py) is held back once: the agent
    # is warned, and the same text (its digest) sent again by them in that case goes out.
    async def reply_warning(self, case_id: str, agent_id: str, digest: str) -> Optional[str]:
        """The Slack ts of the message this agent was warned about with this text, or None."""
        raise NotImplementedError

    async def remember_reply_warning(self, case_id: str, agent_id: str, digest: str, message_ts: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    # --- derived ---------------------------------------------------------------------------
    async def owner(self, user_id: str) -> str:
        case = await self.open_case_for(user_id)
        return case.owner if case is not None else BOT

    async def set_thread(self, case_id: str, channel: str, thread_ts: str, now: float) -> Case:
        def mutate(case: Case) -> None:
            case.channel, case.thread_ts = channel, thread_ts
            case.announced_at = now

        return await self.update(case_id, mutate)

    async def claim(self, case_id: str, agent_id: str, agent_name: str, now: float) -> Case:
        def mutate(case: Case) -> None:
            if case.status == RESOLVED:
                raise CaseConflict(case, "the case is already resolved")
            if case.status == CLAIMED and case.agent_id != agent_id:
                raise CaseConflict(case, f"already claimed by {case.agent_name}")
            if case.status == OPEN:
                case.status, case.claimed_at = CLAIMED, now
                case.agent_id, case.agent_name = agent_id, agent_name

        return await self.update(case_id, mutate)

    async def reassign(self, case_id: str, agent_id: str, agent_name: str, now: float) -> Case:
        """The case's agent becomes `agent_id` (an unclaimed case is claimed for them)."""

        def mutate(case: Case) -> None:
            if case.status == RESOLVED:
                raise CaseConflict(case, "the case is already resolved")
            if case.status == CLAIMED and case.agent_id == agent_id:
                raise CaseConflict(case, f"the case is already {agent_name}'s")
            if case.status == OPEN:
                case.status, case.claimed_at = CLAIMED, now
            case.agent_id, case.agent_name = agent_id, agent_name

        return await self.update(case_id, mutate)

    async def escalate(self, case_id: str, agent_name: str, now: float) -> Case:
        """Marks the case escalated to the supervisors; a second escalation is a conflict."""

        def mutate(case: Case) -> None:
            if case.status == RESOLVED:
                raise CaseConflict(case, "the case is already resolved")
            if case.escalated_at is not None:
                raise CaseConflict(case, f"already escalated by {case.escalated_by}")
            case.escalated_at, case.escalated_by = now, agent_name

        return await self.update(case_id, mutate)

    async def resolve(self, case_id: str, agent_id: str, agent_name: str, now: float) -> Case:
        def mutate(case: Case) -> None:
            if case.status == RESOLVED:
                raise CaseConflict(case, "the case is already resolved")
            case.status, case.resolved_at, case.resolved_by = RESOLVED, now, agent_name
            if case.agent_id is None:
                case.agent_id, case.agent_name, case.claimed_at = agent_id, agent_name, now

        return await self.update(case_id, mutate)


class MemoryCaseStore(CaseStore):
    def __init__(self) -> None:
        self._cases: Dict[str, Case] = {}
        self._owner: Dict[str, str] = {}
        self._threads: Dict[Tuple[str, str], str] = {}
        self._seen: Dict[str, float] = {}
        self._reply_warnings: Dict[Tuple[str, str, str], Tuple[str, float]] = {}
        self._lock = asyncio.Lock()
        self._agent_events: Dict[str, Dict[str, Any]] = {}
        self._agent_taken: Dict[str, float] = {}

    async def open(self, case: Case) -> Tuple[Case, bool]:
        async with self._lock:
            current = self._owner.get(case.user_id)
            if current is not None:
                return Case.from_json(self._cases[current].to_json()), False
            self._cases[case.case_id] = Case.from_json(case.to_json())
            self._owner[case.user_id] = case.case_id
            return case, True

    async def get(self, case_id: str) -> Optional[Case]:
        case = self._cases.get(case_id)
        return Case.from_json(case.to_json()) if case else None

    async def open_case_for(self, user_id: str) -> Optional[Case]:
        case_id = self._owner.get(user_id)
        return await self.get(case_id) if case_id else None

    async def by_thread(self, channel: str, thread_ts: str) -> Optional[Case]:
        case_id = self._threads.get((channel, thread_ts))
        return await self.get(case_id) if case_id else None

    async def update(self, case_id: str, mutate: Mutation) -> Case:
        async with self._lock:
            if case_id not in self._cases:
                raise KeyError(case_id)
            case = Case.from_json(self._cases[case_id].to_json())
            mutate(case)
            self._cases[case_id] = case
            if case.thread_ts and case.channel:
                self._threads[(case.channel, case.thread_ts)] = case_id
            if case.status == RESOLVED and self._owner.get(case.user_id) == case_id:
                del self._owner[case.user_id]
            return Case.from_json(case.to_json())

    async def open_cases(self) -> List[Case]:
        return [c for c in await self.all_cases() if c.status != RESOLVED]

    async def all_cases(self) -> List[Case]:
        return [Case.from_json(c.to_json()) for c in self._cases.values()]

    async def journal_agent_event(self, key: str, entry: Dict[str, Any]) -> bool:
        if not await self.first_time(f"agent-event:{key}"):
            return False
        self._agent_events[key] = dict(entry, key=key)
        return True

    async def pending_agent_events(self) -> List[Dict[str, Any]]:
        return [dict(e) for e in self._agent_events.values()]

    async def take_agent_event(self, key: str, lease_s: float) -> bool:
        now = time.time()
        if self._agent_taken.get(key, 0.0) > now:
            return False
        self._agent_taken[key] = now + lease_s
        return True

    async def agent_event_done(self, key: str) -> None:
        self._agent_events.pop(key, None)
        self._agent_taken.pop(key, None)

    async def reply_warning(self, case_id: str, agent_id: str, digest: str) -> Optional[str]:
        hit = self._reply_warnings.get((case_id, agent_id, digest))
        return hit[0] if hit and time.time() - hit[1] < REPLY_WARNING_TTL_S else None

    async def remember_reply_warning(self, case_id: str, agent_id: str, digest: str, message_ts: str) -> None:
        self._reply_warnings[(case_id, agent_id, digest)] = (message_ts, time.time())

    async def first_time(self, key: str) -> bool:
        now = time.time()
        if len(self._seen) > 50000:
            self._seen = {k: t for k, t in self._seen.items() if now - t < SEEN_TTL_S}
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


# Record an agent event and index it as pending in one step (SET NX + SADD), so a crash
# cannot leave it recorded but invisible to the resume.
_JOURNAL_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
  return 1
end
return 0
"""


class RedisCaseStore(CaseStore):
    """Keys (prefix gw:case:): case:<id> (JSON), owner:<user> -> open case id,
    thread:<channel>:<ts> -> case id, open (set of open case ids), seen:<key>,
    agent_event:<key> (JSON, pending agent event), agent_events (set of pending keys),
    agent_event_lease:<key>, reply_warned:<case>:<agent>:<text digest> -> warned message ts."""

    def __init__(self, redis: Any, prefix: str = "gw:case:") -> None:
        self._r = redis
        self._p = prefix
        self._journal_script: Any = None

    @classmethod
    def from_url(cls, url: str) -> "RedisCaseStore":
        import redis.asyncio as aioredis

        return cls(aioredis.Redis.from_url(url, decode_responses=True))

    def _k(self, *parts: str) -> str:
        return self._p + ":".join(parts)

    async def open(self, case: Case) -> Tuple[Case, bool]:
        owner_key = self._k("owner", case.user_id)
        while True:
            if await self._r.set(owner_key, case.case_id, nx=True):
                async with self._r.pipeline(transaction=True) as pipe:
                    pipe.set(self._k("case", case.case_id), case.to_json())
                    pipe.sadd(self._k("open"), case.case_id)
                    await pipe.execute()
                return case, True
            current = await self._r.get(owner_key)
            if current is None:
                continue  # resolved in between: try again
            existing = await self.get(current)
            if existing is not None:
                return existing, False
            # an owner key without its case (a crash between the two writes): take over
            await self._r.delete(owner_key)

    async def get(self, case_id: str) -> Optional[Case]:
        raw = await self._r.get(self._k("case", case_id))
        return Case.from_json(raw) if raw else None

    async def open_case_for(self, user_id: str) -> Optional[Case]:
        case_id = await self._r.get(self._k("owner", user_id))
        return await self.get(case_id) if case_id else None

    async def by_thread(self, channel: str, thread_ts: str) -> Optional[Case]:
        case_id = await self._r.get(self._k("thread", channel, thread_ts))
        return await self.get(case_id) if case_id else None

    async def update(self, case_id: str, mutate: Mutation) -> Case:
        from redis.exceptions import WatchError

        key = self._k("case", case_id)
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise KeyError(case_id)
                    case = Case.from_json(raw)
                    mutate(case)
                    pipe.multi()
                    if case.status == RESOLVED:
                        pipe.set(key, case.to_json(), ex=RESOLVED_TTL_S)
                        pipe.srem(self._k("open"), case_id)
                    else:
                        pipe.set(key, case.to_json())
                    if case.thread_ts and case.channel:
                        pipe.set(self._k("thread", case.channel, case.thread_ts), case_id, ex=RESOLVED_TTL_S)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        if case.status == RESOLVED:
            # only this case's ownership is released (a newer case keeps its own)
            owner_key = self._k("owner", case.user_id)
            if await self._r.get(owner_key) == case_id:
                await self._r.delete(owner_key)
        return case

    async def open_cases(self) -> List[Case]:
        ids = await self._r.smembers(self._k("open"))
        cases = [await self.get(i) for i in sorted(ids)]
        return [c for c in cases if c is not None and c.status != RESOLVED]

    async def all_cases(self) -> List[Case]:
        cases = []
        async for key in self._r.scan_iter(match=self._k("case", "*"), count=500):
            raw = await self._r.get(key)
            if raw:
                cases.append(Case.from_json(raw))
        return cases

    async def first_time(self, key: str) -> bool:
        return bool(await self._r.set(self._k("seen", key), "1", nx=True, ex=SEEN_TTL_S))

    async def journal_agent_event(self, key: str, entry: Dict[str, Any]) -> bool:
        record = json.dumps(dict(entry, key=key), ensure_ascii=False)
        created = await self._journal(
            keys=[self._k("seen", f"agent-event:{key}"), self._k("agent_event", key), self._k("agent_events")],
            args=[record, SEEN_TTL_S, key],
        )
        return bool(created)

    async def pending_agent_events(self) -> List[Dict[str, Any]]:
        keys = sorted(await self._r.smembers(self._k("agent_events")))
        out = []
        for key in keys:
            raw = await self._r.get(self._k("agent_event", key))
            if raw is None:
                await self._r.srem(self._k("agent_events"), key)  # expired: nothing to resume
                continue
            out.append(json.loads(raw))
        return out

    async def take_agent_event(self, key: str, lease_s: float) -> bool:
        return bool(await self._r.set(self._k("agent_event_lease", key), "1", nx=True, px=int(lease_s * 1000)))

    async def agent_event_done(self, key: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.srem(self._k("agent_events"), key)
            pipe.delete(self._k("agent_event", key), self._k("agent_event_lease", key))
            await pipe.execute()

    async def reply_warning(self, case_id: str, agent_id: str, digest: str) -> Optional[str]:
        return await self._r.get(self._k("reply_warned", case_id, agent_id, digest))

    async def remember_reply_warning(self, case_id: str, agent_id: str, digest: str, message_ts: str) -> None:
        await self._r.set(self._k("reply_warned", case_id, agent_id, digest), message_ts, ex=REPLY_WARNING_TTL_S)

    @property
    def _journal(self) -> Any:
        if self._journal_script is None:
            self._journal_script = self._r.register_script(_JOURNAL_LUA)
        return self._journal_script

    async def close(self) -> None:
        close = getattr(self._r, "aclose", None) or self._r.close
        await close()


def make_case_store(redis_url: Optional[str]) -> CaseStore:
    return RedisCaseStore.from_url(redis_url) if redis_url else MemoryCaseStore()


__all__ = [
    "AGENT",
    "BOT",
    "CLAIMED",
    "Case",
    "CaseConflict",
    "CaseStore",
    "MemoryCaseStore",
    "OPEN",
    "RESOLVED",
    "RedisCaseStore",
    "WAITING",
    "make_case_store",
]
