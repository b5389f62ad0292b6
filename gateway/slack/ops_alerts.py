"""Operations alerts in Slack: the same item or shop failing again (contracts/ops_alerts.py).

The bot sends an alert in its answer (`{"ops_alert": {...}}`, bot/actions/recurring.py)
once per burst. Here it is taken out of the answer before anything is drawn for LINE (the
customer never sees it), recorded (Redis, or memory without REDIS_URL) and posted to
SLACK_OPS_CHANNEL (without one, to the handoff channel) with the shop, the item, the
count and the cases.

Slack down must not lose an alert: it is recorded before the customer's turn goes on, and
stays pending until Slack takes it; the gateway's announcer loop (app.py, the one that
re-posts case cards Slack did not take) calls `post_pending` every round. Each alert id
is recorded once (a retried turn or a second gateway brings it again: nothing new), and a
short lease per alert keeps two gateways from posting the same one at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Dict, List, Optional, Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from contracts.ops_alerts import OpsAlert, ops_alerts_in, without_ops_alerts
from contracts.vocabulary import problem_label

log = logging.getLogger(__name__)

# An alert is remembered this long after it was recorded (its id dedupes retried turns).
KEEP_S = 30 * 24 * 3600
# One gateway posts an alert at a time; a lease a crashed gateway left runs out after this.
LEASE_S = 30


class OpsAlertStore:
    """Where alerts wait for Slack: recorded once per id, pending until posted."""

    async def add(self, alert: OpsAlert) -> bool:
        """Records the alert as pending; False when this id was recorded before."""
        raise NotImplementedError

    async def pending(self) -> List[OpsAlert]:
        raise NotImplementedError

    async def lease(self, alert_id: str) -> bool:
        """True when this gateway may post the alert now (nobody else is posting it)."""
        raise NotImplementedError

    async def release(self, alert_id: str) -> None:
        """Gives the lease back after a failed post, so the next round tries at once."""
        return None

    async def posted(self, alert_id: str, channel: str, ts: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class MemoryOpsAlertStore(OpsAlertStore):
    def __init__(self) -> None:
        self._alerts: Dict[str, Dict[str, Any]] = {}
        self._pending: List[str] = []

    async def add(self, alert: OpsAlert) -> bool:
        if alert.alert_id in self._alerts:
            return False
        self._alerts[alert.alert_id] = {"alert": alert.to_dict()}
        self._pending.append(alert.alert_id)
        return True

    async def pending(self) -> List[OpsAlert]:
        return [OpsAlert.from_dict(self._alerts[i]["alert"]) for i in self._pending]

    async def lease(self, alert_id: str) -> bool:
        return alert_id in self._pending

    async def posted(self, alert_id: str, channel: str, ts: str) -> None:
        self._alerts[alert_id].update(channel=channel, ts=ts)
        if alert_id in self._pending:
            self._pending.remove(alert_id)


class RedisOpsAlertStore(OpsAlertStore):
    """Keys (prefix gw:ops_alert:): alert:<id> (JSON: the alert, then where it was posted),
    pending (sorted set of ids by the time recorded), lease:<id>."""

    def __init__(self, redis: Any, prefix: str = "gw:ops_alert:") -> None:
        self._r = redis
        self._p = prefix

    @classmethod
    def from_url(cls, url: str) -> "RedisOpsAlertStore":
        import redis.asyncio as aioredis

        return cls(aioredis.Redis.from_url(url, decode_responses=True))

    def _k(self, *parts: str) -> str:
        return self._p + ":".join(parts)

    async def add(self, alert: OpsAlert) -> bool:
        record = json.dumps({"alert": alert.to_dict()}, ensure_ascii=False)
        if not await self._r.set(self._k("alert", alert.alert_id), record, nx=True, ex=KEEP_S):
            return False
        await self._r.zadd(self._k("pending"), {alert.alert_id: time.time()}, nx=True)
        return True

    async def pending(self) -> List[OpsAlert]:
        ids = await self._r.zrange(self._k("pending"), 0, -1)
        alerts = []
        for alert_id in ids:
            raw = await self._r.get(self._k("alert", alert_id))
            if raw is None:  # expired unposted (Slack down for a month): nothing left to post
                await self._r.zrem(self._k("pending"), alert_id)
                continue
            alerts.append(OpsAlert.from_dict(json.loads(raw)["alert"]))
        return alerts

    async def lease(self, alert_id: str) -> bool:
        return bool(await self._r.set(self._k("lease", alert_id), "1", nx=True, ex=LEASE_S))

    async def release(self, alert_id: str) -> None:
        await self._r.delete(self._k("lease", alert_id))

    async def posted(self, alert_id: str, channel: str, ts: str) -> None:
        key = self._k("alert", alert_id)
        raw = await self._r.get(key)
        record = json.loads(raw) if raw else {}
        record.update(channel=channel, ts=ts)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(record, ensure_ascii=False), ex=KEEP_S)
            pipe.zrem(self._k("pending"), alert_id)
            pipe.delete(self._k("lease", alert_id))
            await pipe.execute()

    async def close(self) -> None:
        await self._r.aclose()


def make_ops_alert_store(redis_url: Optional[str]) -> OpsAlertStore:
    return RedisOpsAlertStore.from_url(redis_url) if redis_url else MemoryOpsAlertStore()


def _why(exc: BaseException) -> str:
    """Slack's error code (channel_not_found, not_in_channel: the operator's to fix) or the class."""
    data = getattr(getattr(exc, "response", None), "data", None)
    if isinstance(exc, SlackApiError) and isinstance(data, dict) and data.get("error"):
        return f"Slack: {data['error']}"
    return type(exc).__name__


def _plain(text: str) -> str:
    """Text shown as written: only &, < and > are special in Slack's mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_message(alert: OpsAlert) -> Dict[str, Any]:
    """chat.postMessage arguments (text + blocks): what failed where, how often, which cases."""
    if alert.kind == "same_item_at_shop":
        item = alert.item_name_ja or alert.sku or "?"
        english = f" ({alert.item_name_en})" if alert.item_name_en else ""
        what = f"{item}{english}: {problem_label(alert.problem).bilingual()}"
    else:
        what = "problems in several orders / 複数の注文で不具合"
    headline = (
        f"Recurring problem at {alert.shop}: {what} in {alert.count} orders within {alert.window_hours} h"
        f" (alert at {alert.threshold})"
    )
    cases = ", ".join(alert.case_ids) or "-"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "🔁 Recurring problem / 繰り返しの不具合"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Shop / 店舗*\n{_plain(alert.shop)}"},
                {"type": "mrkdwn", "text": f"*What / 内容*\n{_plain(what)}"},
                {
                    "type": "mrkdwn",
                    "text": f"*Count / 件数*\n{alert.count} orders in {alert.window_hours} h (alert at {alert.threshold})",
                },
                {"type": "mrkdwn", "text": f"*Since / 期間*\n{_plain(alert.window_start)}"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Cases / ケース*\n{_plain(cases)}"[:3000]}},
    ]
    return {"text": f"🔁 {headline}. Cases: {cases}"[:3000], "blocks": blocks}


class OpsAlerts:
    """Takes the bot's alerts out of its answers and gets each to Slack once."""

    def __init__(self, store: OpsAlertStore, client: Optional[AsyncWebClient], channel: Optional[str]) -> None:
        self.store = store
        self.client = client
        self.channel = channel
        self._lock = asyncio.Lock()
        self._tasks: set = set()

    async def take(self, responses: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The answer without its alerts, each recorded first (a Redis failure fails the
        turn, which is retried: the alert is not dropped) and posted in the background."""
        alerts = ops_alerts_in(responses)
        if not alerts:
            return list(responses)
        for alert in alerts:
            await self.store.add(alert)
        task = asyncio.create_task(self.post_pending())  # the customer's answer does not wait for Slack
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return without_ops_alerts(responses)

    async def post_pending(self) -> int:
        """Posts the alerts Slack has not taken yet, oldest first; stops at the first
        failure (Slack down: the next round tries again). The number posted."""
        if self.client is None or not self.channel:
            return 0  # kept until Slack is configured
        posted = 0
        async with self._lock:
            try:
                pending = await self.store.pending()
            except Exception as exc:  # noqa: BLE001 - the announcer loop must go on
                log.warning("ops alerts not read (%s); next round", type(exc).__name__)
                return 0
            for alert in pending:
                try:
                    if not await self.store.lease(alert.alert_id):
                        continue  # another gateway is posting it
                    response = await self.client.chat_postMessage(channel=self.channel, **alert_message(alert))
                    await self.store.posted(
                        alert.alert_id, str(response.get("channel") or self.channel), response["ts"]
                    )
                    posted += 1
                except asyncio.CancelledError:  # the gateway stops mid-post: the next one posts it at once
                    await self._release(alert.alert_id)
                    raise
                except Exception as exc:  # noqa: BLE001 - Slack (or Redis) down: kept for the next round
                    log.warning("ops alert not posted (%s); kept for the next round", _why(exc))
                    await self._release(alert.alert_id)
                    break
        return posted

    async def _release(self, alert_id: str) -> None:
        try:
            await self.store.release(alert_id)
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            pass

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()


__all__ = [
    "MemoryOpsAlertStore",
    "OpsAlertStore",
    "OpsAlerts",
    "RedisOpsAlertStore",
    "alert_message",
    "make_ops_alert_store",
]
