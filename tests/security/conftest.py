"""Security tests over the real processes: redis-server, the action server and Rasa (from
.venv-bot, via devkit/stack.py), the gateway as its own process, with LINE and Slack
emulated. The fixtures are the gateway end-to-end ones (tests/gateway_e2e/conftest.py).

Run: .venv-devkit/bin/python -m pytest tests/security -q
"""

from __future__ import annotations

from tests.environments import in_devkit_environment, left_out

if not in_devkit_environment():
    # collected from the bot environment: these tests run in .venv-devkit
    collect_ignore_glob = left_out("tests/security", "make test-security")
else:
    from tests.gateway_e2e.conftest import (  # noqa: F401  (fixtures, shared on purpose)
        action_server,
        gateway,
        line_emulator,
        log_dir,
        orders_url,
        rasa,
        redis_url,
        shop_login,
        slack_emulator,
    )
