"""LINE gateway latency, side by side with Rasa's REST endpoint alone, in one run.

Starts redis-server, the LINE API emulator (in this process), the action server and Rasa
(the trained model, a throwaway orders database) and the gateway
(`python -m gateway`), then measures at 1 and 20 concurrent users:

- webhook ack: signed POST /line/webhook -> 200 (p50, p99); target p99 < 50 ms;
- webhook -> reply API: from posting the webhook to the emulator receiving the reply
  call for that event's reply token (p50, p95);
- Rasa alone: POST /webhooks/rest/webhook with the same messages (p50, p95);
  target: the gateway adds < 20 % to Rasa's own p95.

Two gateways run side by side, one on asyncio's standard event loop and one on uvloop
(`--loops`), so the effect of the loop on the ack is measured in the same run.

Run (gateway environment; the bot runs from .venv-bot):
    .venv-devkit/bin/python -m bench.gateway_latency [--requests 60] [--concurrency 20]

Every turn is a customer's first message of a claim from a fresh user (so it includes
the custom actions), like bench/bot_latency.py. The machine is shared: compare figures
from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

import aiohttp

from bench.common import CHANNEL_ACCESS_TOKEN, CHANNEL_SECRET, MESSAGES, percentile
from devkit import stack
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens, new_user_id
from devkit.stack import EmulatorThread

ROOT = Path(__file__).resolve().parent.parent


async def run_concurrently(n: int, concurrency: int, one) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(guarded(i) for i in range(n)))


async def bench_rasa(rasa_url: str, n: int, concurrency: int) -> Dict[str, float]:
    samples: List[float] = []
    async with aiohttp.ClientSession() as s:

        async def one(i: int) -> None:
            start = time.perf_counter()
            async with s.post(
                f"{rasa_url}/webhooks/rest/webhook",
                json={"sender": f"U{uuid.uuid4().hex}", "message": MESSAGES[i % len(MESSAGES)]},
            ) as r:
                await r.read()
            samples.append((time.perf_counter() - start) * 1000)

        await run_concurrently(n, concurrency, one)
    return {"p50": statistics.median(samples), "p95": percentile(samples, 0.95)}


class ReplyWatcher:
    """Which reply tokens the emulator has received a reply call for. Reads only the
    requests recorded since the last look, so 20 waiting users don't each rescan the
    whole log every few ms (that CPU, in this process, used to inflate the measured acks)."""

    def __init__(self, emu) -> None:
        self.emu = emu
        self.cursor = 0
        self.replied: Dict[str, float] = {}

    def poll(self) -> None:
        requests = self.emu.requests
        end = len(requests)
        for r in requests[self.cursor : end]:
            token = (r.get("json") or {}).get("replyToken")
            if r["path"] == "/v2/bot/message/reply" and token:
                self.replied.setdefault(token, r["time"])
        self.cursor = end

    async def wait(self, token: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if token in self.replied:
                return self.replied[token]
            await asyncio.sleep(0.005)
        raise TimeoutError("no reply")


async def bench_gateway(webhook_url: str, emu_thread: EmulatorThread, n: int, concurrency: int) -> Dict[str, float]:
    emu = emu_thread.emu
    watcher = ReplyWatcher(emu)
    acks: List[float] = []
    sent_at: Dict[str, float] = {}
    async with LineWebhookClient(webhook_url, CHANNEL_SECRET, token_source=emulator_tokens(emu)) as client:

        async def one(i: int) -> None:
            event = await client.text_event(new_user_id(), MESSAGES[i % len(MESSAGES)])
            body = client.body([event])
            t0 = time.time()
            res = await client.post_body(body)
            assert res.status == 200, res.status
            acks.append(res.elapsed_s * 1000)
            sent_at[event["replyToken"]] = t0
            # this user's turn is over when the reply call arrives; then the next "user"
            await watcher.wait(event["replyToken"])

        await run_concurrently(n, concurrency, one)
    watcher.poll()
    e2e = [(watcher.replied[token] - t0) * 1000 for token, t0 in sent_at.items() if token in watcher.replied]
    return {
        "ack_p50": statistics.median(acks),
        "ack_p99": percentile(acks, 0.99),
        "e2e_p50": statistics.median(e2e),
        "e2e_p95": percentile(e2e, 0.95),
        "n": len(e2e),
    }


async def measure(args, rasa, gateways: Dict[str, str], emu_thread) -> List[Dict[str, Any]]:
    """Per concurrency: Rasa alone, then each gateway (event loop kind -> URL), in turn."""
    rows = []
    for warm in range(6):  # lazy loading in Rasa / actions / first profile calls
        await bench_rasa(rasa.url, 1, 1)
        for url in gateways.values():
            await bench_gateway(url + "/line/webhook", emu_thread, 1, 1)
    for concurrency in (1, args.concurrency):
        r = await bench_rasa(rasa.url, args.requests, concurrency)
        for loop_kind, url in gateways.items():
            g = await bench_gateway(url + "/line/webhook", emu_thread, args.requests, concurrency)
            rows.append({"concurrency": concurrency, "loop": loop_kind, "rasa": r, "gateway": g})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--model", help="a model .tar.gz (default: stack.trained_model())")
    parser.add_argument(
        "--loops", default="asyncio,uvloop", help="gateway event loops to compare, side by side (GATEWAY_EVENT_LOOP)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    print(
        f"starting redis, the LINE emulator, the action server, Rasa and the gateway (logs in {workdir})...", flush=True
    )
    st = stack.Stack(workdir)
    emu_thread = stack.start_line_emulator(CHANNEL_ACCESS_TOKEN)
    try:
        redis = st.add("redis", stack.start_redis())
        actions = st.add(
            "actions",
            stack.start_action_server(workdir, env={"ORDERS_DATABASE_URL": f"sqlite:///{workdir / 'orders.db'}"}),
        )
        rasa = st.add("rasa", stack.start_rasa(args.model or stack.trained_model(), actions.url, workdir))
        gateways: Dict[str, str] = {}
        for loop_kind in args.loops.split(","):
            port = stack.free_port()
            env = stack.gateway_env(
                port,
                line_api_url=emu_thread.url,
                redis_url=redis.url,
                rasa_url=rasa.url,
                rasa_token=rasa.token,
                actions_url=actions.url,
                attachments_dir=workdir / "attachments",
                channel_secret=CHANNEL_SECRET,
                channel_access_token=CHANNEL_ACCESS_TOKEN,
                log_level="WARNING",
                extra={"GATEWAY_EVENT_LOOP": loop_kind},
            )
            gateway = st.add(
                f"gateway-{loop_kind}", stack.start_gateway(env, port, workdir / f"gateway-{loop_kind}.log")
            )
            gateways[loop_kind] = gateway.url
        rows = asyncio.run(measure(args, rasa, gateways, emu_thread))
    finally:
        st.stop()
        emu_thread.stop()

    print(
        f"\n{'conc':>4} {'loop':>7} | {'ack p50':>8} {'ack p99':>8} | {'gw e2e p50':>10} {'gw e2e p95':>10} "
        f"| {'rasa p50':>8} {'rasa p95':>8} | {'added p95':>9}"
    )
    for row in rows:
        g, r = row["gateway"], row["rasa"]
        added = (g["e2e_p95"] / r["p95"] - 1) * 100
        row["added_p95_percent"] = added
        print(
            f"{row['concurrency']:>4} {row['loop']:>7} | {g['ack_p50']:>8.1f} {g['ack_p99']:>8.1f} | "
            f"{g['e2e_p50']:>10.1f} {g['e2e_p95']:>10.1f} | {r['p50']:>8.1f} {r['p95']:>8.1f} "
            f"| {added:>8.1f}%"
        )
    print(
        f"\nms; {args.requests} turns per row (fresh user each, first claim turn); "
        "targets: ack p99 < 50 ms, added p95 < 20 %"
    )
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"gateway_latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
