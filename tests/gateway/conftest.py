"""Gateway tests run in .venv-gateway (line-bot-sdk, aiohttp>=3.10, redis>=5).

Run: .venv-gateway/bin/python -m pytest tests/gateway -q
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The bot environment (.venv-bot) collects `tests/` too; it has neither line-bot-sdk nor
# pytest-asyncio, so skip this folder there instead of failing on imports.
from scripts.stack import free_port  # noqa: E402  (stdlib only, shared with the bot tests)

if importlib.util.find_spec("linebot") is None or importlib.util.find_spec("pytest_asyncio") is None:
    collect_ignore_glob = ["test_*.py"]


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port, without persistence; stopped after the session."""
    if not os.path.exists(REDIS_SERVER):
        # A missing server is a broken install, not a reason to skip (.ci/run installs it).
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="gw-redis-")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
