"""What the benchmarks share: the customer messages they send, the LINE channel of their
emulator, how they summarise and measure CPU. The processes they start are started by
devkit/stack.py (as `make run` and the tests start them); no bench imports tests/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parent.parent

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


# The LINE channel of the benches' emulator and gateways (any values: both ends are ours).
CHANNEL_SECRET = "bench-channel-secret"
CHANNEL_ACCESS_TOKEN = "bench-channel-access-token"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc; psutil isn't installed)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int) -> float:
    """A process's resident memory (VmRSS, /proc) in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def machine_busy_seconds() -> Tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat):
    shows how much of the machine other work took during a measurement."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick
