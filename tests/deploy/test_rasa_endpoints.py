"""deploy/endpoints.redis.yml, read by Rasa's own code (.venv-bot) with the environment the
containers give it, against a real redis-server: two Rasa replicas share conversations and
serialise one conversation's turns. No Rasa server is started."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict

import redis

from devkit import stack
from tests.deploy.conftest import ROOT

PROBE = ROOT / "tests" / "deploy" / "rasa_endpoints_probe.py"
ACTION_TOKEN = "probe-action-server-token"


def _probe(env: Dict[str, str]) -> subprocess.CompletedProcess:
    python = ROOT / ".venv-bot" / "bin" / "python"
    assert python.exists(), "the bot environment is missing: run scripts/bootstrap.sh"
    return subprocess.run(
        [str(python), str(PROBE), str(ROOT / "deploy" / "endpoints.redis.yml")],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def _result(out: subprocess.CompletedProcess) -> Dict[str, Any]:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _port(service: stack.Service) -> str:
    return service.url.rsplit(":", 1)[1].split("/")[0]


def test_two_replicas_share_the_tracker_and_the_lock(redis_server: stack.Service) -> None:
    # As in docker-compose.yml: Redis without a password on the backend network.
    result = _result(
        _probe(
            {
                "ACTION_SERVER_URL": "http://actions:5055/webhook",
                "ACTION_SERVER_TOKEN": ACTION_TOKEN,
                "RASA_REDIS_HOST": "127.0.0.1",
                "RASA_REDIS_PORT": _port(redis_server),
                "RASA_REDIS_PASSWORD": "",
            }
        )
    )
    assert result == {
        "tracker_store": "RedisTrackerStore",
        "lock_store": "RedisLockStore",
        "action_url": "http://actions:5055/webhook",
        # Rasa substitutes the secret inside `headers` and sends it with every action call.
        "action_headers": {"Authorization": f"Bearer {ACTION_TOKEN}"},
        "tracker_seen_by_other_replica": True,
        "lock_serialised": True,
    }
    # The conversation is in db 2, apart from the gateway's db 0.
    assert redis.Redis.from_url(redis_server.url.replace("/0", "/2")).exists("tracker:deploy-probe-user")
    assert not redis.Redis.from_url(redis_server.url).keys("tracker:*")


def test_a_password_protected_redis_as_in_kubernetes(redis_server: stack.Service) -> None:
    env = {
        "ACTION_SERVER_URL": "http://actions:5055/webhook",
        "ACTION_SERVER_TOKEN": ACTION_TOKEN,
        "RASA_REDIS_HOST": "127.0.0.1",
        "RASA_REDIS_PORT": _port(redis_server),
    }
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("requirepass", "pr0be-secret")
    try:
        assert _result(_probe({**env, "RASA_REDIS_PASSWORD": "pr0be-secret"}))["lock_serialised"]
        refused = _probe({**env, "RASA_REDIS_PASSWORD": ""})
        assert refused.returncode != 0 and "Authentication required" in refused.stderr
    finally:
        redis.Redis.from_url(redis_server.url, password="pr0be-secret").config_set("requirepass", "")


def test_an_unset_variable_stops_rasa(redis_server: stack.Service) -> None:
    """Rasa has no defaults in endpoints files: the containers must set every variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RASA_REDIS_")}
    env.update(
        {
            "ACTION_SERVER_URL": "http://actions:5055/webhook",
            "ACTION_SERVER_TOKEN": ACTION_TOKEN,
            "RASA_REDIS_HOST": "127.0.0.1",
            "RASA_REDIS_PORT": _port(redis_server),
        }
    )
    python = ROOT / ".venv-bot" / "bin" / "python"
    out = subprocess.run(
        [str(python), str(PROBE), str(ROOT / "deploy" / "endpoints.redis.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode != 0 and "RASA_REDIS_PASSWORD" in out.stderr
    # Without the action server's secret Rasa does not start either (it would send none).
    env.update({"RASA_REDIS_PASSWORD": ""})
    env.pop("ACTION_SERVER_TOKEN")
    out = subprocess.run(
        [str(python), str(PROBE), str(ROOT / "deploy" / "endpoints.redis.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode != 0 and "ACTION_SERVER_TOKEN" in out.stderr
