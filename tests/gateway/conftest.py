"""Gateway tests run in .venv-devkit (the gateway's packages and the harness; a real redis-server).

Run: .venv-devkit/bin/python -m pytest tests/gateway -q
"""

from __future__ import annotations

from typing import Iterator

import pytest

from devkit import stack  # noqa: E402  (stdlib only, shared with the bot tests)
from tests.support.environments import in_devkit_environment, left_out

# The bot environment (.venv-bot) collects `tests/` too; it has neither slack-bolt nor
# pytest-asyncio, so skip this folder there instead of failing on imports.
if not in_devkit_environment():
    collect_ignore_glob = left_out("tests/gateway", "make test-gateway")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port, without persistence; stopped after the session."""
    # A missing server is a broken install, not a reason to skip (.ci/run installs it).
    try:
        server = stack.start_redis()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield server.url
    server.stop()
