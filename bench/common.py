"""What the benchmarks share: the customer messages they send, how they summarise, and how
they start a gateway's environment, a load balancer and measure CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.stack import Service, free_port, wait_http  # noqa: E402  (stdlib only)

# First turns of typical conversations, both languages, each starting a different flow.
MESSAGES = [
    "親子丼に別卵が付いていませんでした",
    "my order is missing the fries",
    "注文した料理がまだ届きません",
    "the mug arrived broken",
    "注文をキャンセルしたいです",
    "where is my order?",
]


def percentile(values: List[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 = median) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# --- processes the load bench and the scale test start alike --------------------------------

def gateway_env(port: int, *, line_api_url: str, redis_url: str, rasa_url: str,
                rasa_token: str, actions_url: str, attachments_dir: Path,
                channel_secret: str, channel_access_token: str,
                extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of one gateway process (`python -m gateway`) against the
    LINE emulator, without Slack; SENTRY_DSN is dropped so no event leaves the machine."""
    env = {
        **os.environ,
        "PORT": str(port), "HOST": "127.0.0.1",
        "LINE_CHANNEL_SECRET": channel_secret, "LINE_CHANNEL_ACCESS_TOKEN": channel_access_token,
        "LINE_API_BASE_URL": line_api_url, "LINE_DATA_API_BASE_URL": line_api_url,
        "REDIS_URL": redis_url, "RASA_URL": rasa_url, "RASA_TOKEN": rasa_token,
        "ACTION_SERVER_URL": f"{actions_url}/webhook",
        "ATTACHMENTS_DIR": str(attachments_dir), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }
    env.pop("SENTRY_DSN", None)
    return env


def start_balancer(upstreams: Sequence[str], log_dir: Path, name: str = "balancer") -> Service:
    """devkit/balancer.py as its own process on a free port, round robin over
    `upstreams`; the returned Service's url is the balancer's."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    args = [sys.executable, "-m", "devkit.balancer", "--port", str(port)]
    for upstream in upstreams:
        args += ["--upstream", upstream]
    process = subprocess.Popen(args, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/_balancer/stats", 30, process, log)
    return Service(name, process, url, log)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc; psutil isn't installed)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> Tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat):
    shows how much of the machine other work took during a measurement."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick
