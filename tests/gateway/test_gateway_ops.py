"""The gateway's ops route (gateway/ops.py), in process over a real redis-server case
store: `GET /ops/cases` lists the open and claimed cases (who claimed it, when) for the
workbench, and nothing a customer said or is; it opens only for OPS_API_TOKEN, and with
no token configured it is off (503) while the gateway itself runs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from contracts.ops import LiveCase
from gateway.app import create_app
from gateway.config import Settings
from gateway.core.cases import Case, RedisCaseStore
from gateway.core.events import MemoryEventStore

OPS_TOKEN = "ops-token-" + uuid.uuid4().hex
CUSTOMER = "U" + "4" * 32
pytestmark = pytest.mark.asyncio


def settings(tmp_path: Path, ops_api_token):
    return Settings(
        channel_secret="ops-test-secret",
        channel_access_token="ops-test-access-token",
        line_api_base_url="http://127.0.0.1:9",
        line_data_api_base_url="http://127.0.0.1:9",
        rasa_url="http://127.0.0.1:9",
        attachments_dir=tmp_path / "attachments",
        ops_api_token=ops_api_token,
    )


@pytest_asyncio.fixture
async def cases(redis_url):
    store = RedisCaseStore.from_url(redis_url)
    store._p = f"test-ops:{uuid.uuid4().hex[:8]}:"  # this test's keys only
    now = time.time()
    context = {"problem": "missing_item", "reason": "frustration", "customer": {"display_name": "デモ 太郎"}}
    await store.open(Case("C-OPS-OPEN", CUSTOMER, dict(context), created_at=now - 600))
    await store.open(Case("C-OPS-CLAIMED", "U" + "5" * 32, dict(context), created_at=now - 300))
    await store.claim("C-OPS-CLAIMED", "U0AGENT001", "Sam Lee", now - 240)
    await store.open(Case("C-OPS-DONE", "U" + "6" * 32, dict(context), created_at=now - 900))
    await store.resolve("C-OPS-DONE", "U0AGENT001", "Sam Lee", now - 60)
    yield store
    await store.close()


async def client_for(tmp_path, cases, token):
    client = TestClient(TestServer(create_app(settings(tmp_path, token), store=MemoryEventStore(), cases=cases)))
    await client.start_server()
    return client


async def test_the_open_and_claimed_cases_for_the_ops_token_only(tmp_path, cases):
    client = await client_for(tmp_path, cases, OPS_TOKEN)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong-" + OPS_TOKEN}, {"Authorization": OPS_TOKEN}):
            response = await client.get("/ops/cases", headers=headers)
            assert response.status == 401
            assert "C-OPS" not in await response.text()
        response = await client.get("/ops/cases", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert response.status == 200
        body = await response.json()
        rows = {c.case_id: c for c in (LiveCase.from_dict(d) for d in body["cases"])}
        assert set(rows) == {"C-OPS-OPEN", "C-OPS-CLAIMED"}  # the resolved one is the database's business
        assert (rows["C-OPS-CLAIMED"].status, rows["C-OPS-CLAIMED"].agent_name) == ("claimed", "Sam Lee")
        assert rows["C-OPS-CLAIMED"].claimed_at is not None and rows["C-OPS-OPEN"].status == "open"
        assert (rows["C-OPS-OPEN"].problem, rows["C-OPS-OPEN"].reason) == ("missing_item", "frustration")
        text = await response.text()
        assert CUSTOMER not in text and "デモ" not in text and "\\u30c7" not in text  # no customer in it
        # the webhook is not opened by the ops token (its own signature still rules)
        assert (
            await client.post("/line/webhook", data=b"{}", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        ).status == 401
    finally:
        await client.close()


async def test_without_a_token_the_route_is_off_and_the_gateway_runs(tmp_path, cases):
    for token in (None, "short"):  # a token under 16 characters is no secret: off too
        client = await client_for(tmp_path, cases, token)
        try:
            response = await client.get("/ops/cases", headers={"Authorization": "Bearer short"})
            assert response.status == 503 and "OPS_API_TOKEN" in (await response.json())["error"]
            assert (await client.get("/livez")).status == 200
        finally:
            await client.close()


async def test_follow_ups_skipped_for_the_push_budget_by_month(tmp_path, cases):
    from gateway.app import GATEWAY

    client = await client_for(tmp_path, cases, OPS_TOKEN)
    try:
        store = client.server.app[GATEWAY].follow_ups.store
        for _ in range(2):
            await store.count_skipped("2026-11")
        await store.count_skipped("2026-12")
        await store.count_skipped("2026-09")  # outside the period asked for
        assert (await client.get("/ops/follow_ups")).status == 401
        ops = {"Authorization": f"Bearer {OPS_TOKEN}"}
        # November 1st to December 31st, Japan time
        period = {"from": "2026-11-01T00:00:00+09:00", "to": "2027-01-01T00:00:00+09:00"}
        body = await (await client.get("/ops/follow_ups", params=period, headers=ops)).json()
        assert body["months"]["2026-11"]["skipped"] == 2 and body["skipped_budget"] == 3
        assert set(body["months"]) == {"2026-11", "2026-12"}
        bad = await client.get("/ops/follow_ups", params={"from": "last week"}, headers=ops)
        assert bad.status == 400
    finally:
        await client.close()
