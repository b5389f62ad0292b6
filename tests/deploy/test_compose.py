"""docker-compose.yml: valid against the Compose Specification, the five services with
health checks and healthy-dependency ordering, Rasa unreachable from outside, secrets only
from .env, and the environment each service gets is what its code needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.deploy.conftest import (
    ROOT,
    SERVICE_TARGETS,
    Dockerfile,
    MissingVariable,
    compose_variables,
    endpoints_variables,
    env_example_names,
    interpolate,
    run_tool,
)

# Variables the compose file reads that .env.example does not have (documented in
# docs/deploy.md; .env.example is not ours to change).
COMPOSE_ONLY_VARIABLES = {"POSTGRES_PASSWORD", "IMAGE_TAG", "GATEWAY_BIND", "SENTRY_ENVIRONMENT"}
# What an operator's .env holds, for the tests (never real values).
SAMPLE_ENV = {
    "RASA_TOKEN": "sample-rasa-token",
    "ACTION_SERVER_TOKEN": "sample-action-server-token",
    "AGENT_APPROVAL_KEY": "sample-agent-approval-key",
    "POSTGRES_PASSWORD": "samplepassword",
    "LINE_CHANNEL_SECRET": "sample-line-secret",
    "LINE_CHANNEL_ACCESS_TOKEN": "sample-line-token",
    "PORT": "8080",
}


@pytest.fixture(scope="module")
def resolved(compose: Dict[str, Any]) -> Dict[str, Any]:
    return interpolate(compose, SAMPLE_ENV)


def test_valid_against_the_compose_specification(tools: Path) -> None:
    out = run_tool([str(tools / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"])
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_five_services_each_with_a_health_check(compose: Dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "actions", "rasa", "gateway"}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"


def test_our_services_build_their_dockerfile_target(compose: Dict[str, Any], dockerfile: Dockerfile) -> None:
    for name in SERVICE_TARGETS:
        service = compose["services"][name]
        assert service["build"] == {"context": ".", "target": name}
        assert name in dockerfile.stages
        assert service["image"].startswith(f"order-support-{name}:")
        # The compose health check is the image's own.
        image_check = dockerfile.last(name, "HEALTHCHECK")["value"]
        assert service["healthcheck"]["test"] == image_check
        assert service.get("cap_drop") == ["ALL"]
        assert "no-new-privileges:true" in service.get("security_opt", [])


@pytest.mark.parametrize(
    "service,needs",
    [
        ("actions", {"postgres"}),
        ("rasa", {"redis", "actions"}),
        ("gateway", {"redis", "rasa", "actions"}),
    ],
)
def test_started_only_when_what_it_needs_is_healthy(compose: Dict[str, Any], service: str, needs: set) -> None:
    depends = compose["services"][service]["depends_on"]
    assert set(depends) == needs
    for dependency, rule in depends.items():
        assert rule == {"condition": "service_healthy"}, f"{service} -> {dependency}"
        assert "healthcheck" in compose["services"][dependency]


def test_only_the_gateway_is_published(compose: Dict[str, Any], resolved: Dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name != "gateway":
            assert "ports" not in service, f"{name} publishes a port"
    assert resolved["services"]["gateway"]["ports"] == ["127.0.0.1:8080:8080"]
    # Rasa, the action server, Redis and PostgreSQL sit on a network with no way out.
    assert compose["networks"]["backend"] == {"internal": True}
    for name in ("rasa", "actions", "redis", "postgres"):
        assert compose["services"][name]["networks"] == ["backend"], name
    assert compose["services"]["rasa"]["expose"] == ["5005"]


def test_variables_are_from_env_example_or_documented(compose_text: str) -> None:
    used = compose_variables(compose_text)
    unknown = used - env_example_names() - COMPOSE_ONLY_VARIABLES
    assert not unknown, f"not in .env.example and not documented: {sorted(unknown)}"
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name in COMPOSE_ONLY_VARIABLES & used:
        assert f"`{name}`" in docs, f"{name} is not documented in docs/deploy.md"


@pytest.mark.parametrize(
    "missing",
    [
        "RASA_TOKEN",
        "ACTION_SERVER_TOKEN",
        "AGENT_APPROVAL_KEY",
        "POSTGRES_PASSWORD",
        "LINE_CHANNEL_SECRET",
        "LINE_CHANNEL_ACCESS_TOKEN",
    ],
)
def test_compose_refuses_to_run_without_a_required_secret(compose: Dict[str, Any], missing: str) -> None:
    env = {**SAMPLE_ENV, missing: ""}
    with pytest.raises(MissingVariable, match=missing):
        interpolate(compose, env)


def test_secrets_only_come_from_env(compose: Dict[str, Any]) -> None:
    secretish = re.compile(r"TOKEN|SECRET|PASSWORD|DSN", re.I)
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secretish.search(key) and key != "RASA_REDIS_PASSWORD":
                assert re.fullmatch(r"\$\{[A-Z_]+(:[-?][^}]*)?\}", str(value)), f"{name}.{key} is not taken from .env"
    url = compose["services"]["actions"]["environment"]["ORDERS_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD" in url


def test_gateway_settings_from_its_compose_environment(resolved: Dict[str, Any]) -> None:
    """The gateway, started with exactly this environment, reaches Rasa, the action server's
    health check and Redis at the compose addresses, with the Rasa token from .env."""
    from gateway.config import Settings

    env = {k: str(v) for k, v in resolved["services"]["gateway"]["environment"].items()}
    settings = Settings.from_env(env)
    assert settings.rasa_url == "http://rasa:5005"
    assert settings.rasa_token == SAMPLE_ENV["RASA_TOKEN"]
    assert settings.action_server_health_url == "http://actions:5055/health"
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.port == 8080
    assert settings.slack_bot_token is None and settings.sentry_dsn is None
    # The addresses it uses are the ones the other services answer on.
    actions_check = resolved["services"]["actions"]["healthcheck"]["test"][-1]
    assert actions_check.endswith(":5055/health")
    assert resolved["services"]["rasa"]["expose"] == ["5005"]
    assert resolved["services"]["gateway"]["ports"][0].endswith(":8080")


def test_rasa_gets_every_variable_its_endpoints_file_reads(resolved: Dict[str, Any]) -> None:
    """Rasa substitutes ${VAR} in endpoints files without defaults: an unset one stops it."""
    needed = endpoints_variables()
    assert needed == {
        "ACTION_SERVER_URL",
        "ACTION_SERVER_TOKEN",
        "RASA_REDIS_HOST",
        "RASA_REDIS_PORT",
        "RASA_REDIS_PASSWORD",
    }
    env = resolved["services"]["rasa"]["environment"]
    assert needed <= set(env), f"missing for Rasa: {sorted(needed - set(env))}"
    assert env["ACTION_SERVER_URL"] == "http://actions:5055/webhook"
    assert env["RASA_REDIS_HOST"] == "redis"
    assert env["RASA_TOKEN"] == SAMPLE_ENV["RASA_TOKEN"]
    # Rasa sends the very secret the action server checks.
    actions = resolved["services"]["actions"]["environment"]
    assert env["ACTION_SERVER_TOKEN"] == actions["ACTION_SERVER_TOKEN"] == SAMPLE_ENV["ACTION_SERVER_TOKEN"]
    assert "ports" not in resolved["services"]["actions"]


def test_state_survives_container_restarts(compose: Dict[str, Any]) -> None:
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]
    assert "--appendonly" in compose["services"]["redis"]["command"]
    assert "orders-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "attachments:/app/var/attachments" in compose["services"]["gateway"]["volumes"]
