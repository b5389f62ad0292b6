"""A local Slack Web API emulator (aiohttp) for tests and the local demo.

Give slack_sdk the URL `start()` returns (`AsyncWebClient(token, base_url=url)`, or
SLACK_API_BASE_URL=http://127.0.0.1:8092/api/ for a separate process). Arguments are
read as slack_sdk sends them: query string, form body or JSON body (merged in that order).

    POST|GET /api/{method}
        auth.test, chat.postMessage, chat.update, chat.postEphemeral,
        conversations.members, conversations.info, conversations.replies, users.info,
        reactions.add, files.getUploadURLExternal, files.completeUploadExternal,
        chat.getPermalink, views.open
    POST /upload/v1/{upload_id}     the upload URL files.getUploadURLExternal hands out
                                    (raw body or multipart `file`, no auth, like Slack's)

Like Slack: the token comes from `Authorization: Bearer` (or a `token` argument); none ->
HTTP 200 {"ok": false, "error": "not_authed"}, a wrong one -> "invalid_auth"; an unknown
method -> HTTP 404 "unknown_method"; errors are HTTP 200 {"ok": false, "error": ...}.
`fail_next` injects 429 (with Retry-After), 5xx (plain body) or an `ok: false` error.

Emulator-only endpoints (no auth, not recorded in `calls`):
    GET  /_emulator/calls[?method=chat.postMessage]
    GET  /_emulator/messages[?channel=C..&thread_ts=..]   current state, after updates
    GET  /_emulator/thread?channel=C..&ts=..               parent + replies
    GET  /_emulator/uploads
    GET  /_emulator/ephemerals
    GET  /_emulator/responses                              what apps posted to response_urls
    GET  /_emulator/events                                 echoed bot events and results
    POST /_emulator/reset
    POST /_emulator/fail          JSON {"method", "status", "count", "retry_after", "error"}
    POST /_emulator/user_message  JSON {"channel", "user", "text", "thread_ts"} -> {"ts", ...}
    POST /_emulator/response/{id}?channel=C..&ts=..   a response_url (replace_original,
                                  delete_original, response_type in_channel|ephemeral)
    POST /_emulator/triggers      JSON {"trigger_id", "user"}: a trigger_id an interaction
                                  carries (SlackEventsClient registers each one it sends)
    GET  /_emulator/views[?id=V..]                         views opened with views.open
    POST /_emulator/views/{id}/submitted   JSON {"status", "response"}: the app's answer to
                                  a view_submission (closes the modal unless it kept it open)

views.open works as Slack documents it: a trigger_id is required, one the emulator issued
(`issue_trigger`, or registered by the client), exchanged once (`exchanged_trigger_id`),
within 3 s (`expired_trigger_id`; anything else `invalid_trigger_id`); the view is checked
(modal, title/submit/close <= 24 characters, <= 100 blocks, callback_id <= 255,
private_metadata <= 3000, a submit when there are input blocks) and returned with its id.

Run as a process: `python -m devkit.emulators.slack_api --port 8092 --token xoxb-test`
(token and signing secret default to SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl

from aiohttp import web

DEFAULT_TEAM_ID = "T0000000001"
DEFAULT_BOT_USER_ID = "U0BOT00001"
DEFAULT_BOT_ID = "B0BOT00001"
DEFAULT_APP_ID = "A0000000001"
HANDOFF_CHANNEL = "C0HANDOFF1"
AGENT_1 = "U0AGENT001"
AGENT_2 = "U0AGENT002"
OUTSIDER = "U0OUTSIDER"

DEFAULT_CHANNELS: Dict[str, List[str]] = {HANDOFF_CHANNEL: [AGENT_1, AGENT_2]}
DEFAULT_CHANNEL_NAMES: Dict[str, str] = {HANDOFF_CHANNEL: "order-support-handoff"}
DEFAULT_USERS: Dict[str, Dict[str, str]] = {
    AGENT_1: {"name": "sato", "real_name": "佐藤 花子"},
    AGENT_2: {"name": "alex", "real_name": "Alex Kim"},
    OUTSIDER: {"name": "gaibu", "real_name": "外部 太郎"},
}

MAX_TEXT = 40000
MAX_BLOCKS = 50
UPLOAD_METHOD = "upload"  # name used by fail_next()/calls for the upload URL step


class SlackError(Exception):
    """A Slack `ok: false` answer (HTTP 200 unless `status` says otherwise)."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


@dataclass
class _Failure:
    method: str
    status: int
    remaining: int
    retry_after: Optional[int]
    error: Optional[str]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _json_arg(value: Any, name: str) -> Any:
    """Blocks/files arrive as lists in JSON bodies and as JSON strings in forms."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{name}") from None
    return value


def _text_len(obj: Any) -> int:
    if isinstance(obj, dict):
        return len(str(obj.get("text", "")))
    return 0


def _plain_text_errors(obj: Any, max_len: int, p: str) -> List[str]:
    if not isinstance(obj, dict) or obj.get("type") != "plain_text" or not isinstance(obj.get("text"), str):
        return [f"must be a plain_text object {p}]"]
    if not obj["text"]:
        return [f"must be more than 0 characters {p}/text]"]
    if len(obj["text"]) > max_len:
        return [f"must be less than {max_len + 1} characters {p}/text]"]
    return []


def _option_errors(options: Any, p: str, max_options: int) -> List[str]:
    if not isinstance(options, list) or not 1 <= len(options) <= max_options:
        return [f"must have 1 to {max_options} options {p}]"]
    errors: List[str] = []
    for k, o in enumerate(options):
        if not isinstance(o, dict):
            errors.append(f"must be an object {p}/{k}]")
            continue
        errors += _plain_text_errors(o.get("text"), 75, f"{p}/{k}/text")
        if not isinstance(o.get("value"), str) or not 0 < len(o["value"]) <= 150:
            errors.append(f"must be 1 to 150 characters {p}/{k}/value]")
    return errors


def _element_errors(el: Dict[str, Any], p: str) -> List[str]:
    """The limits of the interactive elements the gateway uses (selects, inputs, overflow)."""
    kind, errors = el.get("type"), []
    if kind in ("static_select", "overflow"):
        errors += _option_errors(el.get("options"), f"{p}/options", 5 if kind == "overflow" else 100)
        initial = el.get("initial_option")
        if initial is not None and initial not in (el.get("options") or []):
            errors.append(f"must match one of the options {p}/initial_option]")
    if kind in ("static_select", "users_select") and el.get("placeholder") is not None:
        errors += _plain_text_errors(el.get("placeholder"), 150, f"{p}/placeholder")
    if kind == "number_input":
        if not isinstance(el.get("is_decimal_allowed"), bool):
            errors.append(f"missing required field: is_decimal_allowed {p}]")
        for bound in ("min_value", "max_value", "initial_value"):
            value = el.get(bound)
            if value is not None:
                try:
                    float(value) if el.get("is_decimal_allowed") else int(str(value))
                except ValueError:
                    errors.append(f"must be a number {p}/{bound}]")
    if kind == "plain_text_input":
        max_length = el.get("max_length", 3000)
        if not isinstance(max_length, int) or not 1 <= max_length <= 3000:
            errors.append(f"must be 1 to 3000 {p}/max_length]")
            max_length = 3000
        initial = el.get("initial_value")
        if initial is not None and (not isinstance(initial, str) or len(initial) > max_length):
            errors.append(f"must be a string of at most {max_length} characters {p}/initial_value]")
    return errors


INPUT_ELEMENTS = (
    "plain_text_input",
    "number_input",
    "static_select",
    "users_select",
    "multi_static_select",
    "multi_users_select",
    "conversations_select",
    "channels_select",
    "datepicker",
    "timepicker",
    "checkboxes",
    "radio_buttons",
    "email_text_input",
    "url_text_input",
)


def validate_blocks(blocks: Any, max_blocks: int = MAX_BLOCKS) -> List[str]:
    """Slack's main Block Kit limits; returns error strings (empty when valid)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    errors: List[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    block_ids: Set[str] = set()
    for i, b in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            errors.append(f"missing required field: type {where}")
            continue
        block_id = b.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > 255:
                errors.append(f"must be less than 256 characters {where[:-1]}/block_id]")
            if block_id in block_ids:
                errors.append(f"duplicate block_id {where[:-1]}/block_id]")
            block_ids.add(block_id)
        kind = b["type"]
        if kind == "section":
            if "text" not in b and "fields" not in b:
                errors.append(f"must provide text or fields {where}")
            if _text_len(b.get("text")) > 3000:
                errors.append(f"must be less than 3001 characters {where[:-1]}/text/text]")
            fields = b.get("fields") or []
            if len(fields) > 10:
                errors.append(f"no more than 10 items allowed {where[:-1]}/fields]")
            for j, f in enumerate(fields):
                if _text_len(f) > 2000:
                    errors.append(f"must be less than 2001 characters {where[:-1]}/fields/{j}/text]")
        elif kind == "header":
            text = b.get("text")
            if not isinstance(text, dict) or text.get("type") != "plain_text":
                errors.append(f"must be a plain_text object {where[:-1]}/text]")
            elif _text_len(text) > 150:
                errors.append(f"must be less than 151 characters {where[:-1]}/text/text]")
        elif kind == "context":
            elements = b.get("elements") or []
            if not 1 <= len(elements) <= 10:
                errors.append(f"must have 1 to 10 elements {where[:-1]}/elements]")
        elif kind == "actions":
            elements = b.get("elements") or []
            if not 1 <= len(elements) <= 25:
                errors.append(f"must have 1 to 25 elements {where[:-1]}/elements]")
            action_ids: Set[str] = set()
            for j, el in enumerate(elements):
                p = f"{where[:-1]}/elements/{j}"
                if not isinstance(el, dict):
                    errors.append(f"must be an object {p}]")
                    continue
                aid = el.get("action_id")
                if aid is not None:
                    if len(str(aid)) > 255:
                        errors.append(f"must be less than 256 characters {p}/action_id]")
                    if aid in action_ids:
                        errors.append(f"duplicate action_id {p}/action_id]")
                    action_ids.add(aid)
                if el.get("type") == "button":
                    text = el.get("text")
                    if not isinstance(text, dict) or text.get("type") != "plain_text":
                        errors.append(f"must be a plain_text object {p}/text]")
                    elif _text_len(text) > 75:
                        errors.append(f"must be less than 76 characters {p}/text/text]")
                    if len(str(el.get("value", ""))) > 2000:
                        errors.append(f"must be less than 2001 characters {p}/value]")
                    if el.get("style") not in (None, "primary", "danger"):
                        errors.append(f"must be one of primary, danger {p}/style]")
                else:
                    errors += _element_errors(el, p)
        elif kind == "input":
            errors += _plain_text_errors(b.get("label"), 2000, f"{where[:-1]}/label")
            element = b.get("element")
            if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
                errors.append(f"must be an input element {where[:-1]}/element]")
            else:
                errors += _element_errors(element, f"{where[:-1]}/element")
            if b.get("hint") is not None:
                errors += _plain_text_errors(b.get("hint"), 2000, f"{where[:-1]}/hint")
    return errors


MAX_VIEW_BLOCKS = 100
TRIGGER_TTL_S = 3.0  # Slack: a trigger_id can be exchanged once, within 3 seconds


def validate_view(view: Any) -> List[str]:
    """views.open's checks of a modal view (Slack's limits); error strings, empty when valid."""
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    errors: List[str] = []
    if view.get("type") != "modal":
        errors.append("must be modal [json-pointer:/view/type]")
    errors += _plain_text_errors(view.get("title"), 24, "[json-pointer:/view/title")
    for part in ("submit", "close"):
        if view.get(part) is not None:
            errors += _plain_text_errors(view.get(part), 24, f"[json-pointer:/view/{part}")
    blocks = view.get("blocks")
    errors += [
        e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
        for e in validate_blocks(blocks, MAX_VIEW_BLOCKS)
    ]
    if isinstance(blocks, list) and view.get("submit") is None:
        if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks):
            errors.append("must provide a submit when there are input blocks [json-pointer:/view/submit]")
    for name, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
        value = view.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors.append(f"must be a string of at most {limit} characters [json-pointer:/view/{name}]")
    return errors


class SlackApiEmulator:
    """State and handlers of the emulated Slack Web API; `app()` is the aiohttp app."""

    def __init__(
        self,
        bot_token: str,
        *,
        team_id: str = DEFAULT_TEAM_ID,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        channels: Optional[Dict[str, List[str]]] = None,
        users: Optional[Dict[str, Dict[str, str]]] = None,
        events_url: Optional[str] = None,
        signing_secret: Optional[str] = None,
        echo_bot_messages: bool = False,
        api_app_id: str = DEFAULT_APP_ID,
        channel_names: Optional[Dict[str, str]] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.api_app_id = api_app_id
        self.channels: Dict[str, List[str]] = {
            c: list(m) for c, m in (DEFAULT_CHANNELS if channels is None else channels).items()
        }
        self.channel_names: Dict[str, str] = dict(DEFAULT_CHANNEL_NAMES)
        self.channel_names.update(channel_names or {})
        self.users: Dict[str, Dict[str, str]] = {
            u: dict(p) for u, p in (DEFAULT_USERS if users is None else users).items()
        }
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.echo_bot_messages = echo_bot_messages
        self._clock = clock
        self._last_ts_us = 0
        self._app: Optional[web.Application] = None
        self._runner: Optional[web.AppRunner] = None
        self._events_client: Any = None
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self.base_url: Optional[str] = None
        self._init_state()

    def _init_state(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self._messages: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.uploads: List[Dict[str, Any]] = []
        self._files: Dict[str, Dict[str, Any]] = {}  # file id -> pending/complete upload
        self._upload_ids: Dict[str, str] = {}  # upload URL id -> file id
        self.ephemerals: List[Dict[str, Any]] = []
        self.responses: List[Dict[str, Any]] = []
        self.events: List[Dict[str, Any]] = []  # echoed bot events and their HTTP status
        # trigger ids handed out with interactions: id -> {"user", "issued_at", "used"}
        self._triggers: Dict[str, Dict[str, Any]] = {}
        self.views: Dict[str, Dict[str, Any]] = {}  # view id -> {"view", "user", "opened_at", ...}
        self._failures: List[_Failure] = []

    # --- lifecycle ----------------------------------------------------------------------
    def app(self) -> web.Application:
        if self._app is None:
            self._app = self._make_app()
            self._app[EMULATOR_KEY] = self
        return self._app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = a free port); returns the slack_sdk base URL (.../api/)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host if host not in ('0.0.0.0', '') else '127.0.0.1'}:{bound_port}/api/"
        return self.base_url

    @property
    def root_url(self) -> Optional[str]:
        """http://host:port without /api/ (where /_emulator/ lives)."""
        return self.base_url[: -len("/api/")] if self.base_url else None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._events_client is not None:
            await self._events_client.close()
            self._events_client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "SlackApiEmulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def drain(self) -> None:
        """Wait until echoed events have been delivered (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- controls and introspection -----------------------------------------------------
    def reset(self) -> None:
        """Forget calls, messages, uploads, responses and pending failures (not the config)."""
        self._init_state()

    def fail_next(
        self,
        method: str,
        status: int = 500,
        count: int = 1,
        retry_after: Optional[int] = None,
        error: Optional[str] = None,
    ) -> None:
        """The next `count` calls of `method` fail: HTTP 429 + Retry-After, a 5xx with a
        plain body, or (with `error`) HTTP 200 {"ok": false, "error": error}.
        `method` "upload" targets the upload URL step of files_upload_v2."""
        if error is None and status == 429 and retry_after is None:
            retry_after = 1
        self._failures.append(_Failure(method, int(status), int(count), retry_after, error))

    def clear_failures(self) -> None:
        """Drop the failures injected with fail_next that are not used up yet."""
        self._failures.clear()

    def messages(self, channel: Optional[str] = None, thread_ts: Optional[str] = None) -> List[Dict[str, Any]]:
        """Posted messages as they are now (after chat.update), oldest first, each with
        channel, ts, thread_ts (None outside threads; a parent with replies has its own
        ts), text, blocks (None if none), user, bot_id (bot posts), reactions, files.
        With `thread_ts`: the thread's parent and its replies."""
        out = []
        for (ch, ts), m in sorted(self._messages.items(), key=lambda kv: _ts_key(kv[0][1])):
            if channel is not None and ch != channel:
                continue
            if thread_ts is not None and ts != thread_ts and m.get("thread_ts") != thread_ts:
                continue
            m = copy.deepcopy(m)
            m.setdefault("thread_ts", None)
            m.setdefault("blocks", None)
            out.append(m)
        return out

    def thread(self, channel: str, ts: str) -> List[Dict[str, Any]]:
        """A thread's parent followed by its replies, in order."""
        return self.messages(channel, thread_ts=ts)

    def calls_to(self, method: str) -> List[Dict[str, Any]]:
        return [c for c in self.calls if c["method"] == method]

    def issue_trigger(self, user: Optional[str] = None, trigger_id: Optional[str] = None) -> str:
        """A trigger_id as Slack hands one out with an interaction ("132456.7890123.abcdef"):
        views.open takes it once, within TRIGGER_TTL_S of now (the emulator's clock).
        SlackEventsClient registers the ids of its payloads here (POST /_emulator/triggers)."""
        if trigger_id is None:
            trigger_id = new_trigger_id()
        # an id registered again (the same payload sent twice) keeps its age and use
        self._triggers.setdefault(trigger_id, {"user": user, "issued_at": self._clock(), "used": False})
        return trigger_id

    def open_views(self) -> List[Dict[str, Any]]:
        """Views opened with views.open, oldest first: {"id", "user", "view", "opened_at",
        "closed", "submissions"} (a submission recorded by SlackEventsClient.submit_view)."""
        return [copy.deepcopy(v) for v in self.views.values()]

    def view(self, view_id: str) -> Optional[Dict[str, Any]]:
        record = self.views.get(view_id)
        return copy.deepcopy(record["view"]) if record else None

    def add_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: Optional[str] = None,
        blocks: Optional[List[Dict[str, Any]]] = None,
    ) -> str:
        """Store a human's message, as if typed in Slack; returns its ts.
        Raises KeyError for an unknown channel or thread."""
        if channel not in self.channels:
            raise KeyError(f"channel_not_found: {channel}")
        if thread_ts is not None and self._parent(channel, thread_ts) is None:
            raise KeyError(f"thread_not_found: {channel} {thread_ts}")
        ts = self._next_ts()
        msg: Dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "ts": ts,
            "user": user,
            "text": text,
            "team": self.team_id,
            "client_msg_id": _uuid(),
            "blocks": blocks if blocks is not None else rich_text_blocks(text),
            "reactions": [],
        }
        self._store(channel, msg, thread_ts)
        return ts

    # --- plumbing -------------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("POST", "/api/{method}", self._api)
        app.router.add_route("GET", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{upload_id}", self._upload)
        app.router.add_get("/_emulator/calls", self._e_calls)
        app.router.add_get("/_emulator/messages", self._e_messages)
        app.router.add_get("/_emulator/thread", self._e_thread)
        app.router.add_get("/_emulator/uploads", self._e_uploads)
        app.router.add_get("/_emulator/ephemerals", self._e_ephemerals)
        app.router.add_get("/_emulator/responses", self._e_responses)
        app.router.add_get("/_emulator/events", self._e_events)
        app.router.add_post("/_emulator/reset", self._e_reset)
        app.router.add_post("/_emulator/fail", self._e_fail)
        app.router.add_post("/_emulator/user_message", self._e_user_message)
        app.router.add_post("/_emulator/response/{id}", self._e_response)
        app.router.add_post("/_emulator/triggers", self._e_triggers)
        app.router.add_get("/_emulator/views", self._e_views)
        app.router.add_post("/_emulator/views/{id}/submitted", self._e_view_submitted)
        return app

    def _next_ts(self) -> str:
        """Unique, increasing Slack timestamps ("1764090000.000100")."""
        self._last_ts_us = max(int(self._clock() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _take_failure(self, method: str) -> Optional[_Failure]:
        for f in self._failures:
            if f.remaining > 0 and f.method == method:
                f.remaining -= 1
                return f
        return None

    @staticmethod
    def _failure_response(f: _Failure) -> web.Response:
        if f.error is not None:
            return web.json_response({"ok": False, "error": f.error})
        if f.status == 429:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(1 if f.retry_after is None else f.retry_after)},
            )
        headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else None
        return web.Response(
            status=f.status, text=f"emulated HTTP {f.status} failure", content_type="text/plain", headers=headers
        )

    async def _read_args(self, request: web.Request) -> Dict[str, Any]:
        args: Dict[str, Any] = dict(request.query)
        raw = await request.read()
        if not raw:
            return args
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            args.update(body)
        elif ctype == "application/x-www-form-urlencoded":
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        elif ctype.startswith("multipart/"):
            raise SlackError("invalid_form_data")  # slack_sdk uses the upload URL instead
        else:
            raise SlackError("invalid_form_data")
        return args

    def _token(self, request: web.Request, args: Dict[str, Any]) -> Optional[str]:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:].strip():
            return auth[7:].strip()
        token = args.get("token")
        return str(token) if token else None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        entry: Dict[str, Any] = {
            "method": method,
            "args": {},
            "status": None,
            "error": None,
            "time": time.time(),
            "http_method": request.method,
        }
        self.calls.append(entry)
        response = await self._api_inner(request, method, entry)
        entry["status"] = response.status
        return response

    async def _api_inner(self, request: web.Request, method: str, entry: Dict[str, Any]) -> web.Response:
        try:
            args = await self._read_args(request)
        except SlackError as err:
            entry["error"] = err.error
            return web.json_response({"ok": False, "error": err.error})
        token = self._token(request, args)
        args.pop("token", None)
        entry["args"] = args
        handler = self._methods().get(method)
        if handler is None:
            entry["error"] = "unknown_method"
            return web.json_response({"ok": False, "error": "unknown_method", "req_method": method}, status=404)
        if token is None:
            entry["error"] = "not_authed"
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            entry["error"] = "invalid_auth"
            return web.json_response({"ok": False, "error": "invalid_auth"})
        failure = self._take_failure(method)
        if failure is not None:
            entry["error"] = failure.error or ("ratelimited" if failure.status == 429 else f"http_{failure.status}")
            entry["injected"] = True
            return self._failure_response(failure)
        try:
            result = handler(request, args)
        except SlackError as err:
            entry["error"] = err.error
            return web.json_response({"ok": False, "error": err.error, **err.extra}, status=err.status)
        return web.json_response({"ok": True, **result})

    def _methods(self) -> Dict[str, Callable[[web.Request, Dict[str, Any]], Dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.members": self._members,
            "conversations.info": self._conversation_info,
            "conversations.replies": self._replies,
            "users.info": self._user_info,
            "reactions.add": self._reactions_add,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "views.open": self._views_open,
            "chat.getPermalink": self._get_permalink,
        }

    # --- helpers over the state ---------------------------------------------------------
    def _channel(self, args: Dict[str, Any], key: str = "channel") -> str:
        channel = str(args.get(key) or "")
        if not channel:
            raise SlackError("channel_not_found")
        if channel.startswith("#"):
            for cid, name in self.channel_names.items():
                if name == channel[1:]:
                    return cid
            raise SlackError("channel_not_found")
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        return channel

    def _parent(self, channel: str, thread_ts: str) -> Optional[Dict[str, Any]]:
        """The thread's parent: thread_ts must be a top-level message of the channel."""
        msg = self._messages.get((channel, str(thread_ts)))
        if msg is None:
            return None
        parent_of = msg.get("thread_ts")
        if parent_of and parent_of != msg["ts"]:
            return None  # a reply's ts is not a thread (Slack: use the parent's)
        return msg

    def _store(self, channel: str, msg: Dict[str, Any], thread_ts: Optional[str]) -> None:
        if thread_ts:
            parent = self._parent(channel, thread_ts)
            assert parent is not None
            msg["thread_ts"] = parent["ts"]
            msg["parent_user_id"] = parent.get("user")
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            users = parent.setdefault("reply_users", [])
            if msg.get("user") and msg["user"] not in users:
                users.append(msg["user"])
            parent["reply_users_count"] = len(users)
            parent["latest_reply"] = msg["ts"]
        self._messages[(channel, msg["ts"])] = msg

    def _bot_message(self, channel: str, text: str, blocks: Any) -> Dict[str, Any]:
        msg: Dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "ts": self._next_ts(),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "team": self.team_id,
            "text": text,
            "reactions": [],
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.api_app_id,
                "name": "order-support",
                "team_id": self.team_id,
            },
        }
        if blocks is not None:
            msg["blocks"] = blocks
        return msg

    @staticmethod
    def _public(msg: Dict[str, Any]) -> Dict[str, Any]:
        """A message as the Web API shows it (no emulator-only fields)."""
        out = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("channel",)}
        if not out.get("reactions"):
            out.pop("reactions", None)
        if out.get("parent_user_id") is None:
            out.pop("parent_user_id", None)
        return out

    def _text_and_blocks(self, args: Dict[str, Any], required: bool = True) -> Tuple[Optional[str], Any]:
        text = args.get("text")
        blocks = args.get("blocks")
        if blocks is not None:
            blocks = _json_arg(blocks, "blocks")
            errors = validate_blocks(blocks)
            if errors:
                raise SlackError(
                    "invalid_blocks", errors=errors, response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
                )
        attachments = args.get("attachments")
        if required and not text and not blocks and not attachments:
            raise SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return (None if text is None else str(text)), blocks

    # --- Web API methods --------------------------------------------------------------
    def _auth_test(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "url": "https://emulated-workspace.slack.com/",
            "team": "Emulated Workspace",
            "user": "order-support",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        text, blocks = self._text_and_blocks(args)
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and self._parent(channel, str(thread_ts)) is None:
            raise SlackError("thread_not_found")
        msg = self._bot_message(channel, text or "", blocks)
        if thread_ts is not None and _bool(args.get("reply_broadcast", False)):
            msg["subtype"] = "thread_broadcast"
            msg["reply_broadcast"] = True
        self._store(channel, msg, str(thread_ts) if thread_ts else None)
        self._echo(msg)
        return {"channel": channel, "ts": msg["ts"], "message": self._public(msg)}

    def _update(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("ts") or "")
        msg = self._messages.get((channel, ts))
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        text, blocks = self._text_and_blocks(args)
        # like Slack: fields left out are kept; an empty blocks array removes the blocks
        if text is not None:
            msg["text"] = text
        if blocks is not None:
            if blocks:
                msg["blocks"] = blocks
            else:
                msg.pop("blocks", None)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": channel, "ts": ts, "text": msg["text"], "message": self._public(msg)}

    def _post_ephemeral(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        user = str(args.get("user") or "")
        if user not in self.users:
            raise SlackError("user_not_found")
        if user not in self.channels[channel]:
            raise SlackError("user_not_in_channel")
        text, blocks = self._text_and_blocks(args)
        message_ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text or "",
                "blocks": blocks,
                "thread_ts": args.get("thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}

    def _members(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        members = self.channels[channel]
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            raise SlackError("invalid_limit") from None
        limit = max(1, min(limit, 1000))
        start = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                start = members.index(base64.b64decode(str(cursor)).decode()[len("user:") :])
            except (ValueError, UnicodeDecodeError):
                raise SlackError("invalid_cursor") from None
        page = members[start : start + limit]
        rest = members[start + limit :]
        next_cursor = base64.b64encode(f"user:{rest[0]}".encode()).decode() if rest else ""
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversation_info(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        name = self.channel_names.get(channel, channel.lower())
        info: Dict[str, Any] = {
            "id": channel,
            "name": name,
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
            "context_team_id": self.team_id,
        }
        if _bool(args.get("include_num_members", False)):
            info["num_members"] = len(self.channels[channel])
        return {"channel": info}

    def _replies(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("ts") or "")
        msg = self._messages.get((channel, ts))
        if msg is None:
            raise SlackError("thread_not_found")
        if msg.get("thread_ts") and msg["thread_ts"] != ts:
            found = [msg]  # a reply's ts: Slack answers with that reply alone
        else:
            found = self.messages(channel, thread_ts=ts)
        return {
            "messages": [self._public(m) for m in found],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _user_info(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        user = str(args.get("user") or "")
        if user == self.bot_user_id:
            name, real_name, is_bot = "order-support", "Order Support", True
        elif user in self.users:
            profile = self.users[user]
            name = profile.get("name") or user.lower()
            real_name = profile.get("real_name") or name
            is_bot = False
        else:
            raise SlackError("user_not_found")
        display = self.users.get(user, {}).get("display_name", real_name)
        return {
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name,
                "deleted": False,
                "is_bot": is_bot,
                "tz": "Asia/Tokyo",
                "profile": {"display_name": display, "real_name": real_name},
            }
        }

    def _views_open(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        trigger_id = args.get("trigger_id")
        if not trigger_id and not args.get("interactivity_pointer"):
            raise SlackError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]}
            )
        trigger_id = str(trigger_id or args.get("interactivity_pointer"))
        view = _json_arg(args.get("view"), "arguments")
        if view is None:
            raise SlackError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]}
            )
        trigger = self._triggers.get(trigger_id)
        if trigger is None or not TRIGGER_FORMAT.fullmatch(trigger_id):
            raise SlackError("invalid_trigger_id")
        if trigger["used"]:
            raise SlackError("exchanged_trigger_id")
        if self._clock() - trigger["issued_at"] > TRIGGER_TTL_S:
            raise SlackError("expired_trigger_id")
        errors = validate_view(view)
        if errors:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        trigger["used"] = True
        view_id = "V" + secrets.token_hex(5).upper()
        blocks = copy.deepcopy(view.get("blocks") or [])
        for b in blocks:  # like Slack: every block gets an id, every input element an action_id
            b.setdefault("block_id", secrets.token_urlsafe(4)[:5])
            if b.get("type") == "input" and isinstance(b.get("element"), dict):
                b["element"].setdefault("action_id", secrets.token_urlsafe(4)[:5])
        opened = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": blocks,
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{int(self._clock())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": _bool(view.get("clear_on_close", False)),
            "notify_on_close": _bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.api_app_id,
            "external_id": view.get("external_id") or "",
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.views[view_id] = {
            "id": view_id,
            "user": trigger["user"],
            "trigger_id": trigger_id,
            "view": opened,
            "opened_at": self._clock(),
            "closed": False,
            "submissions": [],
        }
        return {"view": copy.deepcopy(opened)}

    def _get_permalink(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("message_ts") or "")
        msg = self._messages.get((channel, ts))
        if msg is None:
            raise SlackError("message_not_found")
        link = f"https://emulated-workspace.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        parent = msg.get("thread_ts")
        if parent and parent != ts:
            link += f"?thread_ts={parent}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _reactions_add(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        channel = self._channel(args)
        name = str(args.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        msg = self._messages.get((channel, str(args.get("timestamp") or "")))
        if msg is None:
            raise SlackError("message_not_found")
        for r in msg["reactions"]:
            if r["name"] == name:
                if self.bot_user_id in r["users"]:
                    raise SlackError("already_reacted")
                r["users"].append(self.bot_user_id)
                r["count"] += 1
                return {}
        msg["reactions"].append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {}

    def _get_upload_url(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        filename = str(args.get("filename") or "")
        if not filename:
            raise SlackError("invalid_arguments")
        try:
            length = int(args.get("length"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        file_id = "F" + secrets.token_hex(5).upper()
        upload_id = secrets.token_urlsafe(12)
        self._upload_ids[upload_id] = file_id
        self._files[file_id] = {"id": file_id, "filename": filename, "length": length, "data": None, "completed": False}
        origin = f"{request.url.scheme}://{request.host}"
        return {"upload_url": f"{origin}/upload/v1/{upload_id}", "file_id": file_id}

    def _complete_upload(self, request: web.Request, args: Dict[str, Any]) -> Dict[str, Any]:
        files = _json_arg(args.get("files"), "arguments")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channel = None
        if args.get("channel_id"):
            channel = self._channel(args, "channel_id")
        elif args.get("channels"):
            channel = self._channel({"channel": str(args["channels"]).split(",")[0]})
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts and (channel is None or self._parent(channel, thread_ts) is None):
            raise SlackError("invalid_thread_ts")
        pending = []
        for f in files:
            record = self._files.get(str((f or {}).get("id")))
            if record is None or record["completed"] or record["data"] is None:
                raise SlackError("file_not_found")
            pending.append((record, (f or {}).get("title") or record["filename"]))
        out = []
        for record, title in pending:
            record["completed"] = True
            data = record["data"]
            info = {
                "id": record["id"],
                "name": record["filename"],
                "title": title,
                "size": len(data),
                "mimetype": _mimetype(record["filename"]),
                "user": self.bot_user_id,
            }
            out.append(info)
            self.uploads.append(
                {
                    "file_id": record["id"],
                    "filename": record["filename"],
                    "title": title,
                    "size": len(data),
                    "declared_length": record["length"],
                    "channel": channel,
                    "thread_ts": thread_ts,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "initial_comment": args.get("initial_comment"),
                }
            )
        if channel is not None:
            # like Slack, sharing posts a message carrying the files (in the thread if any)
            msg = self._bot_message(channel, str(args.get("initial_comment") or ""), None)
            msg["files"] = [dict(i) for i in out]
            msg["upload"] = True
            self._store(channel, msg, thread_ts)
        return {"files": out}

    # --- the upload URL -------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.Response:
        entry: Dict[str, Any] = {
            "method": UPLOAD_METHOD,
            "args": {},
            "status": None,
            "error": None,
            "time": time.time(),
            "http_method": "POST",
        }
        self.calls.append(entry)
        response = await self._upload_inner(request, entry)
        entry["status"] = response.status
        return response

    async def _upload_inner(self, request: web.Request, entry: Dict[str, Any]) -> web.Response:
        file_id = self._upload_ids.get(request.match_info["upload_id"])
        if file_id is None:
            entry["error"] = "not_found"
            return web.Response(status=404, text="Not Found", content_type="text/plain")
        entry["args"] = {"file_id": file_id}
        failure = self._take_failure(UPLOAD_METHOD)
        if failure is not None:
            entry["error"] = f"http_{failure.status}"
            entry["injected"] = True
            return self._failure_response(failure)
        if request.content_type.startswith("multipart/"):
            data = b""
            reader = await request.multipart()
            async for part in reader:
                if part.name in ("file", "filename") or part.filename:  # type: ignore[union-attr]
                    data = await part.read()  # type: ignore[union-attr]
                    break
        else:
            data = await request.read()
        self._files[file_id]["data"] = data
        entry["args"]["size"] = len(data)
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # --- echo of the bot's own posts (Events API) -----------------------------------------
    def _echo(self, msg: Dict[str, Any]) -> None:
        if not (self.echo_bot_messages and self.events_url and self.signing_secret):
            return
        from devkit.emulators.slack_client import SlackEventsClient

        if self._events_client is None:
            self._events_client = SlackEventsClient(
                self.events_url,
                self.signing_secret,
                team_id=self.team_id,
                api_app_id=self.api_app_id,
                bot_user_id=self.bot_user_id,
            )
        event = {
            k: copy.deepcopy(v)
            for k, v in msg.items()
            if k not in ("reactions", "reply_count", "reply_users", "reply_users_count", "latest_reply")
        }
        event["event_ts"] = msg["ts"]
        event["channel_type"] = "channel"
        record: Dict[str, Any] = {"event": event, "status": None, "error": None}
        self.events.append(record)

        async def deliver() -> None:
            try:
                status, _ = await self._events_client.post_event(event)
                record["status"] = status
            except Exception as exc:  # noqa: BLE001 - recorded for the test to see
                record["error"] = repr(exc)

        task = asyncio.get_running_loop().create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- emulator endpoints ----------------------------------------------------------------
    async def _e_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        return web.json_response([c for c in self.calls if method is None or c["method"] == method])

    async def _e_messages(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.messages(request.query.get("channel") or None, request.query.get("thread_ts") or None)
        )

    async def _e_thread(self, request: web.Request) -> web.Response:
        return web.json_response(self.thread(request.query.get("channel", ""), request.query.get("ts", "")))

    async def _e_uploads(self, request: web.Request) -> web.Response:
        return web.json_response(self.uploads)

    async def _e_ephemerals(self, request: web.Request) -> web.Response:
        return web.json_response(self.ephemerals)

    async def _e_responses(self, request: web.Request) -> web.Response:
        return web.json_response(self.responses)

    async def _e_events(self, request: web.Request) -> web.Response:
        return web.json_response(self.events)

    async def _e_triggers(self, request: web.Request) -> web.Response:
        """Registers a trigger_id an interaction payload carries: {"trigger_id", "user"}."""
        body = await request.json()
        trigger_id = str(body.get("trigger_id") or "")
        if not TRIGGER_FORMAT.fullmatch(trigger_id):
            return web.json_response({"ok": False, "error": "invalid_trigger_id"}, status=400)
        self.issue_trigger(body.get("user"), trigger_id)
        return web.json_response({"ok": True, "trigger_id": trigger_id})

    async def _e_views(self, request: web.Request) -> web.Response:
        view_id = request.query.get("id")
        if view_id is not None:
            record = self.views.get(view_id)
            if record is None:
                return web.json_response({"ok": False, "error": "not_found"}, status=404)
            return web.json_response(record)
        return web.json_response(self.open_views())

    async def _e_view_submitted(self, request: web.Request) -> web.Response:
        """SlackEventsClient.submit_view reports what the app answered: the modal closes
        unless the answer kept it open (response_action errors, update or push)."""
        record = self.views.get(request.match_info["id"])
        if record is None:
            return web.json_response({"ok": False, "error": "not_found"}, status=404)
        body = await request.json()
        record["submissions"].append(body)
        answer = body.get("response") if isinstance(body.get("response"), dict) else {}
        if body.get("status") == 200 and answer.get("response_action") not in ("errors", "update", "push"):
            record["closed"] = True
        return web.json_response({"ok": True, "closed": record["closed"]})

    async def _e_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _e_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fail_next(
            body["method"],
            int(body.get("status", 500)),
            int(body.get("count", 1)),
            body.get("retry_after"),
            body.get("error"),
        )
        return web.json_response({"ok": True})

    async def _e_user_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel, thread_ts = body.get("channel", ""), body.get("thread_ts")
        try:
            ts = self.add_user_message(
                channel, body.get("user", ""), body.get("text", ""), thread_ts, body.get("blocks")
            )
        except KeyError as exc:
            error = str(exc.args[0]).split(":")[0]
            return web.json_response({"ok": False, "error": error}, status=404)
        msg = self._messages[(channel, ts)]
        return web.json_response({"ok": True, "ts": ts, "message": self._public(msg)})

    async def _e_response(self, request: web.Request) -> web.Response:
        """A response_url: records the post and applies it to the original message."""
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        channel = request.query.get("channel")
        ts = request.query.get("ts")
        self.responses.append(
            {"id": request.match_info["id"], "channel": channel, "message_ts": ts, "body": body, "time": time.time()}
        )
        if not isinstance(body, dict) or not channel:
            return web.json_response({"ok": True})
        original = self._messages.get((channel, ts or ""))
        if _bool(body.get("delete_original", False)):
            if original is not None:
                del self._messages[(channel, original["ts"])]
        elif _bool(body.get("replace_original", False)):
            if original is not None:
                if "text" in body:
                    original["text"] = str(body["text"])
                if "blocks" in body:
                    original["blocks"] = body["blocks"]
                original["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        elif body.get("response_type") == "in_channel" and channel in self.channels:
            msg = self._bot_message(channel, str(body.get("text", "")), body.get("blocks"))
            parent = (original or {}).get("thread_ts")
            self._store(channel, msg, parent if parent and self._parent(channel, parent) else None)
        else:
            self.ephemerals.append(
                {
                    "channel": channel,
                    "user": None,
                    "text": body.get("text", ""),
                    "blocks": body.get("blocks"),
                    "thread_ts": (original or {}).get("thread_ts"),
                    "message_ts": self._next_ts(),
                    "via": "response_url",
                }
            )
        return web.json_response({"ok": True})


TRIGGER_FORMAT = re.compile(r"\d+\.\d+\.[0-9a-f]+")


def new_trigger_id() -> str:
    """A trigger_id in Slack's format ("13345224609.738474920.8088930838d88f008e0")."""
    return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _ts_key(ts: str) -> Tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac or 0)


def rich_text_blocks(text: str) -> List[Dict[str, Any]]:
    """The `rich_text` block Slack's clients attach to a typed message."""
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_urlsafe(4)[:5],
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _mimetype(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


EMULATOR_KEY = web.AppKey("slack_emulator", SlackApiEmulator)


def make_app(bot_token: str, **kwargs: Any) -> web.Application:
    """aiohttp app for external hosting; the emulator is app[EMULATOR_KEY]."""
    return SlackApiEmulator(bot_token, **kwargs).app()


def main(argv: Optional[List[str]] = None) -> None:  # pragma: no cover - process entry point
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Local Slack Web API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SLACK_EMULATOR_PORT", 8092)))
    parser.add_argument("--token", default=os.environ.get("SLACK_BOT_TOKEN") or "xoxb-local-demo")
    parser.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET"))
    parser.add_argument(
        "--events-url",
        default=os.environ.get("SLACK_EVENTS_URL"),
        help="the app's request URL (for --echo-bot-messages)",
    )
    parser.add_argument("--echo-bot-messages", action="store_true")
    parser.add_argument(
        "--channel",
        default=os.environ.get("SLACK_HANDOFF_CHANNEL"),
        help="handoff channel id (default C0HANDOFF1), with the demo agents",
    )
    args = parser.parse_args(argv)
    channels = None
    if args.channel and args.channel != HANDOFF_CHANNEL:
        channels = {args.channel: [AGENT_1, AGENT_2]}
    emulator = SlackApiEmulator(
        args.token,
        channels=channels,
        events_url=args.events_url,
        signing_secret=args.signing_secret,
        echo_bot_messages=args.echo_bot_messages,
    )
    print(f"Slack API emulator on http://{args.host}:{args.port}/api/", flush=True)
    web.run_app(emulator.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = [
    "EMULATOR_KEY",
    "SlackApiEmulator",
    "SlackError",
    "TRIGGER_TTL_S",
    "make_app",
    "new_trigger_id",
    "rich_text_blocks",
    "validate_blocks",
    "validate_view",
    "main",
]
