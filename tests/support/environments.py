"""Which test environment is running, for the folders that belong to only one.

The tests run in two virtual environments: `.venv-bot` (Rasa 3.6 on Python 3.10, which
pins old aiohttp) and `.venv-devkit` (the gateway's packages plus the harness: emulators,
pytest-asyncio, hypothesis, playwright). Both collect `tests/`, so each devkit-side
folder's conftest asks `in_devkit_environment()` and, in the other environment, skips its
tests with a message naming the command to run them (a plain `pytest` in the wrong
environment says so instead of quietly running half). `.venv-gateway` is the gateway's
runtime alone: the tests start the gateway process from it, they never run in it.
"""

from __future__ import annotations

import importlib.util
from typing import List

DEVKIT_MODULES = ("slack_bolt", "pytest_asyncio", "hypothesis")
BOT_MODULES = ("rasa", "rasa_sdk")

# Folders this run left out because they belong to the other environment; tests/conftest.py
# prints them at the end of the run, with the command that runs them.
LEFT_OUT: List[str] = []


def in_bot_environment() -> bool:
    """True in .venv-bot (Rasa and rasa-sdk importable)."""
    return all(importlib.util.find_spec(m) is not None for m in BOT_MODULES)


def left_out(folder: str, command: str) -> List[str]:
    """Records that `folder` is not run here and returns the glob that leaves it out."""
    LEFT_OUT.append(f"{folder}: not run in this environment; run it with `{command}`")
    return ["test_*.py"]


def in_devkit_environment(*extra_modules: str) -> bool:
    """True in .venv-devkit (and when `extra_modules`, e.g. playwright, are there too)."""
    return all(importlib.util.find_spec(m) is not None for m in (*DEVKIT_MODULES, *extra_modules))
