"""What `make run` / `make serve` (scripts/run.sh) open to the network, over the real script.

- `EMULATE=1 scripts/run.sh serve` (the services of `make run`: action server, Rasa, the
  gateway, both emulators, the workbench) with free ports, a temporary VAR_DIR and no .env:
  every listening socket of every process it started is on loopback; the demo's LINE and
  Slack secrets and the tokens are random, in VAR_DIR, readable by the owner only.
- `scripts/run.sh serve` without the LINE and Slack credentials and without EMULATE exits
  non-zero at once, names exactly the missing variables and starts nothing.

Linux only (listening sockets are read from /proc, as `ss -ltnp` does).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from devkit import stack

ROOT = Path(__file__).resolve().parents[3]
RUN_SH = ROOT / "scripts" / "run.sh"
CREDENTIALS = (
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_HANDOFF_CHANNEL",
)
# What the caller's environment must not bring in (a developer's shell or CI).
SCRUBBED = CREDENTIALS + (
    "EMULATE",
    "BIND_HOST",
    "GATEWAY_INTERFACE",
    "RASA_INTERFACE",
    "ACTION_INTERFACE",
    "HOST",
    "RASA_TOKEN",
    "ACTION_SERVER_TOKEN",
    "AGENT_APPROVAL_KEY",
    "POSTBACK_SIGNING_KEY",
    "ACTION_SERVER_URL",
    "RASA_URL",
    "REDIS_URL",
    "ORDERS_DATABASE_URL",
    "TRACKER_STORE_URL",
    "ATTACHMENTS_DIR",
    "SENTRY_DSN",
    "LINE_API_BASE_URL",
    "LINE_DATA_API_BASE_URL",
    "SLACK_API_BASE_URL",
    "VAR_DIR",
)

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update({"ENV_FILE": "/dev/null", "PYTHONUNBUFFERED": "1", **extra})
    return env


# ---- listening sockets of a process tree, from /proc ----------------------------------------


def descendants(root: int) -> Set[int]:
    """`root` and every process below it (by parent pid)."""
    parents: Dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= below
        grew = bool(below)
    return tree


def socket_inodes(pids: Set[int]) -> Dict[int, int]:
    """socket inode -> pid, for every open socket of `pids`."""
    found: Dict[int, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    found[int(target[8:-1])] = pid
        except OSError:
            continue
    return found


def _address(hex_addr: str) -> Tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    # /proc/net/tcp{,6} print each 32-bit word in host (little-endian) order
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port, 16)


def listening(pids: Set[int]) -> List[Tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket in LISTEN state owned by `pids`."""
    inodes = socket_inodes(pids)
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[9]) in inodes:  # 0A: LISTEN
                host, port = _address(cols[1])
                out.append((host, port, inodes[int(cols[9])]))
    return out


def is_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


# ---- the demo services, started by the real script ----------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Dict[str, object]]:
    stack.trained_model()  # the script's own train.sh then finds the model cached
    var_dir = tmp_path_factory.mktemp("run-var")
    ports = {
        name: stack.free_port()
        for name in (
            "ACTION_PORT",
            "RASA_PORT",
            "PORT",
            "EMULATOR_PORT",
            "SLACK_EMULATOR_PORT",
            "WORKBENCH_PORT",
            "SHOP_LOGIN_PORT",  # the demo shop's login page (LINE account link)
        )
    }
    env = clean_env(EMULATE="1", VAR_DIR=str(var_dir), **{k: str(v) for k, v in ports.items()})
    log = var_dir / "run-sh.log"
    handle = open(log, "ab")
    # its own process group: the whole tree is stopped by its id afterwards
    process = subprocess.Popen(
        ["bash", str(RUN_SH), "serve"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        stack.wait_http(f"http://127.0.0.1:{ports['PORT']}/healthz", 420, process, log)
        stack.wait_http(f"http://127.0.0.1:{ports['WORKBENCH_PORT']}/", 60, process, log)
        deadline = time.monotonic() + 60
        while "all services up" not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        expected = set(ports.values())
        while True:  # the LINE emulator is started last, without a wait
            sockets = listening(descendants(process.pid))
            if expected <= {port for _, port, _ in sockets} or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        yield {"process": process, "ports": ports, "var": var_dir, "log": log, "sockets": sockets}
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        handle.close()


def test_every_service_of_the_demo_listens_on_loopback_only(demo) -> None:
    sockets = demo["sockets"]
    ports = demo["ports"]
    seen = {port for _, port, _ in sockets}
    missing = {name: port for name, port in ports.items() if port not in seen}
    assert not missing, f"not listening (or not in the script's process tree): {missing}; {sockets}"
    exposed = [(host, port, pid) for host, port, pid in sockets if not is_loopback(host)]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_the_demo_secrets_are_random_private_files(demo) -> None:
    var_dir: Path = demo["var"]
    names = (
        "action-server-token",
        "rasa-token",
        "agent-approval-key",
        "account-link-key",
        "demo-line-channel-secret",
        "demo-line-access-token",
        "demo-slack-signing-secret",
        "demo-slack-bot-token",
    )
    script = RUN_SH.read_text()
    for name in names:
        path = var_dir / name
        assert path.is_file(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name} is readable by others"
        value = path.read_text()
        assert len(value) >= 32 and "local-demo" not in value and value not in script, name
    # the log says where the services are, never the secrets
    log = demo["log"].read_text(errors="replace")
    for name in names:
        assert (var_dir / name).read_text() not in log, name


@pytest.mark.parametrize("given", [(), ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"), ("SLACK_BOT_TOKEN",)])
def test_serve_refuses_to_start_without_credentials(tmp_path: Path, given: Tuple[str, ...]) -> None:
    var_dir = tmp_path / "var"
    env = clean_env(VAR_DIR=str(var_dir), **{name: "set-by-the-test" for name in given})
    started = time.monotonic()
    out = subprocess.run(
        ["bash", str(RUN_SH), "serve"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert out.returncode != 0
    missing = [name for name in CREDENTIALS if name not in given]
    first_line = out.stderr.splitlines()[0]
    for name in CREDENTIALS:
        assert (name in first_line) is (name in missing), (name, out.stderr)
    assert "EMULATE=1" in out.stderr
    # nothing started: no environment sync, no training, no service, no VAR_DIR written
    assert "run:" not in out.stderr and "train:" not in out.stderr and out.stdout == ""
    assert not var_dir.exists()
    assert time.monotonic() - started < 10
