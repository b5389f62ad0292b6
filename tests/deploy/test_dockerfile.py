"""The Dockerfile, read by hadolint and by BuildKit's own parser (no Docker engine here):
one target per service, non-root, pinned packages from the lock files, health checks on
the services' real health endpoints, no secrets, and a model trained exactly like
scripts/train.sh does it."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from tests.deploy.conftest import ROOT, SERVICE_TARGETS, Dockerfile, dockerignore_patterns, ignored_by_docker, run_tool

RUNNABLE_TARGETS = SERVICE_TARGETS + ("trainer",)


def test_hadolint_finds_nothing(tools: Path) -> None:
    out = run_tool([str(tools / "hadolint"), "--failure-threshold", "info", "Dockerfile"])
    assert out.returncode == 0, f"hadolint:\n{out.stdout}{out.stderr}"


def test_a_target_per_service_on_python_slim(dockerfile: Dockerfile) -> None:
    """The bot's images on Python 3.10 (Rasa 3.6 pins it), the gateway on a supported 3.12+."""
    for target in RUNNABLE_TARGETS:
        assert target in dockerfile.stages, f"no `{target}` target"
        base = dockerfile.chain(target)[0].base
        want = "${GATEWAY_PYTHON_IMAGE}" if target == "gateway" else "${PYTHON_IMAGE}"
        assert base == want, f"{target} does not start from {want}"
    top = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.10-slim-(bookworm|trixie)$", top, re.M), (
        "the bot's base must be Python 3.10 slim Debian"
    )
    assert re.search(r"^ARG GATEWAY_PYTHON_IMAGE=python:3\.1[2-4]-slim-(bookworm|trixie)$", top, re.M), (
        "the gateway's base must be a supported Python (3.12 or newer) slim Debian"
    )


@pytest.mark.parametrize("target", RUNNABLE_TARGETS)
def test_runs_as_a_non_root_user(dockerfile: Dockerfile, target: str) -> None:
    user = dockerfile.last(target, "USER")
    assert user is not None, f"{target} would run as root"
    uid = user["value"][0].split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can verify it; and not root.
    assert uid.isdigit() and int(uid) != 0, f"{target} runs as {uid!r}"
    created = " ".join(" ".join(c["value"]) for c in dockerfile.commands(target, "RUN"))
    assert f"--uid {uid}" in created, f"uid {uid} is never created in {target}'s image"


def test_nothing_is_fetched_by_url(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages.values():
        for command in stage.commands:
            assert command["cmd"] != "ADD", f"ADD in stage {stage.name} (line {command['line']})"
            if command["cmd"] == "RUN":
                text = " ".join(command["value"])
                assert not re.search(r"\b(curl|wget)\b|https?://", text), (
                    f"download in stage {stage.name} (line {command['line']})"
                )


@pytest.mark.parametrize(
    "target,lock,venv",
    [
        ("actions", "requirements/bot.lock", "/app/.venv-bot"),
        ("rasa", "requirements/bot.lock", "/app/.venv-bot"),
        ("trainer", "requirements/bot.lock", "/app/.venv-bot"),
        ("gateway", "requirements/gateway.lock", "/app/.venv-gateway"),
    ],
)
def test_packages_come_from_the_lock_file(dockerfile: Dockerfile, target: str, lock: str, venv: str) -> None:
    """The environment is synced from the lock (exact pins) in a build stage and copied in."""
    env_stage = {"requirements/bot.lock": "bot-env", "requirements/gateway.lock": "gateway-env"}[lock]
    copies = [c["value"] for c in dockerfile.commands(env_stage, "COPY")]
    assert [lock, lock] in copies, f"{env_stage} does not copy {lock}"
    runs = " ".join(" ".join(c["value"]) for c in dockerfile.commands(env_stage, "RUN"))
    assert f"uv pip sync --python {venv}/bin/python {lock}" in runs
    chain = [s.name for s in dockerfile.chain(target)]
    copied_env = [
        c for c in dockerfile.commands(target, "COPY") if f"--from={env_stage}" in c["flags"] and c["value"][0] == venv
    ]
    assert env_stage in chain or copied_env, f"{target} does not get {env_stage}'s packages"
    # uv itself is pinned.
    assert any(re.search(r'"uv==\$\{UV_VERSION\}"', " ".join(c["value"])) for c in dockerfile.commands("uv", "RUN"))
    assert re.search(r"^ARG UV_VERSION=\d+\.\d+\.\d+$", (ROOT / "Dockerfile").read_text(), re.M)


def test_the_japanese_tokenizer_has_mecab_and_its_dictionary(dockerfile: Dockerfile) -> None:
    """MeCab comes inside the fugashi wheel and UniDic as the unidic-lite package, both
    pinned in bot.lock; the build fails unless a Tagger loads the dictionary."""
    lock = (ROOT / "requirements" / "bot.lock").read_text()
    assert re.search(r"^fugashi==", lock, re.M) and re.search(r"^unidic-lite==", lock, re.M)
    runs = " ".join(" ".join(c["value"]) for c in dockerfile.commands("bot-env", "RUN"))
    assert "import fugashi, unidic_lite; fugashi.Tagger()" in runs


@pytest.mark.parametrize(
    "target,url",
    [
        ("actions", "http://127.0.0.1:5055/health"),
        ("rasa", "http://127.0.0.1:5005/"),
        ("gateway", "http://127.0.0.1:8080/healthz"),
    ],
)
def test_health_check_on_the_service_endpoint(dockerfile: Dockerfile, target: str, url: str) -> None:
    check = dockerfile.last(target, "HEALTHCHECK")
    assert check is not None and check["value"][0] == "CMD"
    assert check["value"][1:] == ["python", "/app/deploy/healthcheck.py", url]
    port = url.split(":")[2].split("/")[0]
    assert [port] in [c["value"] for c in dockerfile.commands(target, "EXPOSE")]
    copied = [c["value"] for c in dockerfile.commands(target, "COPY")]
    assert ["deploy/healthcheck.py", "deploy/healthcheck.py"] in copied


def test_service_commands(dockerfile: Dockerfile) -> None:
    # The project's action server (bot/server/actions.py: the shared secret required), not
    # `rasa run actions`, which checks nothing.
    assert dockerfile.last("actions", "CMD")["value"] == [
        "python",
        "-m",
        "bot.server.actions",
        "--actions",
        "bot.actions",
        "--interface",
        "0.0.0.0",
        "--port",
        "5055",
    ]
    assert dockerfile.last("gateway", "CMD")["value"] == ["python", "-m", "gateway"]
    assert dockerfile.last("rasa", "ENTRYPOINT")["value"] == ["/app/deploy/rasa-entrypoint.sh"]


def test_no_secret_is_baked_in(dockerfile: Dockerfile) -> None:
    secretish = re.compile(r"TOKEN|SECRET|PASSWORD|DSN|API_KEY|PRIVATE", re.I)
    for stage in dockerfile.stages.values():
        for command in stage.commands:
            if command["cmd"] in ("ENV", "ARG", "LABEL"):
                keys = command["value"][::2] if command["cmd"] != "ARG" else [v.split("=")[0] for v in command["value"]]
                for key in keys:
                    assert not secretish.search(key), f"{command['cmd']} {key} in {stage.name}"
    for name in (".env", "var", "models", ".venv-gateway", ".venv-bot", ".git", "results"):
        assert ignored_by_docker(name), f".dockerignore lets {name} into the build context"


def test_everything_copied_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    """Each COPY source exists and is not left out by .dockerignore (a build would fail)."""
    for stage in dockerfile.stages.values():
        for command in stage.commands:
            if command["cmd"] != "COPY" or any(f.startswith("--from=") for f in command["flags"]):
                continue
            for source in command["value"][:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not ignored_by_docker(source), f"COPY {source}: excluded by .dockerignore"
    assert "**/__pycache__" in dockerignore_patterns()


def test_trainer_hashes_and_trains_exactly_like_train_sh(dockerfile: Dockerfile) -> None:
    """The image's model gets the same name as a developer's: the trainer copies every
    input scripts/train.sh hashes, and runs train.sh itself with the venv where it looks."""
    script = (ROOT / "scripts" / "train.sh").read_text()
    inputs_line = next(line for line in script.splitlines() if line.startswith("inputs="))
    listed = re.findall(r"ls ([^;]+);", inputs_line)[0].split()
    found = re.findall(r"find ([^\\(]+)-type", inputs_line)[0].split()
    copied = [src for c in dockerfile.commands("trainer", "COPY") if not c["flags"] for src in c["value"][:-1]]
    for needed in listed + found:
        assert any(needed == src.rstrip("/") or needed.startswith(src.rstrip("/") + "/") for src in copied), (
            f"trainer does not copy {needed} (train.sh hashes it)"
        )
    assert ".venv-bot/bin/rasa train" in script
    runs = " ".join(" ".join(c["value"]) for c in dockerfile.commands("trainer", "RUN"))
    assert "uv venv --python /usr/local/bin/python3.10 /app/.venv-bot" in runs
    assert "model=$(./scripts/train.sh)" in runs
    # The rasa image takes the model from the `model` stage (replaceable by --build-context).
    assert any(
        c["flags"] == ["--from=model"] and c["value"] == ["/", "/app/models/"]
        for c in dockerfile.commands("rasa", "COPY")
    )
    assert dockerfile.stages["model"].base == "scratch"


# ---- the scripts the images run -------------------------------------------------------------


@pytest.fixture()
def fake_rasa(tmp_path: Path) -> Tuple[Path, Path]:
    """A stand-in `python` on PATH that records its arguments (Rasa is not started; the
    entrypoint runs `python -m bot.server run ...`, i.e. `rasa run` with bot/server's speed-up)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args"
    fake = bin_dir / "python"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n")
    fake.chmod(0o755)
    return bin_dir, record


def _entrypoint(
    bin_dir: Path, token: str, action_token: str = "sample-action-server-token"
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RASA_TOKEN": token,
        "ACTION_SERVER_TOKEN": action_token,
    }
    env.pop("RASA_ENDPOINTS", None)
    return subprocess.run(
        ["sh", str(ROOT / "deploy" / "rasa-entrypoint.sh")], env=env, capture_output=True, text=True, timeout=30
    )


def test_rasa_refuses_to_start_without_a_token(fake_rasa: Tuple[Path, Path]) -> None:
    bin_dir, record = fake_rasa
    out = _entrypoint(bin_dir, "")
    assert out.returncode != 0
    assert "RASA_TOKEN" in out.stderr
    assert not record.exists(), "Rasa was started without a token"


def test_rasa_refuses_to_start_without_the_action_server_token(fake_rasa: Tuple[Path, Path]) -> None:
    bin_dir, record = fake_rasa
    out = _entrypoint(bin_dir, "a-rasa-token", action_token="")
    assert out.returncode != 0
    assert "ACTION_SERVER_TOKEN" in out.stderr
    assert not record.exists(), "Rasa was started without the action server's secret"


def test_rasa_starts_with_its_api_behind_the_token(fake_rasa: Tuple[Path, Path]) -> None:
    bin_dir, record = fake_rasa
    out = _entrypoint(bin_dir, "-t0ken-from-env")  # token_urlsafe tokens can start with "-"
    assert out.returncode == 0, out.stderr
    args = record.read_text().split("\n")
    assert args[:3] == ["-m", "bot.server", "run"]
    pairs = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    # one argument, so that a token starting with "-" is not read as an option
    assert "--auth-token=-t0ken-from-env" in args
    assert "--enable-api" in args
    assert pairs["--interface"] == "0.0.0.0" and pairs["--port"] == "5005"
    assert pairs["--endpoints"] == "/app/deploy/endpoints.redis.yml"
    assert pairs["--model"] == "/app/models"
    # No remote model source can be configured (CVE-2024-49375's class).
    assert "--remote-storage" not in args and "--model-server" not in args


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def status_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("path,healthy", [("/ok", True), ("/down", False)])
def test_healthcheck_script_reports_the_status(status_server: str, path: str, healthy: bool) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "healthcheck.py"), status_server + path], capture_output=True, timeout=30
    )
    assert (out.returncode == 0) is healthy


def test_healthcheck_script_fails_when_nothing_listens() -> None:
    from devkit.stack import free_port

    out = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "healthcheck.py"), f"http://127.0.0.1:{free_port()}/health"],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 1
