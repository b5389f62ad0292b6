"""LINE conversations through the real gateway, Rasa, action server, redis-server and the
LINE and Slack emulators; the fixtures are tests/support/line_stack.py's (via
tests/system/conftest.py). Run: .venv-devkit/bin/python -m pytest tests/system/line -q"""

from tests.support.environments import in_devkit_environment, left_out

if not in_devkit_environment():
    # collected from the bot environment: not ours to run there
    collect_ignore_glob = left_out("tests/system/line", "make test-gateway-e2e")
