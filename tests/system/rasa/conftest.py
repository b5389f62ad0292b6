"""Rasa over its REST channel with the real action server (no gateway): the fixtures are
tests/support/rasa_stack.py's. Run: .venv-bot/bin/python -m pytest tests/system/rasa -q"""

from tests.support.environments import in_bot_environment, left_out

if in_bot_environment():
    from tests.support.rasa_stack import *  # noqa: F403  (the fixtures are found by name)
else:
    # collected from the devkit environment: these tests run in .venv-bot
    collect_ignore_glob = left_out("tests/system/rasa", "make test-e2e")
