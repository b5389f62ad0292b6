"""Fixtures for the deployment checks (tests/deploy): the parsed Dockerfile, compose file
and Kubernetes manifests, and the offline check tools.

The tools (hadolint, kubernetes-validate, check-jsonschema, BuildKit's Dockerfile parser)
live in their own environment, var/deploy-tools, installed from deploy/check-tools.lock by
`scripts/check_deploy.sh --tools`; the project environments stay untouched.

Run: .venv-devkit/bin/python -m pytest tests/deploy -q   (or scripts/check_deploy.sh)
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set

import pytest
import yaml

from tests.support.environments import in_devkit_environment, left_out

ROOT = Path(__file__).resolve().parents[2]

from devkit import stack  # noqa: E402  (stdlib only)

# These tests run in .venv-devkit (they start the gateway's Settings); the bot environment
# collects `tests/` too and lacks the devkit packages, so it leaves this folder alone.
if not in_devkit_environment():
    collect_ignore_glob = left_out("tests/deploy", "make check-deploy")

K8S_DIR = ROOT / "deploy" / "k8s"
TOOLS_BIN = ROOT / "var" / "deploy-tools" / "bin"
# The images that run a service, and the Dockerfile target of each.
SERVICE_TARGETS = ("actions", "rasa", "gateway")


@pytest.fixture(scope="session")
def tools() -> Path:
    """The check tools' bin folder (installed on first use; PyPI only, no other download)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "check_deploy.sh"), "--tools"], cwd=ROOT, check=True, timeout=600)
    return TOOLS_BIN


def run_tool(args: List[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# ---- Dockerfile ---------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    commands: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class Dockerfile:
    stages: Dict[str, Stage]

    def chain(self, target: str) -> List[Stage]:
        """The stages an image of `target` is built on, base first (FROM a FROM b ...)."""
        stages: List[Stage] = []
        name: Optional[str] = target
        while name in self.stages:
            stage = self.stages[name]
            stages.insert(0, stage)
            name = stage.base
        return stages

    def commands(self, target: str, cmd: str) -> List[Dict[str, Any]]:
        """Every `cmd` instruction that shapes the image of `target`, in order."""
        return [c for s in self.chain(target) for c in s.commands if c["cmd"] == cmd]

    def last(self, target: str, cmd: str) -> Optional[Dict[str, Any]]:
        found = self.commands(target, cmd)
        return found[-1] if found else None


@pytest.fixture(scope="session")
def dockerfile(tools: Path) -> Dockerfile:
    """The Dockerfile as BuildKit's parser reads it, grouped into stages."""
    out = run_tool(
        [str(tools / "python"), str(ROOT / "tests" / "deploy" / "dockerfile_dump.py"), str(ROOT / "Dockerfile")]
    )
    assert out.returncode == 0, out.stderr
    stages: Dict[str, Stage] = {}
    current: Optional[Stage] = None
    for command in json.loads(out.stdout):
        if command["cmd"] == "FROM":
            value = command["value"]
            name = value[2] if len(value) >= 3 and value[1].upper() == "AS" else f"#{len(stages)}"
            current = stages[name] = Stage(name, value[0])
        elif current is not None:
            current.commands.append(command)
    return Dockerfile(stages)


def dockerignore_patterns() -> List[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _glob_to_regex(pattern: str) -> "re.Pattern[str]":
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored_by_docker(path: str) -> bool:
    """Whether `docker build` leaves `path` (relative to the repository) out of the
    context: the last matching pattern wins, and an excluded folder excludes its contents."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for raw in dockerignore_patterns():
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        regex = _glob_to_regex(pattern.strip("/"))
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


# ---- docker-compose.yml -------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} over a parsed compose tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: "re.Match[str]") -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            empty = current is None or (op == ":-" and current == "")
            return arg if empty else current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise MissingVariable(f"{name}: {arg}")
            return current
        return current or ""

    return _VAR.sub(one, value)


def compose_variables(text: str) -> Set[str]:
    return {m.group(1) for m in _VAR.finditer(text)}


def env_example_names() -> Set[str]:
    """Variables .env.example sets (uncommented assignments)."""
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z_][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


@pytest.fixture(scope="session")
def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


@pytest.fixture(scope="session")
def compose(compose_text: str) -> Dict[str, Any]:
    return yaml.safe_load(compose_text)


def endpoints_variables() -> Set[str]:
    """The ${VAR}s that Rasa substitutes in deploy/endpoints.redis.yml (values, not comments)."""
    found: Set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, str):
            found.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", node))

    walk(yaml.safe_load((ROOT / "deploy" / "endpoints.redis.yml").read_text()))
    return found


# ---- Kubernetes ---------------------------------------------------------------------------


@dataclass
class Manifest:
    path: Path
    doc: Dict[str, Any]

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]


def k8s_manifest_files() -> List[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="session")
def manifests() -> List[Manifest]:
    """Every Kubernetes object of deploy/k8s, the Secret template included."""
    found = []
    for path in k8s_manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append(Manifest(path, doc))
    return found


def find(manifests: List[Manifest], kind: str, name: str) -> Dict[str, Any]:
    matches = [m.doc for m in manifests if m.kind == kind and m.name == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[stack.Service]:
    """A private redis-server on a free loopback port (devkit/stack.py)."""
    server = stack.start_redis()
    try:
        yield server
    finally:
        server.stop()
