"""The services, on one machine (what scripts/run.sh runs: `make run`, `make serve`, `make shell`):

    python -m devkit.run chat    (make run)   action server, Rasa, the gateway; without LINE
                                              credentials also the local LINE emulator, and you
                                              chat as a LINE customer in this terminal (quick
                                              replies by number); without Slack credentials also
                                              the local Slack emulator, and you answer handoffs
                                              as the agent (/claim, /agent ...).
    python -m devkit.run serve   (make serve) the same services in the foreground, for a real
                                              deployment: refuses to start without the LINE and
                                              Slack credentials unless EMULATE=1 (then it
                                              emulates what is missing, as chat).
    python -m devkit.run shell   (make shell) Rasa's own terminal chat, no gateway (NLU debugging).

Stops everything it started on exit. Every process is started by devkit/stack.py, the
module the tests and the benchmarks start them with, so `make run` runs what they proved.

Every service binds 127.0.0.1 unless a variable opens it: BIND_HOST (the demo's gateway
and the workbench), GATEWAY_INTERFACE (the gateway alone; `serve` with real credentials
binds it to 0.0.0.0, LINE must reach it), RASA_INTERFACE, ACTION_INTERFACE. The LINE and
Slack emulators always stay on loopback: only this machine's processes call them.
Secrets left empty (Rasa's token, the action server's, the approval key, the account link
key, the demo's LINE and Slack ones) are generated once per machine into $VAR_DIR
(default var/, files readable by this user only).

Variables are read from the environment and from .env (ENV_FILE; ENV_FILE=/dev/null
ignores it, as the tests do, so a developer's .env cannot leak in); .env is read by bash
exactly as the shell version of this script sourced it (`set -a; . .env`), and what it
sets wins over the caller's environment. Like a shell script's variables, the settings
below (ports, interfaces) are passed on to the services' environment only where they
were already in it; the rest is exported as the script did.

Standard library only: it runs before the environments are known to be in sync.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from devkit import stack

ROOT = stack.ROOT
CREDENTIALS = (
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_HANDOFF_CHANNEL",
)
MODES = ("chat", "serve", "shell")
# What bash itself puts into the environment of a shell that sources .env.
_SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def value(name: str) -> str:
    """${NAME:-}: the environment's value, empty when unset."""
    return os.environ.get(name) or ""


def setting(name: str, default: str) -> str:
    """NAME=${NAME:-default} in a shell script: the environment's value unless empty; the
    (possibly defaulted) value stays in the environment only if NAME was there already."""
    result = os.environ.get(name) or default
    if name in os.environ:
        os.environ[name] = result
    return result


def export(name: str, default: str) -> str:
    """export NAME=${NAME:-default}."""
    os.environ[name] = os.environ.get(name) or default
    return os.environ[name]


def load_env_file(path: str) -> None:
    """`[ -f .env ] && set -a && . .env && set +a`, by bash itself (same quoting, expansion,
    comments as before), into this process's environment."""
    if not Path(path).is_file():
        return
    out = subprocess.run(
        ["bash", "-c", 'set -a && . "$1" && set +a && env -0', "load-env", path],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        check=True,
    )
    for entry in out.stdout.split(b"\0"):
        if b"=" not in entry:
            continue
        key, _, raw = entry.partition(b"=")
        name, text = key.decode(), raw.decode("utf-8", "surrogateescape")
        if name not in _SHELL_OWN and os.environ.get(name) != text:
            os.environ[name] = text


class Secrets:
    """A random secret kept in $VAR_DIR/<name>, made on first use readable by this user only:
    the demo's secrets belong to this machine and are never a value written in a script."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir

    def get(self, name: str, prefix: str = "") -> str:
        path = self.var_dir / name
        if not (path.is_file() and path.stat().st_size > 0):
            token = base64.b64encode(os.urandom(48)).decode().translate(str.maketrans("", "", "/+=\n"))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(prefix + token)
        return path.read_text().rstrip("\n")


class Runner:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.services: List[object] = []  # started here, stopped on exit (in reverse order)

    # --- processes -------------------------------------------------------------------------

    def started(self, service):
        self.services.append(service)
        return service

    def background(self, start, *args, **kwargs):
        """Starts a service as a script's background job: ignoring Ctrl-C (SIGINT, SIGQUIT),
        which stops it through this runner (SIGTERM) instead. The signals are ignored here
        only while the process is spawned; the child keeps them ignored."""
        saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
        try:
            service = start(*args, **kwargs)
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
        return self.started(service)

    def processes(self) -> List[subprocess.Popen]:
        return [p for p in (getattr(s, "process", None) for s in self.services) if p is not None]

    def cleanup(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # stop everything once
            signal.signal(sig, signal.SIG_IGN)
        for process in self.processes():  # all at once, as `kill $pids` did, then wait
            if process.poll() is None:
                try:
                    process.terminate()
                except OSError:
                    pass
        deadline = time.monotonic() + 30
        for process in self.processes():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.services.clear()

    def foreground(self, args: List[str]) -> int:
        """A program on this terminal (rasa shell, the terminal chat) until it ends; Ctrl-C is
        its own to handle (as a shell waits for its foreground command)."""
        process = subprocess.Popen(args, cwd=ROOT)
        saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = process.wait()
        finally:
            signal.signal(signal.SIGINT, saved)
        return code if code >= 0 else 128 - code

    def wait_for(self, url: str, what: str, log: Path, process: Optional[subprocess.Popen]) -> None:
        try:
            stack.wait_http(url, 300, process)
        except RuntimeError:
            say(f"run: {what} did not come up; see {log}/")
            raise SystemExit(1)

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        mode = self.mode
        load_env_file(os.environ.get("ENV_FILE") or ".env")

        if mode == "serve" and (os.environ.get("EMULATE") or "0") != "1":
            # A real deployment: no silent fallback to emulators with this machine's demo secrets.
            missing = [name for name in CREDENTIALS if not value(name)]
            if missing:
                say(f"serve: not started: {' '.join(missing)} not set (see .env.example).")
                say("       To run with the local LINE/Slack emulators instead: EMULATE=1 make serve")
                return 2

        subprocess.run([str(ROOT / "scripts" / "bootstrap.sh")], cwd=ROOT, check=True)
        model = os.path.relpath(stack.trained_model(), ROOT)
        # VAR_DIR: logs, generated secrets, endpoints file and the demo's SQLite files (the
        # tests point it at a temporary folder).
        var_dir = Path(setting("VAR_DIR", "var"))
        (var_dir / "log").mkdir(parents=True, exist_ok=True)
        var_dir = Path(os.path.abspath(var_dir))  # as `cd "$VAR_DIR" && pwd`
        if "VAR_DIR" in os.environ:
            os.environ["VAR_DIR"] = str(var_dir)
        log = var_dir / "log"
        secret = Secrets(var_dir).get

        # Rasa serves the promoted model (make evaluate promotes a model that does not
        # regress), or, before the first promotion, the model of the current data.
        served = model
        promoted = Path(value("PROMOTED_MODEL_DIR") or "models/promoted") / "model.tar.gz"
        if promoted.is_file() and mode != "shell":
            served = str(promoted)
            record = promoted.parent / "promoted.json"
            try:
                known = f'"{os.path.basename(model)}"' in record.read_text(errors="replace")
            except OSError:
                known = False
            if not known:
                say(
                    f"run: serving the promoted model; the model of the current data ({model}) is not "
                    "promoted yet: make evaluate"
                )
        # Conversations are kept (Redis with REDIS_URL, else $VAR_DIR/trackers.db) for make review.
        export("TRACKER_STORE_URL", f"sqlite:///{var_dir}/trackers.db")
        export("ORDERS_DATABASE_URL", f"sqlite:///{var_dir}/orders.db")
        export("ATTACHMENTS_DIR", f"{var_dir}/attachments")
        endpoints = stack.write_endpoints_file(var_dir / "endpoints.yml")

        action_port = setting("ACTION_PORT", "5055")
        rasa_port = setting("RASA_PORT", "5005")
        port = setting("PORT", "8080")
        emulator_port = setting("EMULATOR_PORT", "8091")
        slack_emulator_port = setting("SLACK_EMULATOR_PORT", "8092")
        export("ACTION_SERVER_URL", f"http://127.0.0.1:{action_port}/webhook")
        rasa_url = export("RASA_URL", f"http://127.0.0.1:{rasa_port}")
        # The demo customer "デモ 太郎" (see bot/store/seed.py); set DEMO_SENDER to chat as someone else.
        demo_sender = export("DEMO_SENDER", "U00000000000000000000000000000001")
        bind_host = setting("BIND_HOST", "127.0.0.1")
        action_interface = export("ACTION_INTERFACE", "127.0.0.1")
        rasa_interface = setting("RASA_INTERFACE", "127.0.0.1")
        # Only Rasa may call the action server: Rasa sends this secret (endpoints.yml headers).
        os.environ["ACTION_SERVER_TOKEN"] = value("ACTION_SERVER_TOKEN") or secret("action-server-token")
        # the workbench reads cases and the quality audit from the action server and the gateway
        os.environ["OPS_API_TOKEN"] = value("OPS_API_TOKEN") or secret("ops-api-token")
        # The gateway signs agents' approvals and the action server verifies them with this
        # key; both are started here, so one key per machine serves both (docs/security.md).
        os.environ["AGENT_APPROVAL_KEY"] = value("AGENT_APPROVAL_KEY") or secret("agent-approval-key")
        # LINE's account link: the shop's login page signs nonces and the action server
        # verifies them with this key (docs/account-link.md); the demo's page is started below.
        os.environ["ACCOUNT_LINK_KEY"] = value("ACCOUNT_LINK_KEY") or secret("account-link-key")

        self.background(
            stack.start_action_server,
            log,
            env=os.environ,
            port=int(action_port),
            token=os.environ["ACTION_SERVER_TOKEN"],
            interface=action_interface,
            wait=False,
        )
        say(f"run: action server on {action_interface}:{action_port}, for Rasa only (log: {log}/actions.log)")

        if mode == "shell":
            return self.foreground(stack.rasa_shell_command(model, endpoints, demo_sender))

        # Rasa's API never runs without a token (CVE-2024-49375); make one for this machine.
        os.environ["RASA_TOKEN"] = value("RASA_TOKEN") or secret("rasa-token")
        rasa = self.background(
            stack.start_rasa,
            served,
            value("ACTION_SERVER_URL"),
            log,
            port=int(rasa_port),
            env=os.environ,
            token=os.environ["RASA_TOKEN"],
            endpoints=endpoints,
            interface=rasa_interface,
            wait=False,
            set_action_env=False,
        )
        say(f"run: Rasa on {rasa_interface}:{rasa_port} (log: {log}/rasa.log); loading the model...")

        local_line = not value("LINE_CHANNEL_SECRET") or not value("LINE_CHANNEL_ACCESS_TOKEN")
        if local_line:
            # No LINE credentials: the LINE platform is emulated on this machine, with this
            # machine's own random channel secret and access token.
            os.environ["LINE_CHANNEL_SECRET"] = secret("demo-line-channel-secret")
            os.environ["LINE_CHANNEL_ACCESS_TOKEN"] = secret("demo-line-access-token")
            os.environ["LINE_API_BASE_URL"] = f"http://127.0.0.1:{emulator_port}"
            os.environ["LINE_DATA_API_BASE_URL"] = f"http://127.0.0.1:{emulator_port}"
        local_slack = not value("SLACK_BOT_TOKEN")
        if local_slack:
            # No Slack credentials: the Slack workspace is emulated on this machine (agents:
            # 佐藤 花子, Alex Kim).
            os.environ["SLACK_BOT_TOKEN"] = secret("demo-slack-bot-token", "xoxb-local-")
            os.environ["SLACK_SIGNING_SECRET"] = secret("demo-slack-signing-secret")
            os.environ["SLACK_API_BASE_URL"] = f"http://127.0.0.1:{slack_emulator_port}/api/"
            os.environ["SLACK_HANDOFF_CHANNEL"] = "C0HANDOFF1"
            self.background(
                stack.start_slack_emulator_process,
                log,
                os.environ["SLACK_BOT_TOKEN"],
                os.environ["SLACK_HANDOFF_CHANNEL"],
                port=int(slack_emulator_port),
                env=os.environ,
                wait=False,
            )
            say(
                f"run: no Slack credentials: Slack API calls go to the local emulator on "
                f"127.0.0.1:{slack_emulator_port}"
            )
        if local_line and not value("ACCOUNT_LINK_LOGIN_URL"):
            # The demo shop's login page (devkit/shop_login.py) for LINE's account link: it
            # sends the customer on to the LINE emulator's accountLink page, which posts the
            # accountLink event to the gateway.
            shop_port = setting("SHOP_LOGIN_PORT", "8094")
            os.environ["ACCOUNT_LINK_LOGIN_URL"] = f"http://{bind_host}:{shop_port}/account-link"
            os.environ["LINE_EMULATOR_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/line/webhook"
            self.background(
                stack.start_shop_login,
                log,
                orders_url=os.environ["ORDERS_DATABASE_URL"],
                account_link_key=os.environ["ACCOUNT_LINK_KEY"],
                line_account_link_url=f"http://127.0.0.1:{emulator_port}/dialog/bot/accountLink",
                port=int(shop_port),
                env=os.environ,
                host=bind_host,
                wait=False,
            )
            say(f"run: the demo shop's login page (LINE account link) on http://{bind_host}:{shop_port}/account-link")
        # The gateway: on all interfaces only for `serve` with a real LINE channel (LINE must
        # reach it); the demo keeps it on BIND_HOST (loopback).
        if mode == "serve" and not local_line:
            gateway_host = value("GATEWAY_INTERFACE") or "0.0.0.0"
        else:
            gateway_host = value("GATEWAY_INTERFACE") or bind_host
        gateway_local = "127.0.0.1" if gateway_host in ("0.0.0.0", "::", "") else gateway_host
        os.environ["PORT"] = port
        gateway = self.background(
            lambda: stack.GatewayProcess(
                {**os.environ, "HOST": gateway_host}, int(port), log / "gateway.log", host=gateway_local
            ).start(wait=False)
        )
        say(f"run: gateway on {gateway_host}:{port}, POST /line/webhook (log: {log}/gateway.log)")
        self.wait_for(f"{rasa_url}/", "Rasa", log, rasa.process)
        self.wait_for(f"{gateway.url}/healthz", "the gateway", log, gateway.process)

        if local_line:
            # The web workbench (docs/workbench.md): the customer's LINE beside the agents'
            # Slack, the review queue and the case charts, all through the emulators and the
            # real gateway.
            workbench_port = setting("WORKBENCH_PORT", "8093")
            self.background(
                stack.start_workbench,
                log / "workbench.log",
                [
                    "--gateway",
                    gateway.url,
                    "--line-emulator",
                    f"http://127.0.0.1:{emulator_port}",
                    "--slack-emulator",
                    f"http://127.0.0.1:{slack_emulator_port}",
                ],
                env=os.environ,
                inherit_env=False,
                port=int(workbench_port),
                host=bind_host,
                wait=False,
            )
            say(
                f"run: workbench on http://{bind_host}:{workbench_port}/ (customer and agent side by side, "
                "review, cases)"
            )

        if mode == "chat" and local_line:
            say(f"run: chatting as LINE user {demo_sender} (デモ 太郎) through the local LINE emulator.")
            say(
                "     Try: 親子丼に別卵が付いていませんでした / my fries are missing. Numbers tap quick "
                "replies; /quit to stop."
            )
            slack = f"http://127.0.0.1:{slack_emulator_port}" if local_slack else None
            return self.foreground(stack.terminal_chat_command(gateway.url, int(emulator_port), demo_sender, slack))
        if local_line:
            self.background(stack.start_line_emulator_process, log, port=int(emulator_port), env=os.environ, wait=False)
            say(f"run: no LINE credentials: LINE API calls go to the local emulator on 127.0.0.1:{emulator_port}")
        say("run: all services up; Ctrl-C stops them.")
        return self.until_one_ends()

    def until_one_ends(self) -> int:
        """`wait -n`: until one of the services ends; its exit status."""
        while True:
            for process in self.processes():
                code = process.poll()
                if code is not None:
                    return code if code >= 0 else 128 - code
            time.sleep(0.2)


def _stop_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args else "chat"
    if mode not in MODES:
        say(f"usage: python -m devkit.run [{'|'.join(MODES)}]")
        return 2
    os.chdir(ROOT)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    runner = Runner(mode)
    try:
        return runner.run()
    except subprocess.CalledProcessError as error:  # bootstrap, training, the endpoints file
        return error.returncode or 1
    except KeyboardInterrupt:
        return 130
    finally:
        runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
