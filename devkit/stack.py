"""Starting the bot's real processes (action server, Rasa server) on free local ports.

Used by the end-to-end tests and the benchmarks, so both measure exactly what `make serve`
runs. Each process logs to a file; a process that fails to come up raises with the tail
of its log.

Each action server gets its own shared secret (ACTION_SERVER_TOKEN, bot/server/actions.py);
a Rasa server started with that action server's URL is given the same secret, so Rasa's
calls pass and nothing else's do. An action server started again on the same URL keeps
its secret, so a Rasa server already pointing there keeps working.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
BOT_BIN = ROOT / ".venv-bot" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, process: Optional[subprocess.Popen] = None, log: Optional[Path] = None) -> None:
    """Wait until `url` answers 200, or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s\n{tail}")


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn(name: str, args: List[str], env: Dict[str, str], log_dir: Path) -> tuple:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    handle = open(log, "ab")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return process, log


def start_redis(redis_server: str = "redis-server") -> Service:
    """A private redis-server on a free loopback port, without persistence (tests, benches)."""
    binary = shutil.which(redis_server) or redis_server
    if not os.path.exists(binary):
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return Service("redis", process, f"redis://127.0.0.1:{port}/0", Path(workdir))


# action server URL -> its shared secret (one per started action server, i.e. per stack)
_action_tokens: Dict[str, str] = {}


@dataclass
class ActionServer(Service):
    token: str = field(default="")

    def headers(self) -> Dict[str, str]:
        """What Rasa sends with every action call (endpoints.yml `action_endpoint.headers`)."""
        return {"Authorization": f"Bearer {self.token}"}


def action_token_for(action_url: str) -> str:
    """The shared secret of the action server at `action_url` (a fresh one for a URL this
    process did not start: Rasa still starts, and that server would refuse it)."""
    return _action_tokens.setdefault(action_url.rstrip("/"), secrets.token_urlsafe(32))


def start_action_server(log_dir: Path, env: Optional[Dict[str, str]] = None, port: Optional[int] = None,
                        token: Optional[str] = None) -> ActionServer:
    """The project's action server (`python -m bot.server.actions`, as make run and the image
    start it) on loopback, requiring its own shared secret."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    token = token or (env or {}).get("ACTION_SERVER_TOKEN") or action_token_for(url)
    _action_tokens[url] = token
    full_env = {**os.environ, **(env or {}), "ACTION_SERVER_TOKEN": token,
                "ACTION_INTERFACE": "127.0.0.1", "ACTION_PORT": str(port)}
    process, log = _spawn(
        "actions",
        [str(BOT_BIN / "python"), "-m", "bot.server.actions", "--actions", "bot.actions", "--port", str(port)],
        full_env,
        log_dir,
    )
    wait_http(f"{url}/health", 90, process, log)
    return ActionServer("actions", process, url, log, token=token)


@dataclass
class RasaServer(Service):
    token: str = field(default="")

    def api(self, path: str) -> str:
        """A URL of Rasa's HTTP API with the token (keep such URLs out of logs)."""
        joiner = "&" if "?" in path else "?"
        return f"{self.url}{path}{joiner}token={self.token}"


def start_rasa(model: str, action_url: str, log_dir: Path, port: Optional[int] = None,
               env: Optional[Dict[str, str]] = None, token: Optional[str] = None,
               endpoints: str = "endpoints.yml", action_token: Optional[str] = None) -> RasaServer:
    """Rasa with its HTTP API on, protected by a token, bound to loopback only.
    Give `port` and `token` to start it again where clients already point; `endpoints`
    chooses the tracker/lock stores (scripts/endpoints.py writes Redis or SQL variants;
    the default endpoints.yml keeps conversations in memory, enough for most tests).
    Rasa calls the action server at `action_url` with that server's shared secret
    (`action_token`, by default the one start_action_server gave it)."""
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    action_token = action_token or (env or {}).get("ACTION_SERVER_TOKEN") or action_token_for(action_url)
    full_env = {**os.environ, **(env or {}), "ACTION_SERVER_URL": f"{action_url}/webhook",
                "ACTION_SERVER_TOKEN": action_token}
    process, log = _spawn(
        "rasa",
        [
            # `rasa run` with the project's speed-up (bot/server), as make run and the image do.
            # "--auth-token=" form: a token_urlsafe token may start with "-", which argparse
            # would read as an option when given as a separate argument.
            str(BOT_BIN / "python"), "-m", "bot.server", "run", "--enable-api", f"--auth-token={token}",
            "--interface", "127.0.0.1", "--port", str(port), "--model", model,
            "--endpoints", endpoints, "--credentials", "credentials.yml",
        ],
        full_env,
        log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/", 240, process, log)
    server = RasaServer("rasa", process, url, log, token=token)
    wait_http(server.api("/status"), 240, process, log)
    return server


def post_json(url: str, body: Any, timeout: float = 60, headers: Optional[Dict[str, str]] = None) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def get_json(url: str, timeout: float = 30) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def trained_model() -> str:
    """The up-to-date model, training it first if its inputs changed."""
    out = subprocess.run([str(ROOT / "scripts" / "train.sh")], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True)
    return str(ROOT / out.stdout.strip().splitlines()[-1])
