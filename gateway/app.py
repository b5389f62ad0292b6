"""The gateway's aiohttp application: POST /line/webhook, POST /slack/events, GET /healthz
(does the bot answer?), GET /readyz (can this gateway record webhooks?), GET /livez, and
GET /ops/cases and /ops/follow_ups (live cases, follow-ups skipped for the push budget: for
the workbench; gateway/ops.py).

Webhook path (LINE counts a webhook as failed after 2 s, so the ack comes first):
  raw body -> X-Line-Signature verified FIRST (missing/wrong: 401, nothing parsed or
  stored, one log line without the body) -> JSON must be a LINE webhook (an `events`
  list; else 400 with a clear log line) -> each event checked (a malformed one is logged
  and skipped) and recorded in the event store (dedupe by webhookEventId: a redelivered
  event is not recorded or answered again) -> queued on the per-user serializer -> 200.
  Documented events that concern no chat (no `source`: module attach/detach, activated /
  deactivated, botSuspended / botResumed, PNP delivery) and events of types the gateway
  does not act on without a usable source (future types too) are valid: acknowledged,
  logged as ignored (info), not recorded. Only message, postback and follow must name a
  chat: the processor answers those.
  The work (processor.py) happens after the ack, per user in timestamp order.

If the event store is unreachable the webhook answers 500, so LINE redelivers (when
redelivery is on) rather than the gateway acking something it could lose.

Background: on startup pending events are resumed; a retry loop re-submits pending
events (Rasa / action server were down) with backoff once both answer again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Dict, Optional, Tuple

from aiohttp import web

from gateway.attachments import make_attachment_store
from gateway.config import Settings
from gateway.core.cases import CaseStore, make_case_store
from gateway.core.events import PENDING, EventStore, StoredEvent, make_event_store
from gateway.core.handoff import HandoffService
from gateway.core.ordering import LocalLease, RedisUserLease, UserSerializer
from gateway.core.rasa_client import RasaClient
from gateway.core.replies import load_reply_book
from gateway.customer import LineCustomerChannel
from gateway.customer_input import PostbackSigner
from gateway.follow_ups import FollowUps, make_clock, make_follow_up_store
from gateway.health import HealthChecker
from gateway.line.api import LineApi
from gateway.line.profiles import ProfileCache
from gateway.line.signature import HEADER, verify
from gateway.ops import register as register_ops
from gateway.processor import LineEventProcessor
from gateway.slack import app as slack_app
from gateway.slack.desk import SlackDesk, UnconfiguredDesk, make_web_client
from gateway.slack.ops_alerts import OpsAlerts, make_ops_alert_store

log = logging.getLogger(__name__)

GATEWAY: web.AppKey["Gateway"] = web.AppKey("gateway")


# A LINE timestamp is epoch milliseconds; the journal orders by it as a Redis score (a
# double), so anything beyond 2**53 cannot be a real event and would fail the write.
MAX_TIMESTAMP_MS = 2**53
# The event types the processor acts on, reading their source (whom to answer); without a
# usable source such an event is malformed, any other is valid and simply ignored.
CHAT_EVENTS = ("message", "postback", "follow")
NO_CHAT = "concerns no chat"  # parse_event's reason for a valid event with nothing to do


def parse_event(raw: Any) -> Tuple[Optional[Tuple[str, str, int]], str]:
    """(event id, ordering key, timestamp) of a LINE event, or (None, why it's malformed),
    or (None, NO_CHAT) for a valid event without a chat that is not one of CHAT_EVENTS.

    Only whole events may be recorded: anything the journal or the processor could not
    handle later (wrong types, a timestamp Redis cannot store, text that is not Unicode)
    is refused here, before a single key is written."""
    if not isinstance(raw, dict):
        return None, "event is not an object"
    event_id = raw.get("webhookEventId")
    if not isinstance(event_id, str) or not event_id:
        return None, "no webhookEventId"
    if not isinstance(raw.get("type"), str):
        return None, "no type"
    ts = raw.get("timestamp")
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 < ts < MAX_TIMESTAMP_MS:
        return None, "no valid timestamp"
    source = raw.get("source")
    key = source.get("userId") or source.get("groupId") or source.get("roomId") if isinstance(source, dict) else None
    if not isinstance(key, str) or not key:
        if raw["type"] not in CHAT_EVENTS:
            return None, NO_CHAT
        return None, "no source" if not isinstance(source, dict) else "no user, group or room id"
    for part in ("message", "postback", "link"):  # the processor reads these as objects
        if raw.get(part) is not None and not isinstance(raw[part], dict):
            return None, f"{part} is not an object"
    try:  # JSON may escape lone surrogates ("\\ud800"): not Unicode, cannot be stored
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return None, "not storable as UTF-8 JSON"
    return (event_id, key, ts), ""


class Gateway:
    """Everything the app runs; built on startup (inside the event loop)."""

    def __init__(
        self, settings: Settings, store: Optional[EventStore] = None, cases: Optional[CaseStore] = None
    ) -> None:
        self.settings = settings
        s = settings
        self.store: EventStore = store or make_event_store(s.redis_url)
        self.cases: CaseStore = cases or make_case_store(s.redis_url)
        self.line = LineApi(s.channel_access_token, s.line_api_base_url, s.line_data_api_base_url)
        self.rasa = RasaClient(s.rasa_url, s.rasa_token, timeout_s=s.rasa_timeout_s)
        self.health = HealthChecker(s.rasa_url, s.rasa_token, s.action_server_health_url)
        self.attachments = make_attachment_store(s.attachments_dir, s.redis_url)
        self.lease = RedisUserLease.from_url(s.redis_url) if s.redis_url else LocalLease()
        # one key for every replica and restart: buttons sent earlier still verify
        self.postbacks = PostbackSigner.from_settings(s)
        # Slack side of handoffs; without a bot token cases are kept (not posted) until one is set
        self.slack_desk: Optional[SlackDesk] = None
        if s.slack_bot_token and s.slack_handoff_channel:
            self.slack_desk = SlackDesk(
                make_web_client(s.slack_bot_token, s.slack_api_base_url),
                s.slack_handoff_channel,
                oncall_mention=s.slack_oncall_mention,
                supervisor_channel=s.slack_supervisor_channel,
                supervisor_ids=s.slack_supervisor_ids,
            )
        self.handoff = HandoffService(
            self.cases,
            self.rasa,
            self.slack_desk or UnconfiguredDesk(),
            LineCustomerChannel(self.line, self.postbacks, mark_as_read=s.line_mark_as_read),
            reannounce_after_s=s.slack_reannounce_after_s,
            approval_key=s.agent_approval_key,
            replies=load_reply_book(s.agent_replies_path),
        )
        self.slack_app = (
            slack_app.build_slack_app(
                signing_secret=s.slack_signing_secret or "",
                desk=self.slack_desk,
                service=self.handoff,
                first_time=self.cases.first_time,
            )
            if self.slack_desk is not None
            else None
        )
        self.processor = LineEventProcessor(
            self.store,
            self.line,
            self.rasa,
            self.health,
            self.attachments,
            self.handoff,
            profiles=ProfileCache(self.line, ttl_s=s.profile_cache_ttl_s),
            loading_seconds=s.loading_seconds,
            reply_token_max_age_s=s.reply_token_max_age_s,
            retry_min_s=s.retry_min_s,
            retry_max_s=s.retry_max_s,
            postbacks=self.postbacks,
            mark_as_read=s.line_mark_as_read,
            account_link_login_url=s.account_link_login_url,
        )
        self.serializer = UserSerializer(self.processor.handle, lease=self.lease, max_concurrency=s.max_concurrency)
        # "did it arrive?" once a promised remedy's time has passed (gateway/follow_ups.py)
        self.follow_ups = FollowUps(
            make_follow_up_store(s.redis_url),
            self.rasa,
            self.line,
            self.cases,
            self.postbacks,
            lease=self.lease,
            after_s=s.follow_up_after_s,
            budget=s.line_push_budget_monthly,
            clock=make_clock(s.follow_up_clock_offset_file, s.line_api_base_url),
        )
        self.processor.turn.follow_ups = self.follow_ups  # the bot's answers schedule them
        # recurring-problem alerts in the bot's answers: to Slack, never to LINE (gateway/slack/ops_alerts.py)
        self.ops_alerts = OpsAlerts(
            make_ops_alert_store(s.redis_url),
            self.slack_desk.client if self.slack_desk is not None else None,
            s.slack_ops_channel or s.slack_handoff_channel,
        )
        self.processor.turn.ops_alerts = self.ops_alerts
        self._retry_task: Optional[asyncio.Task] = None
        self._announce_task: Optional[asyncio.Task] = None
        self._follow_up_task: Optional[asyncio.Task] = None
        self.stats: Dict[str, int] = {"accepted": 0, "duplicates": 0, "skipped": 0, "ignored": 0, "refused": 0}

    async def start(self) -> None:
        resumed = 0
        try:
            for ev in await self.store.pending():
                resumed += self.serializer.submit(ev)
        except Exception as exc:
            log.error("could not read pending events on startup (%s); the retry loop will", type(exc).__name__)
        if resumed:
            log.info("resumed %d pending events", resumed)
        self._retry_task = asyncio.create_task(self._retry_loop())
        self._announce_task = asyncio.create_task(self._announce_loop())
        self._follow_up_task = asyncio.create_task(self.follow_ups.run_forever(self.settings.follow_up_interval_s))

    async def stop(self) -> None:
        for task in (self._retry_task, self._announce_task, self._follow_up_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.serializer.aclose()  # unfinished events stay pending for the next start
        for closer in (
            self.line.close,
            self.rasa.close,
            self.health.close,
            self.store.close,
            self.cases.close,
            self.attachments.close,
            self.follow_ups.close,
            self.ops_alerts.close,
            getattr(self.lease, "close", None),
        ):
            if closer is None:
                continue
            try:
                await closer()
            except Exception:
                pass

    async def _retry_loop(self) -> None:
        s = self.settings
        delay = s.retry_min_s
        waiting = False  # logged once per outage, not every tick
        while True:
            await asyncio.sleep(delay)
            try:
                now = time.time()
                due = [
                    e
                    for e in await self.store.pending()
                    if now - e.received_at >= s.retry_min_s and self.processor.due(e.event_id)
                ]
                if not due:
                    delay = s.retry_min_s
                    continue
                if not await self.health.ready():
                    delay = min(delay * 2, s.retry_max_s)
                    if not waiting:
                        log.warning("%d events pending; waiting for Rasa and the action server to answer", len(due))
                    waiting = True
                    continue
                if waiting:
                    log.info("Rasa and the action server answer again; retrying")
                    waiting = False
                submitted = 0
                for e in due:
                    # finished while we looked? (a queued one is refused by submit anyway)
                    if await self.store.status(e.event_id) == PENDING:
                        submitted += self.serializer.submit(e)
                if submitted:
                    log.info("retrying %d pending events", submitted)
                delay = s.retry_min_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(delay * 2, s.retry_max_s)
                log.warning("retry loop: %s; next try in %.0f s", type(exc).__name__, delay)

    async def _announce_loop(self) -> None:
        """Cases whose Slack post failed are posted again; unclaimed ones are re-announced."""
        while True:
            await self.ops_alerts.post_pending()  # alerts Slack did not take yet (never raises)
            try:
                if self.slack_desk is not None:
                    await self.handoff.announce_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("case announcer: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.case_announce_interval_s)

    # --- HTTP handlers ---------------------------------------------------------------------
    async def slack_events(self, request: web.Request) -> web.Response:
        if self.slack_app is None:
            return web.json_response({"message": "Slack is not configured"}, status=503)
        return await slack_app.handle(self.slack_app, request, signing_secret=self.settings.slack_signing_secret or "")

    async def line_webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get(HEADER)
        if not verify(body, signature, self.settings.channel_secret):
            self.stats["refused"] += 1
            log.warning(
                "LINE webhook refused: %s signature (%d bytes)", "missing" if not signature else "invalid", len(body)
            )
            return web.json_response({"message": "invalid signature"}, status=401)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            log.warning("LINE webhook refused: signed body is not JSON (%d bytes)", len(body))
            return web.json_response({"message": "body is not JSON"}, status=400)
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            log.warning("LINE webhook refused: JSON without an `events` list is not a LINE webhook")
            return web.json_response({"message": "not a LINE webhook: no events list"}, status=400)
        accepted = duplicates = skipped = ignored = 0
        for raw in data["events"]:
            parsed, why = parse_event(raw)
            if parsed is None and why == NO_CHAT:
                ignored += 1
                log.info("LINE %s event without a chat: acknowledged, nothing to do", raw["type"][:40])
                continue
            if parsed is None:
                skipped += 1
                log.warning("skipping a malformed LINE event: %s", why)
                continue
            event_id, key, ts = parsed
            try:
                new = await self.store.record(event_id, key, ts, raw)
            except Exception as exc:
                log.error("event store unavailable (%s); webhook answered 500 so LINE redelivers", type(exc).__name__)
                return web.json_response({"message": "temporarily unavailable"}, status=500)
            if not new:
                duplicates += 1
                context = raw.get("deliveryContext")
                redelivery = isinstance(context, dict) and bool(context.get("isRedelivery"))
                log.info("event already recorded; ignored (redelivery=%s)", redelivery)
                continue
            accepted += 1
            self.serializer.submit(StoredEvent(event_id, key, ts, raw, time.time()))
        self.stats["accepted"] += accepted
        self.stats["duplicates"] += duplicates
        self.stats["skipped"] += skipped
        self.stats["ignored"] += ignored
        return web.json_response(
            {"accepted": accepted, "duplicates": duplicates, "skipped": skipped, "ignored": ignored}
        )

    async def readyz(self, request: web.Request) -> web.Response:
        """Can this gateway take webhooks now? Only its event store matters: with Rasa or the
        action server down it still acks, keeps the events and answers later, so a load
        balancer must keep sending it traffic (GET /healthz says whether the bot answers)."""
        ok = await self.store.ping()
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "event_store": ok}, status=200 if ok else 503
        )

    async def healthz(self, request: web.Request) -> web.Response:
        checks = await self.health.check()
        ok = all(checks.values())
        return web.json_response({"status": "ok" if ok else "unavailable", **checks}, status=200 if ok else 503)


def create_app(
    settings: Settings, store: Optional[EventStore] = None, cases: Optional[CaseStore] = None
) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)

    async def on_startup(app: web.Application) -> None:
        gateway = Gateway(settings, store=store, cases=cases)
        app[GATEWAY] = gateway
        await gateway.start()

    async def on_cleanup(app: web.Application) -> None:
        await app[GATEWAY].stop()

    async def webhook(request: web.Request) -> web.Response:
        return await request.app[GATEWAY].line_webhook(request)

    async def healthz(request: web.Request) -> web.Response:
        return await request.app[GATEWAY].healthz(request)

    async def slack_events(request: web.Request) -> web.Response:
        return await request.app[GATEWAY].slack_events(request)

    async def livez(request: web.Request) -> web.Response:
        # The process serves requests; restarting it would not fix anything it depends on.
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        return await request.app[GATEWAY].readyz(request)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/line/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/slack/events", slack_events)
    # GET /ops/cases, /ops/follow_ups: live cases, push-budget skips (gateway/ops.py; OPS_API_TOKEN)
    register_ops(
        app,
        settings.ops_api_token,
        lambda request: request.app[GATEWAY].cases,
        lambda request: request.app[GATEWAY].follow_ups.store,
    )
    return app


__all__ = ["CHAT_EVENTS", "GATEWAY", "Gateway", "NO_CHAT", "create_app", "parse_event"]
