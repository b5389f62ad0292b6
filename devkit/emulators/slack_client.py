"""Signs and posts Events API and interactivity requests exactly as Slack does (tests, demo).

Events API (JSON body, `Content-Type: application/json`):
    {"token", "team_id", "api_app_id", "event": {...}, "type": "event_callback",
     "event_id": "Ev...", "event_time": <s>, "authorizations": [{"enterprise_id": null,
     "team_id", "user_id": <bot user>, "is_bot": true, "is_enterprise_install": false}],
     "is_ext_shared_channel": false, "event_context": "4-..."}
A retry repeats the same body (same event_id and event_time) with `X-Slack-Retry-Num`
and `X-Slack-Retry-Reason` (e.g. "http_timeout"); only the signature timestamp is new.

Interactivity (block_actions, view_submission): `application/x-www-form-urlencoded` with
one field, `payload=<JSON>`. Each payload carries a fresh trigger_id; with
`api_emulator_url` the client registers it with the API emulator first (POST
/_emulator/triggers), so the app's views.open accepts it once, within 3 s, as Slack does.
Buttons: `press_button`; selects: `select_user` (users_select), `select_option`
(static_select / overflow); a modal's submit: `submit_view(view_id, user, values)`, which
reads the view the emulator opened and answers (status, the app's JSON answer). Both are signed with Slack's v0 scheme:
    X-Slack-Request-Timestamp: <unix s>
    X-Slack-Signature: v0=hex(HMAC-SHA256(signing_secret, "v0:{timestamp}:{body}"))
Apps must refuse timestamps more than 300 s away from now; `timestamp`, `signature` and
`secret` overrides produce stale or forged requests for tests.

With `api_emulator_url` (a SlackApiEmulator, in-process or not), human messages are first
stored in the emulator (POST /_emulator/user_message) so thread history stays realistic,
and response_urls point at the emulator (POST /_emulator/response/{id}).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import string
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import aiohttp

DEFAULT_TEAM_ID = "T0000000001"
DEFAULT_APP_ID = "A0000000001"
DEFAULT_BOT_USER_ID = "U0BOT00001"
VERIFICATION_TOKEN = "emulated-verification-token"  # deprecated by Slack, still sent

_ID_CHARS = string.ascii_uppercase + string.digits


def _slack_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def new_event_id() -> str:
    """An Events API event id, like "Ev08MFMKH6J2"."""
    return _slack_id("Ev", 10)


def sign(body: bytes, signing_secret: str, timestamp: int) -> str:
    """Slack's v0 signature of `body` at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def _api_root(url: Optional[str]) -> Optional[str]:
    """Emulator root from either http://h:p or the slack_sdk base URL http://h:p/api/."""
    if not url:
        return None
    root = url.rstrip("/")
    return root[: -len("/api")] if root.endswith("/api") else root


class SlackEventsClient:
    """Plays Slack's side of the Events API and interactivity request URL."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        team_id: str = DEFAULT_TEAM_ID,
        api_app_id: str = DEFAULT_APP_ID,
        api_emulator_url: Optional[str] = None,
        session: Optional[aiohttp.ClientSession] = None,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        team_domain: str = "emulated",
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.team_domain = team_domain
        self.api_emulator_url = _api_root(api_emulator_url)
        self.timeout_s = timeout_s
        self._session = session
        self._own_session = session is None
        self._envelopes: Dict[str, Dict[str, Any]] = {}  # event_id -> envelope (retries)
        self._last_ts_us = 0
        self.last_event_id: Optional[str] = None
        self.last_event: Optional[Dict[str, Any]] = None
        self.last_payload: Optional[Dict[str, Any]] = None
        self.last_elapsed_s: Optional[float] = None

    async def __aenter__(self) -> "SlackEventsClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._own_session = True
        return self._session

    # --- signing ---------------------------------------------------------------------------
    def sign(self, body: bytes, timestamp: Optional[int] = None, secret: Optional[str] = None) -> Dict[str, str]:
        """X-Slack-Request-Timestamp and X-Slack-Signature headers for `body`."""
        ts = int(time.time()) if timestamp is None else int(timestamp)
        return {
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(body, secret or self.signing_secret, ts),
        }

    async def post_body(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: Optional[int] = None,
        signature: Optional[str] = None,
        secret: Optional[str] = None,
        extra_headers: Optional[Dict[str, str]] = None,
    ) -> Tuple[int, str]:
        """POST signed bytes to the request URL; returns (HTTP status, body text)."""
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Accept": "application/json,*/*",
            "Accept-Encoding": "gzip,deflate",
        }
        headers.update(self.sign(body, timestamp, secret))
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        headers.update(extra_headers or {})
        start = time.perf_counter()
        async with self._http().post(self.url, data=body, headers=headers) as resp:
            text = await resp.text()
            self.last_elapsed_s = time.perf_counter() - start
            return resp.status, text

    # --- Events API --------------------------------------------------------------------------
    def envelope(self, event: Dict[str, Any], event_id: Optional[str] = None) -> Dict[str, Any]:
        """The event_callback wrapper; a known event_id returns the stored (retry) envelope."""
        if event_id is not None and event_id in self._envelopes:
            return self._envelopes[event_id]
        event_id = event_id or new_event_id()
        context = {"et": event.get("type"), "tid": self.team_id, "aid": self.api_app_id}
        if event.get("channel"):
            context["cid"] = event["channel"]
        env = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": copy.deepcopy(event),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(float(event.get("event_ts") or time.time())),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-"
            + base64.urlsafe_b64encode(json.dumps(context, separators=(",", ":")).encode()).decode().rstrip("="),
        }
        self._envelopes[event_id] = env
        return env

    async def post_event(
        self,
        event: Dict[str, Any],
        *,
        event_id: Optional[str] = None,
        retry_num: Optional[int] = None,
        retry_reason: Optional[str] = None,
        timestamp: Optional[int] = None,
        signature: Optional[str] = None,
        secret: Optional[str] = None,
    ) -> Tuple[int, str]:
        """Deliver `event` in the Events API envelope. With `retry_num` (and no event_id)
        the last event is retried with its event_id, as Slack does after no ack in 3 s."""
        if retry_num is not None and event_id is None:
            event_id = self.last_event_id
        env = self.envelope(event, event_id)
        self.last_event_id = env["event_id"]
        self.last_event = env["event"]
        body = json.dumps(env, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        extra: Dict[str, str] = {}
        if retry_num is not None:
            extra["X-Slack-Retry-Num"] = str(retry_num)
            extra["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return await self.post_body(
            body, "application/json", timestamp=timestamp, signature=signature, secret=secret, extra_headers=extra
        )

    async def retry_last(self, retry_num: int = 1, retry_reason: str = "http_timeout", **kw: Any) -> Tuple[int, str]:
        """Redeliver the last event (same body and event_id) as Slack's retry number N."""
        if self.last_event_id is None:
            raise RuntimeError("no event to retry")
        env = self._envelopes[self.last_event_id]
        return await self.post_event(
            env["event"], event_id=self.last_event_id, retry_num=retry_num, retry_reason=retry_reason, **kw
        )

    def _next_ts(self) -> str:
        self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    async def _record_user_message(
        self, channel: str, user: str, text: str, thread_ts: Optional[str], blocks: Any
    ) -> Dict[str, Any]:
        async with self._http().post(
            f"{self.api_emulator_url}/_emulator/user_message",
            json={"channel": channel, "user": user, "text": text, "thread_ts": thread_ts, "blocks": blocks},
        ) as resp:
            body = await resp.json()
        if resp.status != 200 or not body.get("ok"):
            raise RuntimeError(f"the Slack emulator refused the message: {body}")
        return body["message"]

    async def user_message(
        self, channel: str, user: str, text: str, thread_ts: Optional[str] = None, **kw: Any
    ) -> Tuple[int, str]:
        """A human's message in `channel` (in a thread when thread_ts is given), stored in
        the emulator first when known, then delivered as Slack's `message` event.
        kw goes to post_event (retry_num, timestamp, ...)."""
        blocks = [
            {
                "type": "rich_text",
                "block_id": secrets.token_urlsafe(4)[:5],
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
            }
        ]
        parent_user_id = None
        if self.api_emulator_url:
            stored = await self._record_user_message(channel, user, text, thread_ts, blocks)
            ts = stored["ts"]
            parent_user_id = stored.get("parent_user_id")
        else:
            ts = self._next_ts()
        event: Dict[str, Any] = {
            "user": user,
            "type": "message",
            "ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "text": text,
            "team": self.team_id,
            "blocks": blocks,
            "channel": channel,
            "event_ts": ts,
            "channel_type": "channel",
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
            if parent_user_id:
                event["parent_user_id"] = parent_user_id
        return await self.post_event(event, **kw)

    async def thread_reply(self, channel: str, thread_ts: str, user: str, text: str, **kw: Any) -> Tuple[int, str]:
        """An agent's reply in a thread, as Slack delivers it (`self.last_event["ts"]`)."""
        return await self.user_message(channel, user, text, thread_ts=thread_ts, **kw)

    async def url_verification(self, challenge: str, **kw: Any) -> Tuple[int, str]:
        body = json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}).encode()
        return await self.post_body(body, "application/json", **kw)

    # --- interactivity -------------------------------------------------------------------------
    def block_actions_payload(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str,
        channel: str,
        message_ts: str,
        message: Optional[Dict[str, Any]] = None,
        block_id: str = "case_actions",
        user_name: str = "agent",
        channel_name: str = "order-support-handoff",
        action: Optional[Dict[str, Any]] = None,
        **overrides: Any,
    ) -> Dict[str, Any]:
        """A block_actions payload; `action` replaces the button action (a select's
        `selected_user` / `selected_option`), its action_id, block_id and action_ts filled in."""
        now = time.time()
        response_id = secrets.token_hex(8)
        if self.api_emulator_url:
            response_url = f"{self.api_emulator_url}/_emulator/response/{response_id}?" + urlencode(
                {"channel": channel, "ts": message_ts}
            )
        else:
            response_url = f"https://hooks.slack.com/actions/{self.team_id}/{secrets.randbelow(10**13)}/{response_id}"
        if action is None:
            action = {
                "value": value,
                "type": "button",
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
            }
        action = {"action_id": action_id, "block_id": block_id, **action, "action_ts": f"{now:.6f}"}
        payload: Dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": new_trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel_name},
            "message": copy.deepcopy(message)
            if message is not None
            else {"type": "message", "ts": message_ts, "text": ""},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
        payload.update(overrides)
        return payload

    async def register_trigger(self, trigger_id: Any, user_id: Optional[str]) -> None:
        """Tells the API emulator about a trigger_id this client hands the app, so that
        views.open accepts it (once, within 3 s), as Slack accepts the ids it issued."""
        if not self.api_emulator_url or not isinstance(trigger_id, str):
            return
        async with self._http().post(
            f"{self.api_emulator_url}/_emulator/triggers", json={"trigger_id": trigger_id, "user": user_id}
        ) as resp:
            await resp.read()

    async def post_interaction(
        self,
        payload: Dict[str, Any],
        *,
        timestamp: Optional[int] = None,
        signature: Optional[str] = None,
        secret: Optional[str] = None,
    ) -> Tuple[int, str]:
        """Any interactivity payload as Slack posts it: form field `payload=<JSON>`, signed;
        its trigger_id registered with the API emulator first (when known)."""
        user = payload.get("user")
        await self.register_trigger(payload.get("trigger_id"), user.get("id") if isinstance(user, dict) else None)
        self.last_payload = payload
        body = urlencode({"payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":"))}).encode()
        return await self.post_body(
            body, "application/x-www-form-urlencoded", timestamp=timestamp, signature=signature, secret=secret
        )

    async def press_button(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str,
        channel: str,
        message_ts: str,
        message: Optional[Dict[str, Any]] = None,
        block_id: str = "case_actions",
        user_name: str = "agent",
        timestamp: Optional[int] = None,
        signature: Optional[str] = None,
        secret: Optional[str] = None,
        **overrides: Any,
    ) -> Tuple[int, str]:
        """A button click (block_actions) as Slack posts it: form field `payload=<JSON>`.
        `overrides` replace top-level payload keys."""
        payload = self.block_actions_payload(
            action_id,
            value,
            user_id=user_id,
            channel=channel,
            message_ts=message_ts,
            message=message,
            block_id=block_id,
            user_name=user_name,
            **overrides,
        )
        return await self.post_interaction(payload, timestamp=timestamp, signature=signature, secret=secret)

    async def select_user(
        self,
        action_id: str,
        selected_user: str,
        *,
        user_id: str,
        channel: str,
        message_ts: str,
        block_id: str = "case_actions",
        **kw: Any,
    ) -> Tuple[int, str]:
        """A pick in a users_select (block_actions with `selected_user`)."""
        action = {"type": "users_select", "selected_user": selected_user}
        return await self._select(action_id, action, user_id, channel, message_ts, block_id, kw)

    async def select_option(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str,
        channel: str,
        message_ts: str,
        text: Optional[str] = None,
        element: str = "static_select",
        block_id: str = "case_actions",
        **kw: Any,
    ) -> Tuple[int, str]:
        """A choice in a static_select or an overflow menu (`element`), with the option's
        value (and text: the card's own, from `message`, when not given)."""
        if text is None:
            text = _option_text(kw.get("message"), action_id, value) or value
        action: Dict[str, Any] = {
            "type": element,
            "selected_option": {"text": {"type": "plain_text", "text": text, "emoji": True}, "value": value},
        }
        return await self._select(action_id, action, user_id, channel, message_ts, block_id, kw)

    async def _select(
        self,
        action_id: str,
        action: Dict[str, Any],
        user_id: str,
        channel: str,
        message_ts: str,
        block_id: str,
        kw: Dict[str, Any],
    ) -> Tuple[int, str]:
        signing = {k: kw.pop(k) for k in ("timestamp", "signature", "secret") if k in kw}
        payload = self.block_actions_payload(
            action_id,
            "",
            user_id=user_id,
            channel=channel,
            message_ts=message_ts,
            block_id=block_id,
            action=action,
            **kw,
        )
        return await self.post_interaction(payload, **signing)

    # --- modals ---------------------------------------------------------------------------------
    async def fetch_view(self, view_id: str) -> Dict[str, Any]:
        """A view the API emulator opened (GET /_emulator/views?id=)."""
        if not self.api_emulator_url:
            raise RuntimeError("no api_emulator_url: pass the view to submit_view")
        async with self._http().get(f"{self.api_emulator_url}/_emulator/views", params={"id": view_id}) as resp:
            body = await resp.json()
        if resp.status != 200:
            raise KeyError(f"the Slack emulator has no view {view_id}")
        return body["view"]

    def view_submission_payload(
        self,
        view: Dict[str, Any],
        values: Optional[Dict[str, Any]] = None,
        *,
        user_id: str,
        user_name: str = "agent",
        **overrides: Any,
    ) -> Dict[str, Any]:
        """A view_submission payload of `view` (as views.open returned it) with the inputs
        filled from `values` ({block_id: value}; see `input_state`)."""
        submitted = copy.deepcopy(view)
        submitted["state"] = {"values": input_state(view.get("blocks") or [], values or {})}
        payload: Dict[str, Any] = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": new_trigger_id(),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        payload.update(overrides)
        return payload

    async def submit_view(
        self,
        view_id: str,
        user: str,
        values: Optional[Dict[str, Any]] = None,
        *,
        view: Optional[Dict[str, Any]] = None,
        user_name: str = "agent",
        timestamp: Optional[int] = None,
        signature: Optional[str] = None,
        secret: Optional[str] = None,
        **overrides: Any,
    ) -> Tuple[int, Any]:
        """The user presses the modal's submit: a signed view_submission of the view the
        emulator opened (or `view`), inputs from `values` ({block_id: value}, others as
        prefilled). Returns (HTTP status, the app's JSON answer or None for an empty ack),
        and tells the emulator the answer (the modal closes unless it was kept open)."""
        if view is None:
            view = await self.fetch_view(view_id)
        payload = self.view_submission_payload(view, values, user_id=user, user_name=user_name, **overrides)
        status, text = await self.post_interaction(payload, timestamp=timestamp, signature=signature, secret=secret)
        try:
            answer = json.loads(text) if text.strip() else None
        except ValueError:
            answer = text
        if self.api_emulator_url:
            async with self._http().post(
                f"{self.api_emulator_url}/_emulator/views/{view_id}/submitted",
                json={"status": status, "response": answer, "user": user},
            ) as resp:
                await resp.read()
        return status, answer


def new_trigger_id() -> str:
    """A trigger_id in Slack's format ("13345224609.738474920.8088930838d88f008e0")."""
    return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _option_text(message: Any, action_id: str, value: str) -> Optional[str]:
    """The text of the option `value` of element `action_id` in a message's blocks."""
    blocks = message.get("blocks") if isinstance(message, dict) else None
    for block in blocks or []:
        for el in block.get("elements") or []:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                for o in el.get("options") or []:
                    if o.get("value") == value:
                        return (o.get("text") or {}).get("text")
    return None


def input_state(blocks: List[Dict[str, Any]], values: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """view.state.values as Slack sends them: every input block, {block_id: {action_id:
    {"type", ...}}}. `values[block_id]` is what the user entered: a string or number
    (text and number inputs: `value`), an option value (static_select: the whole
    `selected_option`, None if unknown), a user id (users_select: `selected_user`), or a
    ready state dict with "type". An input left alone keeps its initial value."""
    state: Dict[str, Dict[str, Any]] = {}
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        kind, action_id, block_id = element.get("type"), element.get("action_id"), block.get("block_id")
        given = values.get(block_id, _UNSET)
        if isinstance(given, dict) and "type" in given:
            state[block_id] = {action_id: given}
            continue
        entry: Dict[str, Any] = {"type": kind}
        if kind in ("static_select", "overflow", "radio_buttons"):
            options = element.get("options") or []
            if given is _UNSET:
                entry["selected_option"] = element.get("initial_option")
            else:
                entry["selected_option"] = next((o for o in options if o.get("value") == given), None)
        elif kind == "users_select":
            entry["selected_user"] = element.get("initial_user") if given is _UNSET else given
        else:  # plain_text_input, number_input, email/url inputs
            raw = element.get("initial_value") if given is _UNSET else given
            entry["value"] = None if raw is None else str(raw)
        state[block_id] = {action_id: entry}
    return state


_UNSET: Any = object()


__all__ = ["SlackEventsClient", "VERIFICATION_TOKEN", "input_state", "new_event_id", "new_trigger_id", "sign"]
