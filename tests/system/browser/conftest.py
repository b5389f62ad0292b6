"""Browser tests of the web workbench: Debian's Chromium (headless, driven by Playwright;
no browser is ever downloaded) against the workbench process, which talks to the real
gateway, Rasa, action server and redis-server of tests/support/line_stack.py.

Run: .venv-devkit/bin/python -m pytest tests/system/browser -q
Screenshots of each page land in results/screenshots/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

from tests.support.environments import in_devkit_environment, left_out

ROOT = Path(__file__).resolve().parents[3]

from devkit import stack  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "results" / "screenshots"

if not in_devkit_environment("playwright"):
    # collected from the bot environment: not ours to run there
    collect_ignore_glob = left_out("tests/system/browser", "make test-workbench")
else:
    pass  # the whole stack's fixtures come from tests/system/conftest.py


@pytest.fixture(scope="session")
def start_workbench(tmp_path_factory) -> Iterator[Callable[..., stack.Service]]:
    """`python -m devkit.workbench ARGS` as its own process (stack.start_workbench, as
    `make run` starts it), answering; stopped after the session."""
    started: List[stack.Service] = []
    logs = tmp_path_factory.mktemp("workbench-logs")

    def start(args: List[str], env: Optional[dict] = None) -> stack.Service:
        wb = stack.start_workbench(logs / f"workbench-{len(started)}.log", args, env or {})
        started.append(wb)
        return wb

    yield start
    for wb in started:
        wb.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (never a downloaded browser)")
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a Rasa turn on a busy 2-core machine takes seconds
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser, request) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    if request.node.stash.get(FAILED, False):  # what the page showed when the test failed
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SCREENSHOTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture(scope="session")
def screenshot() -> Callable[[object, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(pg, name: str, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=full_page)
        return path

    return shoot
