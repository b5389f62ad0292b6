"""The curve `make load` draws: messages/s and end-to-end p95 against the number of
customers, per set-up (REST or LINE, one or two Rasa servers, and the baseline Rasa server
when there is one), and the memory each process held at the most customers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

STYLE = {  # set-up -> (label, line style)
    "rest-1": ("Rasa REST, 1 server", "C0--"),
    "line-1": ("LINE gateway, 1 Rasa server", "C0-"),
    "rest-2": ("Rasa REST, 2 servers", "C1--"),
    "line-2": ("LINE gateway, 2 Rasa servers", "C1-"),
    "rest-base-1": ("Rasa REST, 1 server, before the speed-ups", "C7:"),
}


def setup_of(row: Dict[str, Any]) -> str:
    return str(row["phase"]).split("@")[0]


def plot(rows: List[Dict[str, Any]], out: Path, command: str = "") -> Path:
    """Writes the PNG; returns its path."""
    fig, (rate, p95, memory) = plt.subplots(1, 3, figsize=(17, 5.2))
    for setup, (label, style) in STYLE.items():
        points = sorted((r["users"], r) for r in rows if setup_of(r) == setup)
        if not points:
            continue
        users = [u for u, _ in points]
        rate.plot(users, [r["messages_per_s"] for _, r in points], style, marker="o", label=label)
        p95.plot(users, [r["e2e_p95_ms"] or 0 for _, r in points], style, marker="o", label=label)
    for axis, title, unit in ((rate, "Messages answered per second", "msg/s"), (p95, "End-to-end p95", "ms")):
        axis.set_title(title)
        axis.set_xlabel("customers at once")
        axis.set_ylabel(unit)
        axis.grid(alpha=0.3)
        axis.set_xticks(sorted({r["users"] for r in rows}))
    rate.legend(fontsize=8)

    most = max(r["users"] for r in rows)
    at_most = [r for r in rows if r["users"] == most]
    peak: Dict[str, float] = {}
    for r in at_most:
        for name, mb in r.get("memory_mb", {}).items():
            peak[name] = max(peak.get(name, 0.0), mb)
    names = sorted(peak, key=lambda n: -peak[n])
    memory.barh(names, [peak[n] for n in names], color="C2")
    memory.invert_yaxis()
    memory.set_title(f"Memory per process at {most} customers")
    memory.set_xlabel("MB resident")
    for i, n in enumerate(names):
        memory.text(peak[n], i, f" {peak[n]:.0f}", va="center", fontsize=8)
    fig.suptitle(f"bench.load {command}".strip(), fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
