"""Fault tests over the real processes: the stack of tests/system/line (LINE and Slack
emulators, Rasa, gateway), with two pieces restartable (devkit/stack.py) so a test can take
them away under the gateway's feet:

- redis-server on a fixed port and directory, with the append-only file fsynced on every
  write (`appendfsync always`, stack.RedisServer(persistent=True)): the gateway's journal,
  cases and dedupe keys survive a SIGKILL of Redis, as they must in production (without
  persistence a Redis restart forgets every pending event and every open case);
- the action server on a fixed port (stack.RestartableActionServer), so Rasa keeps its URL.

Run: .venv-devkit/bin/python -m pytest tests/system/faults -q -x
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List

import pytest

from devkit import stack
from devkit.stack import RedisServer, RestartableActionServer
from tests.support.environments import in_devkit_environment, left_out

if not in_devkit_environment():
    collect_ignore_glob = left_out("tests/system/faults", "make test-faults")
else:
    pass  # the whole stack's fixtures come from tests/system/conftest.py


@pytest.fixture(scope="session")
def restartable_redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(restartable_redis: RedisServer) -> str:
    """Overrides tests/system/line's throwaway Redis: the gateway uses the restartable one."""
    return restartable_redis.url


@pytest.fixture(scope="session")
def action_server(orders_url: str, log_dir: Path) -> Iterator[RestartableActionServer]:
    """Overrides tests/system/line's action server: same command, restartable."""
    server = RestartableActionServer(log_dir, {"ORDERS_DATABASE_URL": orders_url}).start()
    yield server
    server.stop()


# --- helpers for the fault tests ------------------------------------------------------------


def pending_ids(redis_url: str) -> List[str]:
    """The LINE events the gateway still has to answer (its Redis journal)."""
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return r.zrange("gw:line:pending", 0, -1)
    finally:
        r.close()


def user_turns(rasa: Any, sender: str) -> List[str]:
    """Every text the customer said in Rasa's tracker, in order (restarts included: a
    message recorded twice shows twice)."""
    return [e.get("text") for e in rasa.tracker(sender)["events"] if e.get("event") == "user"]


def seen_by(emu: Any, user: str) -> List[str]:
    """The texts the customer saw on LINE, in order (reply and push alike)."""
    return [d["message"].get("text", "") for d in emu.messages_for(user) if d["message"].get("type") == "text"]
