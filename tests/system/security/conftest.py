"""Security tests over the real processes: redis-server, the action server and Rasa (from
.venv-bot, via devkit/stack.py), the gateway as its own process, with LINE and Slack
emulated. The fixtures are the gateway end-to-end ones (tests/support/line_stack.py).

Run: .venv-devkit/bin/python -m pytest tests/system/security -q
"""

from __future__ import annotations

from tests.support.environments import in_devkit_environment, left_out

if not in_devkit_environment():
    # collected from the bot environment: these tests run in .venv-devkit
    collect_ignore_glob = left_out("tests/system/security", "make test-security")
else:
    pass  # the whole stack's fixtures come from tests/system/conftest.py
