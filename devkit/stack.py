"""The one place that starts the project's processes: `make run` / `make serve`
(scripts/run.sh -> devkit/run.py), every test and every benchmark start them from here,
so what runs on a developer's machine is exactly what the tests proved.

One function or class per service, each process logging to its own file (a process that
fails to come up raises with the tail of its log):

    redis-server      RedisServer (restartable; `persistent` = AOF fsynced on every write),
                      start_redis() (a throwaway one, started)
    action server     start_action_server() -> ActionServer; RestartableActionServer
                      (`.venv-bot/bin/python -m bot.server.actions`)
    Rasa              start_rasa() -> RasaServer; RestartableRasa (fixed port and token);
                      rasa_shell_command() (`make shell`); write_endpoints_file()
                      (`.venv-bot/bin/python -m bot.server run`, Rasa with the project's
                      speed-up; scripts/endpoints.py chooses the stores)
    the gateway       gateway_env(), GatewayProcess, start_gateway()
                      (`.venv-gateway/bin/python -m gateway`: its runtime environment alone)
    LINE / Slack      EmulatorThread, start_line_emulator(), start_slack_emulator() (in this
    emulators         process, on a thread: tests read their records directly);
                      start_line_emulator_process(), start_slack_emulator_process() and
                      terminal_chat_command() (`.venv-devkit/bin/python -m devkit.emulators...`)
    the balancer      start_balancer() (devkit/balancer.py, round robin)
    the workbench     start_workbench() (`.venv-devkit/bin/python -m devkit.workbench`)
    the shop's login  start_shop_login() (`.venv-devkit/bin/python -m devkit.shop_login`: LINE's
    page              account link; it and the action server share ACCOUNT_LINK_KEY,
                      new_account_link_key() makes one)
    several at once   Stack (stops what it holds in reverse order)

No PostgreSQL is started: the orders database of the tests, the benches and the demo is a
SQLite file (ORDERS_DATABASE_URL); a deployment's PostgreSQL is its own (docker-compose.yml).

The ops API (read-only reports for the workbench: the action server's /ops/*, the gateway's
/ops/cases) takes OPS_API_TOKEN: ops_token() is this environment's, or one made for this
process, and every action server, gateway and workbench started here gets it unless `env`
names another (an empty one turns the ops API off).

Each action server gets its own shared secret (ACTION_SERVER_TOKEN, bot/server/actions.py);
a Rasa server started with that action server's URL is given the same secret, so Rasa's
calls pass and nothing else's do. An action server started again on the same URL keeps
its secret, so a Rasa server already pointing there keeps working.

This module is imported from the bot's environment (.venv-bot: tests/system/rasa, scripts/) and
from the devkit's (.venv-devkit: the gateway tests, the benches, devkit/run.py): it uses
the standard library only at import time; aiohttp and the emulators are imported inside
the functions that need them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parent.parent
BOT_BIN = ROOT / ".venv-bot" / "bin"
BOT_PYTHON = BOT_BIN / "python"
# The gateway runs from its runtime environment only (what its image holds); the
# emulators, the balancer and the workbench from the devkit's.
GATEWAY_PYTHON = ROOT / ".venv-gateway" / "bin" / "python"
DEVKIT_PYTHON = ROOT / ".venv-devkit" / "bin" / "python"
LOOPBACK = "127.0.0.1"

Env = Mapping[str, str]


# --- small helpers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _tail(log: Optional[Path], n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:] if log and log.is_file() else ""


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
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s\n{_tail(log)}")


def post_json(url: str, body: Any, timeout: float = 60, headers: Optional[Dict[str, str]] = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def get_json(url: str, timeout: float = 30) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def trained_model() -> str:
    """The up-to-date model, training it first if its inputs changed (scripts/train.sh)."""
    out = subprocess.run([str(ROOT / "scripts" / "train.sh")], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return str(ROOT / out.stdout.strip().splitlines()[-1])


def _stop_process(process: Optional[subprocess.Popen], kill: bool = False, timeout: float = 15) -> None:
    """SIGTERM (or SIGKILL), then SIGKILL if it is still there after `timeout` seconds."""
    if process is None or process.poll() is not None:
        if process is not None:
            process.wait()
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# --- a started process --------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        _stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does."""
        _stop_process(self.process, kill=True)

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def spawn(args: Sequence[Union[str, Path]], env: Optional[Env], log: Path) -> subprocess.Popen:
    """Starts `args` in the project folder, stdout and stderr appended to `log`, stdin empty
    (as a script's background job). `env` is the whole environment (None: this process's)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(a) for a in args],
            cwd=ROOT,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def _merged(env: Optional[Env], *more: Optional[Env]) -> Dict[str, str]:
    full = {**os.environ, **(env or {})}
    for extra in more:
        full.update(extra or {})
    return full


class Stack:
    """Processes started together (a bench's, a fixture's, `make run`'s), stopped in
    reverse order; `pids` names each (for CPU accounting)."""

    def __init__(self, workdir: Optional[Path] = None) -> None:
        self.workdir = workdir
        self.services: List[Any] = []
        self.pids: Dict[str, int] = {}
        self.token = secrets.token_urlsafe(24)  # e.g. one Rasa token for all the stack's servers

    def add(self, name: str, service: Any) -> Any:
        self.services.append(service)
        if getattr(service, "process", None) is not None:
            self.pids[name] = service.process.pid
        return service

    def stop(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop a process: {type(exc).__name__}", file=sys.stderr)
        self.services.clear()


# --- redis-server -------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server on loopback. `persistent`: append-only file fsynced on every
    write (the gateway's journal, cases and dedupe keys survive a SIGKILL of Redis, as in
    production); otherwise nothing is saved. `kill()` (SIGKILL) and `start()` again keep
    the same port, URL and data directory."""

    def __init__(
        self,
        persistent: bool = False,
        port: Optional[int] = None,
        directory: Optional[Path] = None,
        redis_server: str = "redis-server",
    ) -> None:
        binary = shutil.which(redis_server) or redis_server
        if not os.path.exists(binary):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.name = "redis"
        self.binary = binary
        self.persistent = persistent
        self.port = port or free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="redis-"))
        self.log = self.dir  # as a Service's `log`; redis-server's own output is discarded
        self.process: Optional[subprocess.Popen] = None

    def command(self) -> List[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if self.persistent
            else ["--save", "", "--appendonly", "no"]
        )
        return [self.binary, "--port", str(self.port), "--bind", LOOPBACK, *persistence, "--dir", str(self.dir)]

    def start(self, timeout: float = 15) -> "RedisServer":
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            # a restarted server answers -LOADING while it replays its append-only file
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, exactly what a crash or an OOM kill does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def start_redis(redis_server: str = "redis-server", persistent: bool = False) -> RedisServer:
    """A private redis-server on a free loopback port, started (default: without persistence;
    tests, benches)."""
    return RedisServer(persistent=persistent, redis_server=redis_server).start()


# --- the ops API's secret ------------------------------------------------------------------------

OPS_TOKEN_ENV = "OPS_API_TOKEN"  # contracts/ops.py names it too; this module imports no package
_ops_token: List[str] = []


def ops_token() -> str:
    """OPS_API_TOKEN from the environment, or one made once for this process: the action
    server, the gateway and the workbench a process starts all share it (per stack, like
    the other secrets made here)."""
    if not _ops_token:
        _ops_token.append(os.environ.get(OPS_TOKEN_ENV) or secrets.token_urlsafe(32))
    return _ops_token[0]


def _with_ops_token(env: Mapping[str, str]) -> Dict[str, str]:
    out = dict(env)
    out.setdefault(OPS_TOKEN_ENV, ops_token())
    return out


# --- the action server --------------------------------------------------------------------------

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


def action_server_command(port: int) -> List[str]:
    return [str(BOT_PYTHON), "-m", "bot.server.actions", "--actions", "bot.actions", "--port", str(port)]


def start_action_server(
    log_dir: Path,
    env: Optional[Env] = None,
    port: Optional[int] = None,
    token: Optional[str] = None,
    *,
    interface: str = LOOPBACK,
    wait: bool = True,
) -> ActionServer:
    """The project's action server (`python -m bot.server.actions`, as make run and the image
    start it), by default on loopback, requiring its own shared secret. `env` is added to
    this process's environment."""
    port = port or free_port()
    url = f"http://{LOOPBACK}:{port}"
    token = token or (env or {}).get("ACTION_SERVER_TOKEN") or action_token_for(url)
    _action_tokens[url] = token
    full_env = _with_ops_token(
        _merged(env, {"ACTION_SERVER_TOKEN": token, "ACTION_INTERFACE": interface, "ACTION_PORT": str(port)})
    )
    log = Path(log_dir) / "actions.log"
    process = spawn(action_server_command(port), full_env, log)
    if wait:
        wait_http(f"{url}/health", 90, process, log)
    return ActionServer("actions", process, url, log, token=token)


class RestartableActionServer:
    """The action server (start_action_server) on a fixed port: `kill()` and `start()`
    again under Rasa's feet keep its URL and secret."""

    def __init__(self, log_dir: Path, env: Optional[Env] = None, port: Optional[int] = None) -> None:
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.service: Optional[ActionServer] = None

    def start(self) -> "RestartableActionServer":
        self.service = start_action_server(self.log_dir, env=self.env, port=self.port)
        return self

    def kill(self) -> None:
        if self.service is not None and self.service.process.poll() is None:
            self.service.process.kill()
            self.service.process.wait(timeout=10)
            self.service = None

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    @property
    def process(self) -> Optional[subprocess.Popen]:
        return self.service.process if self.service else None

    @property
    def running(self) -> bool:
        return self.service is not None and self.service.process.poll() is None


# --- Rasa ---------------------------------------------------------------------------------------


@dataclass
class RasaServer(Service):
    token: str = field(default="")

    def api(self, path: str) -> str:
        """A URL of Rasa's HTTP API with the token (keep such URLs out of logs)."""
        joiner = "&" if "?" in path else "?"
        return f"{self.url}{path}{joiner}token={self.token}"


def rasa_command(
    model: str,
    endpoints: str,
    port: int,
    token: str,
    *,
    interface: str = LOOPBACK,
    credentials: str = "credentials.yml",
) -> List[str]:
    """`rasa run` with the project's speed-up (bot/server), its API on and protected by a
    token. "--auth-token=" form: a token_urlsafe token may start with "-", which argparse
    would read as an option when given as a separate argument."""
    return [
        str(BOT_PYTHON),
        "-m",
        "bot.server",
        "run",
        "--enable-api",
        f"--auth-token={token}",
        "--interface",
        interface,
        "--port",
        str(port),
        "--model",
        str(model),
        "--endpoints",
        str(endpoints),
        "--credentials",
        credentials,
    ]


def rasa_shell_command(model: str, endpoints: str, conversation_id: str) -> List[str]:
    """Rasa's own terminal chat (`make shell`), in the foreground."""
    return [
        str(BOT_BIN / "rasa"),
        "shell",
        "--model",
        str(model),
        "--endpoints",
        str(endpoints),
        "--conversation-id",
        conversation_id,
    ]


def write_endpoints_file(out: Path, env: Optional[Env] = None) -> str:
    """Rasa's endpoints file for the environment `env` (scripts/endpoints.py, run in the bot's
    environment: Redis with REDIS_URL, else TRACKER_STORE_URL, else SQLite); its path."""
    result = subprocess.run(
        [str(BOT_PYTHON), "-m", "scripts.endpoints", "--out", str(out)],
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return result.stdout.rstrip("\n")


def start_rasa(
    model: str,
    action_url: str,
    log_dir: Path,
    port: Optional[int] = None,
    env: Optional[Env] = None,
    token: Optional[str] = None,
    endpoints: str = "endpoints.yml",
    action_token: Optional[str] = None,
    *,
    interface: str = LOOPBACK,
    wait: bool = True,
    set_action_env: bool = True,
) -> RasaServer:
    """Rasa with its HTTP API on, protected by a token, bound to loopback by default.
    Give `port` and `token` to start it again where clients already point; `endpoints`
    chooses the tracker/lock stores (scripts/endpoints.py writes Redis or SQL variants;
    the default endpoints.yml keeps conversations in memory, enough for most tests).
    Rasa calls the action server at `action_url` with that server's shared secret
    (`action_token`, by default the one start_action_server gave it); `set_action_env=False`
    leaves ACTION_SERVER_URL and ACTION_SERVER_TOKEN as `env` has them (make run)."""
    port = port or free_port()
    token = token or secrets.token_urlsafe(24)
    extra: Dict[str, str] = {}
    if set_action_env:
        action_token = action_token or (env or {}).get("ACTION_SERVER_TOKEN") or action_token_for(action_url)
        extra = {"ACTION_SERVER_URL": f"{action_url}/webhook", "ACTION_SERVER_TOKEN": action_token}
    log = Path(log_dir) / "rasa.log"
    process = spawn(rasa_command(model, endpoints, port, token, interface=interface), _merged(env, extra), log)
    url = f"http://{LOOPBACK}:{port}"
    server = RasaServer("rasa", process, url, log, token=token)
    if wait:
        wait_http(f"{url}/", 240, process, log)
        wait_http(server.api("/status"), 240, process, log)
    return server


class RestartableRasa:
    """Rasa with a fixed port and token, so it can be stopped and started again under the
    gateway's feet (start_rasa otherwise picks a fresh port and token)."""

    def __init__(
        self,
        model: str,
        action_url: str,
        log_dir: Path,
        token: Optional[str] = None,
        port: Optional[int] = None,
        endpoints: str = "endpoints.yml",
        env: Optional[Env] = None,
    ) -> None:
        self.model = model
        self.action_url = action_url
        self.log_dir = log_dir
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.token = token or secrets.token_urlsafe(24)
        self.endpoints = endpoints
        self.env = env
        self.server: Optional[RasaServer] = None

    def start(self) -> "RestartableRasa":
        self.server = start_rasa(
            self.model,
            self.action_url,
            self.log_dir,
            port=self.port,
            token=self.token,
            endpoints=self.endpoints,
            env=self.env,
        )
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def process(self) -> Optional[subprocess.Popen]:
        return self.server.process if self.server else None

    @property
    def log(self) -> Optional[Path]:
        return self.server.log if self.server else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def api(self, path: str) -> str:
        joiner = "&" if "?" in path else "?"
        return f"{self.url}{path}{joiner}token={self.token}"

    def restart_conversation(self, sender: str) -> None:
        post_json(self.api(f"/conversations/{sender}/tracker/events"), {"event": "restart"})

    def tracker(self, sender: str) -> Dict[str, Any]:
        return get_json(self.api(f"/conversations/{sender}/tracker"))

    def user_texts(self, sender: str) -> List[str]:
        events = self.tracker(sender)["events"]
        # after a restart event only the new conversation counts
        last_restart = max([i for i, e in enumerate(events) if e.get("event") == "restart"], default=-1)
        return [e.get("text") for e in events[last_restart + 1 :] if e.get("event") == "user"]


# --- the gateway --------------------------------------------------------------------------------


def gateway_command() -> List[str]:
    return [str(GATEWAY_PYTHON), "-m", "gateway"]


def gateway_env(
    port: int,
    *,
    line_api_url: str,
    redis_url: str,
    rasa_url: str,
    rasa_token: str,
    actions_url: str,
    attachments_dir: Path,
    channel_secret: str,
    channel_access_token: str,
    slack_bot_token: Optional[str] = None,
    slack_signing_secret: Optional[str] = None,
    slack_api_url: Optional[str] = None,
    slack_handoff_channel: Optional[str] = None,
    log_level: Optional[str] = None,
    host: str = LOOPBACK,
    extra: Optional[Dict[str, str]] = None,
    account_link_login_url: Optional[str] = None,
) -> Dict[str, str]:
    """The environment of one gateway process (`python -m gateway`) against the LINE
    emulator at `line_api_url`, and the Slack one at `slack_api_url` (its .../api/ base) when
    given; SENTRY_DSN is dropped so no event leaves the machine (`extra` may set it)."""
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": host,
        "LINE_CHANNEL_SECRET": channel_secret,
        "LINE_CHANNEL_ACCESS_TOKEN": channel_access_token,
        "LINE_API_BASE_URL": line_api_url,
        "LINE_DATA_API_BASE_URL": line_api_url,
        "REDIS_URL": redis_url,
        "RASA_URL": rasa_url,
        "RASA_TOKEN": rasa_token,
        "ACTION_SERVER_URL": f"{actions_url}/webhook",
        "ATTACHMENTS_DIR": str(attachments_dir),
        "PYTHONUNBUFFERED": "1",
    }
    if slack_api_url:
        env.update(
            {
                "SLACK_BOT_TOKEN": slack_bot_token or "",
                "SLACK_SIGNING_SECRET": slack_signing_secret or "",
                "SLACK_API_BASE_URL": slack_api_url,
                "SLACK_HANDOFF_CHANNEL": slack_handoff_channel or "",
            }
        )
    if log_level:
        env["LOG_LEVEL"] = log_level
    if account_link_login_url:  # the shop's login page (start_shop_login's login_url)
        env["ACCOUNT_LINK_LOGIN_URL"] = account_link_login_url
    env.pop("SENTRY_DSN", None)
    env.update(extra or {})
    return env


class GatewayProcess:
    """The gateway as its own process, from its runtime environment
    (`.venv-gateway/bin/python -m gateway`), configured by `env` alone (PORT and HOST in
    it); `restart()` kills it and starts it again on the same port (its state lives in
    redis-server)."""

    def __init__(self, env: Env, port: int, log: Path, host: str = LOOPBACK) -> None:
        self.env = _with_ops_token(env)  # GET /ops/cases for the workbench (gateway/ops.py)
        self.port = port
        self.url = f"http://{host}:{port}"
        self.webhook_url = f"{self.url}/line/webhook"
        self.slack_url = f"{self.url}/slack/events"
        self.log = log
        self.process: Optional[subprocess.Popen] = None

    def start(self, wait: bool = True, timeout: float = 60) -> "GatewayProcess":
        self.process = spawn(gateway_command(), self.env, self.log)
        if wait:
            wait_http(f"{self.url}/healthz", timeout, self.process, self.log)
        return self

    def stop(self, kill: bool = False) -> None:
        _stop_process(self.process, kill=kill)

    def restart(self, kill: bool = True) -> None:
        self.stop(kill=kill)
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_gateway(env: Env, port: int, log: Path, **kwargs: Any) -> GatewayProcess:
    """A GatewayProcess, started (and answering /healthz)."""
    return GatewayProcess(env, port, log).start(**kwargs)


# --- the LINE and Slack emulators ---------------------------------------------------------------


class EmulatorThread:
    """An aiohttp application (a LINE or Slack API emulator, or any stand-in) served from a
    background thread with its own event loop. Tests read the emulator's records
    (`emu.requests`, `emu.messages()`, ...) directly."""

    def __init__(self, emu: Any, app: Any, port: Optional[int] = None) -> None:
        self.emu = emu
        self._app = app
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self._app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, LOOPBACK, self.port).start())
        self._runner = runner
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self) -> "EmulatorThread":
        self._thread.start()
        assert self._ready.wait(10), "emulator did not start"
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def start_line_emulator(
    access_token: str,
    profiles: Optional[Mapping[str, Sequence[str]]] = None,
    *,
    webhook_url: Optional[str] = None,
    channel_secret: Optional[str] = None,
) -> EmulatorThread:
    """The LINE Messaging API emulator in this process (a thread), accepting `access_token`;
    `profiles`: user id -> (display name, language). LINE's accountLink events go to
    `webhook_url` signed with `channel_secret` (both may be set later on `.emu`, once the
    gateway's port is known)."""
    from devkit.emulators.line_api import LineApiEmulator

    line = LineApiEmulator(access_token, webhook_url=webhook_url, channel_secret=channel_secret)
    thread = EmulatorThread(line, line.app).start()
    for user, (name, language) in (profiles or {}).items():
        line.set_profile(user, name, language)
    return thread


def start_slack_emulator(bot_token: str, signing_secret: Optional[str] = None) -> EmulatorThread:
    """The Slack Web API emulator in this process (a thread); its API base is `url + "/api/"`."""
    from devkit.emulators.slack_api import SlackApiEmulator

    slack = SlackApiEmulator(bot_token, signing_secret=signing_secret)
    return EmulatorThread(slack, slack.app()).start()


def line_emulator_command(port: int, host: str = LOOPBACK) -> List[str]:
    return [str(DEVKIT_PYTHON), "-m", "devkit.emulators.line_api", "--host", host, "--port", str(port)]


def slack_emulator_command(port: int, token: str, channel: str, host: str = LOOPBACK) -> List[str]:
    return [
        str(DEVKIT_PYTHON),
        "-m",
        "devkit.emulators.slack_api",
        "--host",
        host,
        "--port",
        str(port),
        "--token",
        token,
        "--channel",
        channel,
    ]


def start_line_emulator_process(
    log_dir: Path, port: Optional[int] = None, env: Optional[Env] = None, *, host: str = LOOPBACK, wait: bool = True
) -> Service:
    """The LINE emulator as its own process (it accepts LINE_CHANNEL_ACCESS_TOKEN of `env`);
    `env` is the whole environment (None: this process's)."""
    port = port or free_port()
    log = Path(log_dir) / "line-emulator.log"
    process = spawn(line_emulator_command(port, host), env, log)
    url = f"http://{LOOPBACK}:{port}"
    if wait:
        wait_http(f"{url}/_emulator/requests", 30, process, log)
    return Service("line-emulator", process, url, log)


def start_slack_emulator_process(
    log_dir: Path,
    token: str,
    channel: str,
    port: Optional[int] = None,
    env: Optional[Env] = None,
    *,
    host: str = LOOPBACK,
    wait: bool = True,
) -> Service:
    """The Slack emulator as its own process; `env` is the whole environment (None: this
    process's; SLACK_SIGNING_SECRET and SLACK_EVENTS_URL are read from it)."""
    port = port or free_port()
    log = Path(log_dir) / "slack-emulator.log"
    process = spawn(slack_emulator_command(port, token, channel, host), env, log)
    url = f"http://{LOOPBACK}:{port}"
    if wait:
        wait_http(f"{url}/_emulator/calls", 30, process, log)
    return Service("slack-emulator", process, url, log)


def terminal_chat_command(
    gateway_url: str, emulator_port: int, user: str, slack_emulator_url: Optional[str] = None
) -> List[str]:
    """The customer's chat in this terminal (`make run`): it serves the LINE emulator itself."""
    args = [
        str(DEVKIT_PYTHON),
        "-m",
        "devkit.emulators.terminal_chat",
        "--gateway",
        gateway_url,
        "--serve-emulator",
        str(emulator_port),
        "--user",
        user,
    ]
    if slack_emulator_url:
        args += ["--slack-emulator", slack_emulator_url]
    return args


# --- the balancer -------------------------------------------------------------------------------


def start_balancer(
    upstreams: Sequence[str], log_dir: Path, name: str = "balancer", port: Optional[int] = None
) -> Service:
    """devkit/balancer.py as its own process on a free port, round robin over
    `upstreams`; the returned Service's url is the balancer's."""
    port = port or free_port()
    args = [str(DEVKIT_PYTHON), "-m", "devkit.balancer", "--port", str(port)]
    for upstream in upstreams:
        args += ["--upstream", upstream]
    log = Path(log_dir) / f"{name}.log"
    process = spawn(args, None, log)
    url = f"http://{LOOPBACK}:{port}"
    wait_http(f"{url}/_balancer/stats", 30, process, log)
    return Service(name, process, url, log)


# --- the shop's login page (LINE's account link) -------------------------------------------------


def new_account_link_key() -> str:
    """A fresh ACCOUNT_LINK_KEY, for one stack's action server and login page."""
    return secrets.token_urlsafe(32)


def shop_login_command(port: int, host: str = LOOPBACK) -> List[str]:
    return [str(DEVKIT_PYTHON), "-m", "devkit.shop_login", "--host", host, "--port", str(port)]


@dataclass
class ShopLogin(Service):
    @property
    def login_url(self) -> str:
        """ACCOUNT_LINK_LOGIN_URL for the gateway."""
        return f"{self.url}/account-link"


def start_shop_login(
    log_dir: Path,
    *,
    orders_url: str,
    account_link_key: str,
    line_account_link_url: str,
    port: Optional[int] = None,
    env: Optional[Env] = None,
    host: str = LOOPBACK,
    wait: bool = True,
) -> ShopLogin:
    """The demo shop's login page (devkit/shop_login.py) as its own process: it reads the
    orders database at `orders_url`, signs nonces with `account_link_key` (the action
    server's ACCOUNT_LINK_KEY) and redirects to `line_account_link_url` (LINE's, or the
    emulator's /dialog/bot/accountLink). `env` is added to this process's environment."""
    port = port or free_port()
    log = Path(log_dir) / "shop-login.log"
    full_env = _merged(
        env,
        {
            "ORDERS_DATABASE_URL": orders_url,
            "ACCOUNT_LINK_KEY": account_link_key,
            "LINE_ACCOUNT_LINK_URL": line_account_link_url,
            "PYTHONUNBUFFERED": "1",
        },
    )
    process = spawn(shop_login_command(port, host), full_env, log)
    url = f"http://{LOOPBACK if host in ('0.0.0.0', '::') else host}:{port}"
    if wait:
        wait_http(f"{url}/healthz", 30, process, log)
    return ShopLogin("shop-login", process, url, log)


# --- the workbench ------------------------------------------------------------------------------


def workbench_command(port: int, args: Sequence[str] = (), host: Optional[str] = None) -> List[str]:
    return [
        str(DEVKIT_PYTHON),
        "-m",
        "devkit.workbench",
        *(["--host", host] if host else []),
        "--port",
        str(port),
        *args,
    ]


def start_workbench(
    log: Path,
    args: Sequence[str] = (),
    env: Optional[Env] = None,
    *,
    port: Optional[int] = None,
    host: Optional[str] = None,
    inherit_env: bool = True,
    wait: bool = True,
) -> Service:
    """The web workbench (`python -m devkit.workbench`) as its own process, as `make run`
    starts it; `args` are its options (--gateway, --line-emulator, ...). `env` is added to
    this process's environment (or, with inherit_env=False, is the whole of it)."""
    port = port or free_port()
    full_env = _merged({"PYTHONUNBUFFERED": "1"}, env) if inherit_env else dict(env or {})
    full_env = _with_ops_token(full_env)  # it reads the action server's and the gateway's /ops
    process = spawn(workbench_command(port, args, host), full_env, log)
    url = f"http://{host if host and host not in ('0.0.0.0', '::') else LOOPBACK}:{port}"
    if wait:
        wait_http(f"{url}/review", 60, process, log)
    return Service("workbench", process, url, log)


__all__ = [
    "ROOT",
    "BOT_BIN",
    "BOT_PYTHON",
    "GATEWAY_PYTHON",
    "DEVKIT_PYTHON",
    "free_port",
    "wait_http",
    "post_json",
    "get_json",
    "trained_model",
    "spawn",
    "Service",
    "Stack",
    "RedisServer",
    "start_redis",
    "ActionServer",
    "action_token_for",
    "action_server_command",
    "start_action_server",
    "RestartableActionServer",
    "RasaServer",
    "rasa_command",
    "rasa_shell_command",
    "write_endpoints_file",
    "start_rasa",
    "RestartableRasa",
    "gateway_command",
    "gateway_env",
    "GatewayProcess",
    "start_gateway",
    "EmulatorThread",
    "start_line_emulator",
    "start_slack_emulator",
    "line_emulator_command",
    "slack_emulator_command",
    "start_line_emulator_process",
    "start_slack_emulator_process",
    "terminal_chat_command",
    "start_balancer",
    "workbench_command",
    "start_workbench",
    "ops_token",
    "new_account_link_key",
    "shop_login_command",
    "ShopLogin",
    "start_shop_login",
]
