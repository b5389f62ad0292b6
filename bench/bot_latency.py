"""Latency of the running bot: NLU parse and the REST webhook, serial and 20 concurrent.

Starts its own action server and Rasa server (the trained model, a throwaway orders
database) so every run measures the same thing, side by side:

    make bench                      # or: .venv-bot/bin/python -m bench.bot_latency --requests 60

The webhook turn is a customer's first message of a claim, so it includes the custom
actions (start claim, form validation, listing the customer's orders from the database).
Figures are medians and 95th percentiles in milliseconds; the machine is shared, so compare
figures from the same run, not across runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict

from bench.common import MESSAGES, percentile
from devkit import stack


def measure(call: Callable[[int], None], requests: int, concurrency: int) -> Dict[str, float]:
    def timed(n: int) -> float:
        start = time.perf_counter()
        call(n)
        return (time.perf_counter() - start) * 1000

    started = time.perf_counter()
    if concurrency == 1:
        samples = [timed(n) for n in range(requests)]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            samples = list(pool.map(timed, range(requests)))
    elapsed = time.perf_counter() - started
    return {
        "p50": statistics.median(samples),
        "p95": percentile(samples, 0.95),
        "rps": requests / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-bot-"))
    env = {"ORDERS_DATABASE_URL": f"sqlite:///{workdir / 'orders.db'}"}
    print("starting the action server and Rasa (this takes a minute)...", flush=True)
    actions = stack.start_action_server(workdir, env=env)
    rasa = stack.start_rasa(stack.trained_model(), actions.url, workdir)
    try:
        parse_url = rasa.api("/model/parse")
        webhook = f"{rasa.url}/webhooks/rest/webhook"

        def parse(n: int) -> None:
            stack.post_json(parse_url, {"text": MESSAGES[n % len(MESSAGES)]})

        def converse(n: int) -> None:
            # A fresh conversation each time (one shared id would serialise on Rasa's lock).
            stack.post_json(webhook, {"sender": f"U{uuid.uuid4().hex}", "message": MESSAGES[n % len(MESSAGES)]})

        for warm in range(5):  # first calls load lazily (TF graphs, DB connections)
            parse(warm)
            converse(warm)

        rows = []
        for label, call in (("NLU parse (/model/parse)", parse), ("REST webhook, first claim turn", converse)):
            for concurrency in (1, args.concurrency):
                figures = measure(call, args.requests, concurrency)
                rows.append((label, concurrency, figures))
        print(f"\n{'endpoint':34} {'conc':>4} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}")
        for label, concurrency, f in rows:
            print(f"{label:34} {concurrency:>4} {f['p50']:>8.1f} {f['p95']:>8.1f} {f['rps']:>7.1f}")
        print(f"\n{args.requests} requests per row; logs in {workdir}")
    finally:
        rasa.stop()
        actions.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
