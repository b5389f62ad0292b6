"""A promoted model goes live in the running Rasa server while a LINE customer is mid-claim;
the gateway is not restarted and the customer's conversation carries on.

Rasa here keeps conversations in Redis (tracker store and lock store, as `make serve` does
with REDIS_URL): a model swap builds a new Rasa agent, and only a shared store keeps the
conversations across it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devkit import stack
from devkit.emulators.line_client import LineWebhookClient, emulator_tokens
from scripts.endpoints import write_endpoints
from tests.support.line_stack import SECRET, quick_reply_data, reply_for, texts_of, wait_for

ROOT = Path(__file__).resolve().parents[3]
EMMA = "U00000000000000000000000000000002"


def _db(redis_url: str, db: int) -> str:
    """Another database of the same redis-server, so this module's gateway and Rasa do not
    share keys with the other tests' gateway."""
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture(scope="module")
def kept_rasa(action_server, redis_url, log_dir, tmp_path_factory):
    endpoints = write_endpoints(tmp_path_factory.mktemp("rollout") / "endpoints.yml", {"REDIS_URL": _db(redis_url, 6)})
    server = stack.start_rasa(stack.trained_model(), action_server.url, log_dir, endpoints=str(endpoints))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rollout_gateway(gateway, kept_rasa, redis_url, log_dir):
    port = stack.free_port()
    env = {
        **gateway.env,
        "PORT": str(port),
        "RASA_URL": kept_rasa.url,
        "RASA_TOKEN": kept_rasa.token,
        "REDIS_URL": _db(redis_url, 5),
    }
    process = stack.start_gateway(env, port, log_dir / "gateway-rollout.log")
    yield process
    process.stop()


async def answer(emu, event, timeout=90.0):
    r = await wait_for(lambda: reply_for(emu, event["replyToken"]), timeout, what="the reply to an event")
    return r["json"]["messages"]


@pytest.mark.asyncio
async def test_a_promoted_model_is_served_mid_conversation_without_restarting_the_gateway(
    rollout_gateway, kept_rasa, line_emulator, tmp_path
):
    emu = line_emulator.emu
    client = LineWebhookClient(rollout_gateway.webhook_url, SECRET, token_source=emulator_tokens(emu))
    stack.post_json(kept_rasa.api(f"/conversations/{EMMA}/tracker/events"), {"event": "restart"})
    gateway_pid, rasa_pid = rollout_gateway.process.pid, kept_rasa.process.pid
    before = stack.get_json(kept_rasa.api("/status"))
    try:
        event, res = await client.send_text(EMMA, "my fries are missing")
        assert res.status == 200
        msgs = await answer(emu, event)
        assert "Is this about French fries in order #1101" in texts_of(msgs)  # the one-tap question

        # The product owner's `make evaluate` promotes the model and loads it live.
        promoted_dir = tmp_path / "promoted"
        result = subprocess.run(
            [
                str(stack.BOT_PYTHON),
                "-m",
                "scripts.evaluate",
                "--model",
                stack.trained_model(),
                "--no-stories",
            ],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=1800,
            env={
                **os.environ,
                "PROMOTED_MODEL_DIR": str(promoted_dir),
                "EVALUATE_RESULTS_DIR": str(tmp_path / "results"),
                "RASA_URL": kept_rasa.url,
                "RASA_TOKEN": kept_rasa.token,
            },
        )
        assert result.returncode == 0, result.stdout
        assert "now serves it (the gateway was not restarted)" in result.stdout
        after = stack.get_json(kept_rasa.api("/status"))
        assert after["model_file"] != before["model_file"]
        assert Path(after["model_file"]).name == "model.tar.gz"

        # The same customer goes on where they were: the new model's turn still knows the
        # fries from before the swap and offers the remedies for them.
        event = await client.postback_event(EMMA, quick_reply_data(msgs, "#1101"))
        await client.post([event])
        msgs = await answer(emu, event)
        assert "French fries" in texts_of(msgs) and "Please choose one." in texts_of(msgs)
    finally:
        await client.close()
    assert rollout_gateway.process.pid == gateway_pid and rollout_gateway.process.poll() is None
    assert kept_rasa.process.pid == rasa_pid and kept_rasa.process.poll() is None
