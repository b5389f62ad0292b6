"""Fault tests over the real processes: the stack of tests/gateway_e2e (LINE and Slack
emulators, Rasa, gateway), with two pieces made restartable here so a test can take them
away under the gateway's feet:

- redis-server on a fixed port and directory, with the append-only file fsynced on every
  write (`appendfsync always`): the gateway's journal, cases and dedupe keys survive a
  SIGKILL of Redis, as they must in production (without persistence a Redis restart
  forgets every pending event and every open case);
- the action server on a fixed port (stack.start_action_server), so Rasa keeps its URL.

Run: .venv-devkit/bin/python -m pytest tests/faults -q -x
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from scripts import stack
from tests.environments import in_devkit_environment
if not in_devkit_environment():
    collect_ignore_glob = ["test_*.py"]  # collected from the bot environment: not ours
else:
    # The shared stack: imported (not copied) so both suites start the same processes.
    from tests.gateway_e2e.conftest import (  # noqa: F401  (fixtures are found by name)
        gateway, line_client, line_emulator, log_dir, orders_url, rasa, slack_client, slack_emulator,
    )


class RestartableRedis:
    """redis-server with AOF (fsync always) on a fixed port: `kill()` (SIGKILL) and
    `start()` again keep the same URL and data directory."""

    def __init__(self, persistent: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = stack.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="redis-faults-"))
        self.persistent = persistent
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
                       if self.persistent else ["--appendonly", "no", "--save", ""])
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 15
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_timeout=0.5)
                # a restarted server answers LOADING while it replays its AOF
                if client.ping():
                    client.close()
                    return
            except redis.exceptions.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, exactly what a crash or an OOM kill does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def restartable_redis() -> Iterator[RestartableRedis]:
    server = RestartableRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(restartable_redis: RestartableRedis) -> str:
    """Overrides tests/gateway_e2e's throwaway Redis: the gateway uses the restartable one."""
    return restartable_redis.url


class RestartableActionServer:
    """The bot's action server (stack.start_action_server) on a fixed port."""

    def __init__(self, log_dir: Path, env: Dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.port = stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service: Optional[stack.Service] = None

    def start(self) -> None:
        self.service = stack.start_action_server(self.log_dir, env=self.env, port=self.port)

    def kill(self) -> None:
        if self.service is not None and self.service.process.poll() is None:
            self.service.process.kill()
            self.service.process.wait(timeout=10)
            self.service = None

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    @property
    def running(self) -> bool:
        return self.service is not None and self.service.process.poll() is None


@pytest.fixture(scope="session")
def action_server(orders_url: str, log_dir: Path) -> Iterator[RestartableActionServer]:
    """Overrides tests/gateway_e2e's action server: same command, restartable."""
    server = RestartableActionServer(log_dir, {"ORDERS_DATABASE_URL": orders_url})
    server.start()
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
    return [d["message"].get("text", "") for d in emu.messages_for(user)
            if d["message"].get("type") == "text"]
