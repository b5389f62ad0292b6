"""Two gateways and two Rasa servers on one machine, as a scaled deployment runs them.

    LINE emulator -> gateway balancer -> gateway A, gateway B -> Rasa balancer -> Rasa A, Rasa B
                                                                       (one action server)
    one redis-server shared by all: the gateways' event journal and per-user leases, Rasa's
    tracker store and lock store (scripts/endpoints.py writes that endpoints file)

The balancers are devkit/balancer.py (round robin) in their own processes; every process
is started by devkit/stack.py.
Redis, the LINE emulator, the orders database and the action server are the gateway
end-to-end fixtures (tests/support/line_stack.py), imported here.

Run: .venv-devkit/bin/python -m pytest tests/system/scale -q
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Iterator, List

import pytest

from devkit import stack
from scripts.endpoints import write_endpoints
from tests.support.environments import in_devkit_environment, left_out

if not in_devkit_environment():
    # collected from the bot environment: not ours to run there
    collect_ignore_glob = left_out("tests/system/scale", "make test-scale")
else:
    from bench.customers import CustomerPool
    from tests.support.line_stack import (  # noqa: F401  (fixtures shared with the e2e tests)
        ACCESS_TOKEN,
        SECRET,
        action_server,
        line_emulator,
        log_dir,
        orders_url,
        redis_url,
    )


@dataclass
class RasaPair:
    servers: List[stack.RasaServer]
    balancer: stack.Service
    token: str

    def api(self, path: str) -> str:
        """Any server's API: both read the same Redis tracker store."""
        return self.servers[0].api(path)


@pytest.fixture(scope="session")
def rasa_pair(action_server, redis_url, log_dir) -> Iterator[RasaPair]:
    model = os.environ.get("GATEWAY_E2E_MODEL") or stack.trained_model()
    endpoints = write_endpoints(log_dir / "endpoints-redis.yml", {"REDIS_URL": redis_url})
    token = secrets.token_urlsafe(24)
    servers: List[stack.RasaServer] = []
    try:
        for name in "ab":  # one after the other: two model loads at once can exceed the limit
            servers.append(
                stack.start_rasa(
                    model, action_server.url, log_dir / f"rasa-{name}", token=token, endpoints=str(endpoints)
                )
            )
        balancer = stack.start_balancer([s.url for s in servers], log_dir, "rasa-balancer")
    except Exception:
        for server in servers:
            server.stop()
        raise
    yield RasaPair(servers, balancer, token)
    balancer.stop()
    for server in servers:
        server.stop()


@dataclass
class GatewayPair:
    gateways: List[stack.GatewayProcess]
    balancer: stack.Service

    @property
    def webhook_url(self) -> str:
        """Where LINE posts webhooks: the balancer in front of both gateways."""
        return f"{self.balancer.url}/line/webhook"


@pytest.fixture(scope="session")
def gateway_pair(
    line_emulator, redis_url, rasa_pair, action_server, log_dir, tmp_path_factory
) -> Iterator[GatewayPair]:
    attachments = tmp_path_factory.mktemp("attachments")
    gateways = []
    for name in "ab":
        port = stack.free_port()
        env = stack.gateway_env(
            port,
            line_api_url=line_emulator.url,
            redis_url=redis_url,
            rasa_url=rasa_pair.balancer.url,
            rasa_token=rasa_pair.token,
            actions_url=action_server.url,
            attachments_dir=attachments,
            channel_secret=SECRET,
            channel_access_token=ACCESS_TOKEN,
            log_level="INFO",
            extra={"GATEWAY_RETRY_MIN_S": "0.5", "GATEWAY_RETRY_MAX_S": "2"},
        )
        gateways.append(stack.start_gateway(env, port, log_dir / f"gateway-{name}.log"))
    balancer = stack.start_balancer([g.url for g in gateways], log_dir, "gateway-balancer")
    yield GatewayPair(gateways, balancer)
    balancer.stop()
    for gateway in gateways:
        gateway.stop()


@pytest.fixture(scope="session")
def customers(orders_url) -> Iterator[CustomerPool]:
    """Customers with one fresh order each (bench/customers.py), seeded as needed."""
    pool = CustomerPool(orders_url, batch=10)
    yield pool
    pool.close()


def balancer_counts(balancer: stack.Service) -> List[int]:
    """How many requests the balancer passed to each upstream so far."""
    return list(stack.get_json(f"{balancer.url}/_balancer/stats")["sent"])


__all__ = ["GatewayPair", "RasaPair", "balancer_counts"]
