"""The whole system, started from its real processes (devkit/stack.py), for every suite
below: line (LINE conversations through the gateway), tasks, faults, security, scale and
browser take the session's stack fixtures from tests/support/line_stack.py; rasa (Rasa
over REST, in the bot's environment) overrides them with tests/support/rasa_stack.py.
Each suite's own conftest says which environment runs it and skips loudly in the other."""

from tests.support.line_stack import *  # noqa: F403  (the fixtures are found by name)
