"""What every test shares: one approval key for the processes a test starts, and the loud
list of folders the current environment did not run. (`tests.*` and `scripts.*` import
from the root: pytest.ini's `pythonpath`; the four packages are installed editable.)"""

import os
import secrets

# Every process a test starts (gateway, action server) inherits this environment: the key
# the gateway signs agents' approvals with and the action server checks them with.
os.environ.setdefault("AGENT_APPROVAL_KEY", secrets.token_urlsafe(32))


def pytest_terminal_summary(terminalreporter) -> None:
    """Says loudly which folders this environment did not run (a plain `pytest` runs only
    the half of `tests/` that belongs to the environment it was started from)."""
    from tests.support.environments import LEFT_OUT

    if LEFT_OUT:
        terminalreporter.write_sep("!", "folders not run in this environment", yellow=True)
        for line in dict.fromkeys(LEFT_OUT):
            terminalreporter.write_line(line, yellow=True)
