"""Which test environment is running, for the folders that belong to only one.

The tests run in two virtual environments: `.venv-bot` (Rasa, which pins old aiohttp and
has no LINE SDK) and `.venv-gateway` (line-bot-sdk, slack-bolt, pytest-asyncio). Both
collect `tests/`, so each gateway-side folder's conftest asks `in_gateway_environment()`
and tells pytest to ignore its test files in the other environment instead of failing
on imports. (`tests/conftest.py` makes the repository importable for all of them.)
"""
from __future__ import annotations

import importlib.util

GATEWAY_MODULES = ("linebot", "pytest_asyncio")


def in_gateway_environment(*extra_modules: str) -> bool:
    """True in .venv-gateway (and when `extra_modules`, e.g. playwright, are there too)."""
    return all(importlib.util.find_spec(m) is not None for m in (*GATEWAY_MODULES, *extra_modules))
