"""The house: four packages that import each other only through `contracts`, and a gateway
image whose lock holds its runtime and nothing of the harness."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "gateway", "devkit", "contracts")
HARNESS = ("tests", "scripts", "bench")


def imports_of(package: str) -> Iterator[Tuple[Path, int, str]]:
    """(file, line, top-level module) for every absolute import under `package`."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, node.lineno, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.lineno, node.module.split(".")[0]


def crossings(package: str, allowed: Set[str]) -> list:
    ours = set(PACKAGES) | set(HARNESS)
    return [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p, line, mod in imports_of(package)
        if mod in ours and mod not in allowed
    ]


@pytest.mark.parametrize("package", ["bot", "gateway", "devkit"])
def test_each_package_imports_only_itself_and_the_contracts(package: str) -> None:
    # the harness reads the product over HTTP (the ops APIs) and starts it as processes
    assert crossings(package, {package, "contracts"}) == []


def test_the_contracts_are_standard_library_only() -> None:
    outside = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p, line, mod in imports_of("contracts")
        if mod not in sys.stdlib_module_names and mod != "contracts"
    ]
    assert outside == []


def test_the_emulators_stand_for_the_platforms_without_the_gateways_code() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p, line, mod in imports_of("devkit")
        if "emulators" in p.parts and mod in ("gateway", "bot")
    ]
    assert found == []


def test_the_gateway_lock_holds_no_test_emulator_or_browser_package() -> None:
    pins = set(re.findall(r"^([A-Za-z0-9_.-]+)==", (ROOT / "requirements" / "gateway.lock").read_text(), re.M))
    harness = {
        "pytest",
        "pytest-asyncio",
        "pytest-timeout",
        "hypothesis",
        "playwright",
        "line-bot-sdk",
        "sqlalchemy",
        "psycopg2-binary",
        "ruff",
        "requests",
    }
    assert not pins & harness, sorted(pins & harness)


def test_every_gateway_module_imports_in_the_gateways_runtime_environment() -> None:
    python = ROOT / ".venv-gateway" / "bin" / "python"
    if not python.exists():
        pytest.fail("no .venv-gateway: run `make install`")
    script = (
        "import importlib, pkgutil, gateway\n"
        "for m in pkgutil.walk_packages(gateway.__path__, 'gateway.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    out = subprocess.run([str(python), "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
