"""The customer task suite over the real processes: redis-server, the action server and
Rasa (from .venv-bot, via devkit/stack.py), the gateway as its own process, LINE and Slack
emulated. The fixtures are the gateway end-to-end ones (tests/support/line_stack.py);
the tasks are in tasks.yml, the player and judge in runner.py.

Run: .venv-devkit/bin/python -m pytest tests/system/tasks -q
(the figures are printed at the end and written to results/tasks/report.json)
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.support.environments import in_devkit_environment, left_out

if not in_devkit_environment():
    # collected from the bot environment: these tests run in .venv-devkit
    collect_ignore_glob = left_out("tests/system/tasks", "make test-tasks")
else:
    import redis

    from tests.support.rasa_stack import reset_orders

    pass  # the whole stack's fixtures come from tests/system/conftest.py

    EMMA = "U00000000000000000000000000000002"

    @pytest.fixture(scope="session")
    def task_redis(redis_url):
        client = redis.Redis.from_url(redis_url)
        yield client
        client.close()

    @pytest.fixture
    def fresh_task(request, gateway, rasa, line_emulator, task_redis, orders_url):
        """Before each task: the demo orders recreated (no remedy or claim of an earlier
        task), the customer's Rasa conversation started afresh and the bot owning it again
        (no case left open by an earlier task), and the task's LINE profile."""
        task = request.node.callspec.params["task"]
        user = task["user"]
        reset_orders(orders_url)
        task_redis.delete(f"gw:case:owner:{user}")
        rasa.restart_conversation(user)
        profile = task.get("profile")
        if profile:
            line_emulator.emu.set_profile(user, profile["name"], profile.get("language", "ja"))
        elif user == EMMA:
            line_emulator.emu.set_profile(EMMA, "Emma Brown", "en")
        yield task
        task_redis.delete(f"gw:case:owner:{user}")


_STARTED = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    runner = sys.modules.get("tests.system.tasks.runner")
    if runner is None or not runner.OUTCOMES:
        return
    report = runner.write_report(runner.OUTCOMES, time.monotonic() - _STARTED)
    terminalreporter.section("customer tasks")
    for line in runner.summary_lines(report):
        terminalreporter.write_line(line)
