"""Run with the bot environment (.venv-bot/bin/python): reads an endpoints file the way
`rasa run --endpoints` does, then acts as two Rasa replicas sharing its stores.

    .venv-bot/bin/python tests/deploy/rasa_endpoints_probe.py deploy/endpoints.redis.yml

Prints one JSON object:
- tracker_store / lock_store / action_url / action_headers: what Rasa built from the file
  (the headers with ${ACTION_SERVER_TOKEN} substituted);
- tracker_seen_by_other_replica: a turn saved by replica A is read back by replica B;
- lock_serialised: while replica A holds a conversation's lock, replica B waits for it.
No Rasa server is started; only Rasa's own store classes talk to Redis.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Dict

from rasa.core.lock_store import LockStore
from rasa.core.tracker_store import TrackerStore
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

CONVERSATION = "deploy-probe-user"
HOLD_S = 0.6


async def probe(endpoints_path: str) -> Dict[str, Any]:
    endpoints = AvailableEndpoints.read_endpoints(endpoints_path)
    # Two replicas: each builds its own stores from the same file, as two pods would.
    tracker_a = TrackerStore.create(endpoints.tracker_store, Domain.empty())
    tracker_b = TrackerStore.create(endpoints.tracker_store, Domain.empty())
    lock_a = LockStore.create(endpoints.lock_store)
    lock_b = LockStore.create(endpoints.lock_store)

    tracker = DialogueStateTracker(CONVERSATION, slots=[])
    tracker.update(UserUttered("probe turn"))
    await tracker_a.save(tracker)
    seen = await tracker_b.retrieve(CONVERSATION)
    seen_texts = [e.text for e in (seen.events if seen else []) if isinstance(e, UserUttered)]

    times: Dict[str, float] = {}

    async def replica_a() -> None:
        async with lock_a.lock(CONVERSATION, lock_lifetime=30, wait_time_in_seconds=0.05):
            times["a_acquired"] = time.monotonic()
            await asyncio.sleep(HOLD_S)
            times["a_released"] = time.monotonic()

    async def replica_b() -> None:
        await asyncio.sleep(0.1)  # A asks first
        async with lock_b.lock(CONVERSATION, lock_lifetime=30, wait_time_in_seconds=0.05):
            times["b_acquired"] = time.monotonic()

    await asyncio.gather(replica_a(), replica_b())
    return {
        "tracker_store": type(tracker_a).__name__,
        "lock_store": type(lock_a).__name__,
        "action_url": endpoints.action.url if endpoints.action else None,
        "action_headers": endpoints.action.headers if endpoints.action else None,
        "tracker_seen_by_other_replica": seen_texts == ["probe turn"],
        "lock_serialised": times["b_acquired"] >= times["a_released"],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1]))))
