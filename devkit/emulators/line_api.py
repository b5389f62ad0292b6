"""A local LINE Messaging API emulator (aiohttp) for tests and the local demo.

Serves the endpoints the gateway uses, on one app for both base URLs
(LINE_API_BASE_URL and LINE_DATA_API_BASE_URL may point at the same emulator):

    POST /v2/bot/message/reply              reply token: single use, expires after 60 s
    POST /v2/bot/message/push               X-Line-Retry-Key duplicates -> 409, like LINE
    GET  /v2/bot/profile/{userId}                   friends only
    GET  /v2/bot/group/{groupId}/member/{userId}    a group member (friend or not)
    GET  /v2/bot/room/{roomId}/member/{userId}      a room member
    GET  /v2/bot/message/{messageId}/content   (the data API)
    POST /v2/bot/chat/loading/start

Like LINE: every call needs `Authorization: Bearer <channel access token>` (else 401),
at most 5 messages per call and basic message limits (else 400), and a used, unknown or
expired reply token gets 400 {"message": "Invalid reply token"}. Member profiles are
{"displayName", "userId", "pictureUrl"} (no language or status message, like LINE); a
user who is not a member of that chat gets 404 unless `auto_profiles` (the default)
makes one up, as it does for friends.

Emulator-only endpoints (no auth, not recorded):
    GET    /_emulator/requests[?path=/v2/bot/message/reply]   every API request received
    DELETE /_emulator/requests
    POST   /_emulator/reply_tokens?userId=U.. -> {"replyToken": ...} (for webhook clients
                                                in another process)
    GET    /_emulator/messages?to=<userId>   what each user would see, in order

Reply tokens are issued by the emulator itself (`issue_reply_token`), as LINE issues them
with each webhook event; the webhook client (line_client.py) asks for them.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from aiohttp import web

MAX_MESSAGES = 5
REPLY_TOKEN_TTL_S = 60.0
LOADING_SECONDS = set(range(5, 61, 5))

AUTH_FAILED = "Authentication failed. Confirm that the access token in the authorization header is valid."


@dataclass
class Profile:
    user_id: str
    display_name: str
    language: str = "ja"
    picture_url: Optional[str] = None
    status_message: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"userId": self.user_id, "displayName": self.display_name, "language": self.language}
        if self.picture_url:
            d["pictureUrl"] = self.picture_url
        if self.status_message:
            d["statusMessage"] = self.status_message
        return d


@dataclass
class _Failure:
    path_prefix: str
    status: int
    remaining: int
    body: Dict[str, Any] = field(default_factory=dict)
    headers: Dict[str, str] = field(default_factory=dict)


def _error(
    status: int, message: str, details: Optional[List[Dict[str, str]]] = None, headers: Optional[Dict[str, str]] = None
) -> web.Response:
    body: Dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status, headers=headers)


def _units(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def validate_messages(messages: Any) -> List[Dict[str, str]]:
    """LINE-like validation of a `messages` array; returns error details (empty when OK)."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return [{"message": f"Size must be between 1 and {MAX_MESSAGES}", "property": "messages"}]
    details: List[Dict[str, str]] = []
    for i, m in enumerate(messages):
        prop = f"messages[{i}]"
        if not isinstance(m, dict) or "type" not in m:
            details.append({"message": "Must be specified", "property": f"{prop}.type"})
            continue
        if m["type"] == "text":
            text = m.get("text")
            if not isinstance(text, str) or not text:
                details.append({"message": "Must be specified", "property": f"{prop}.text"})
            elif _units(text) > 5000:
                details.append({"message": "Length must be between 0 and 5000", "property": f"{prop}.text"})
        elif m["type"] == "flex":
            if not m.get("altText") or not isinstance(m.get("contents"), dict):
                details.append({"message": "Must be specified", "property": f"{prop}.contents"})
        qr = m.get("quickReply")
        if qr is not None:
            items = qr.get("items") if isinstance(qr, dict) else None
            if not isinstance(items, list) or not 1 <= len(items) <= 13:
                details.append({"message": "Size must be between 1 and 13", "property": f"{prop}.quickReply.items"})
                continue
            for j, item in enumerate(items):
                action = (item or {}).get("action") or {}
                p = f"{prop}.quickReply.items[{j}].action"
                if _units(str(action.get("label", ""))) > 20:
                    details.append({"message": "Length must be between 0 and 20", "property": f"{p}.label"})
                if action.get("type") == "postback":
                    if _units(str(action.get("data", ""))) > 300:
                        details.append({"message": "Length must be between 0 and 300", "property": f"{p}.data"})
                    if _units(str(action.get("displayText", ""))) > 300:
                        details.append({"message": "Length must be between 0 and 300", "property": f"{p}.displayText"})
    return details


class LineApiEmulator:
    """State and handlers of the emulated LINE API. `app` is the aiohttp application."""

    def __init__(
        self,
        channel_access_token: str,
        reply_token_ttl_s: float = REPLY_TOKEN_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        auto_profiles: bool = True,
    ) -> None:
        self.channel_access_token = channel_access_token
        self.reply_token_ttl_s = reply_token_ttl_s
        self.auto_profiles = auto_profiles
        self._clock = clock
        # token -> (expiry on self._clock, user the token answers)
        self._reply_tokens: Dict[str, Tuple[float, Optional[str]]] = {}
        self._retry_keys: Dict[str, str] = {}  # X-Line-Retry-Key -> accepted request id
        self._msg_ids = itertools.count(int(time.time() * 1000) * 1000)
        self.profiles: Dict[str, Profile] = {}
        # ("group" | "room", its id) -> user id -> profile
        self.members: Dict[Tuple[str, str], Dict[str, Profile]] = {}
        self.contents: Dict[str, Tuple[bytes, str]] = {}
        self.requests: List[Dict[str, Any]] = []
        self.delivered: List[Dict[str, Any]] = []  # {"to", "via", "message"} in order
        self._failures: List[_Failure] = []
        self.app = self._make_app()

    # --- emulator controls (tests, demo) ---------------------------------------------
    def issue_reply_token(self, user_id: Optional[str] = None) -> str:
        """A fresh reply token, as LINE puts in a webhook event for `user_id`."""
        token = secrets.token_hex(16)
        self._reply_tokens[token] = (self._clock() + self.reply_token_ttl_s, user_id)
        return token

    def set_profile(
        self, user_id: str, display_name: str, language: str = "ja", picture_url: Optional[str] = None
    ) -> None:
        self.profiles[user_id] = Profile(user_id, display_name, language, picture_url)

    def add_member(self, chat_id: str, user_id: str, display_name: str, picture_url: Optional[str] = None) -> None:
        """`user_id` is a member of the group (id C...) or room (id R...) `chat_id`."""
        kind = "room" if chat_id.startswith("R") else "group"
        self.members.setdefault((kind, chat_id), {})[user_id] = Profile(user_id, display_name, picture_url=picture_url)

    def add_content(self, message_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        self.contents[message_id] = (data, content_type)

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        times: int = 1,
        message: str = "emulated failure",
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        """Answer the next `times` matching API calls with `status` (429/5xx retry tests)."""
        self._failures.append(_Failure(path_prefix, status, times, {"message": message}, dict(headers or {})))

    def clear_failures(self) -> None:
        """Drop the failures injected with fail_next that are not used up yet."""
        self._failures.clear()

    def requests_to(self, path: str) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def messages_for(self, user_id: str) -> List[Dict[str, Any]]:
        return [d for d in self.delivered if d["to"] == user_id]

    # --- plumbing ---------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v2/bot/message/reply", self._reply)
        app.router.add_post("/v2/bot/message/push", self._push)
        app.router.add_get("/v2/bot/profile/{user_id}", self._profile)
        app.router.add_get("/v2/bot/{kind:group|room}/{chat_id}/member/{user_id}", self._member_profile)
        app.router.add_get("/v2/bot/message/{message_id}/content", self._content)
        app.router.add_post("/v2/bot/chat/loading/start", self._loading)
        app.router.add_get("/_emulator/requests", self._list_requests)
        app.router.add_delete("/_emulator/requests", self._clear_requests)
        app.router.add_post("/_emulator/reply_tokens", self._new_reply_token)
        app.router.add_get("/_emulator/messages", self._list_messages)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        entry: Dict[str, Any] = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "json": body,
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "authorized": request.headers.get("Authorization") == f"Bearer {self.channel_access_token}",
        }
        self.requests.append(entry)
        response = await self._dispatch(request, handler, entry, raw, body)
        entry["status"] = response.status
        return response

    async def _dispatch(
        self, request: web.Request, handler: Callable, entry: Dict[str, Any], raw: bytes, body: Any
    ) -> web.StreamResponse:
        if not entry["authorized"]:
            return _error(401, AUTH_FAILED)
        for f in self._failures:
            if f.remaining > 0 and request.path.startswith(f.path_prefix):
                f.remaining -= 1
                return web.json_response(f.body, status=f.status, headers=f.headers)
        if request.method == "POST" and raw and body is None:
            return _error(400, "The request body has 1 error(s)", [{"message": "Invalid JSON", "property": ""}])
        request["json"] = body if isinstance(body, dict) else {}
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return exc  # type: ignore[return-value]

    def _sent(self, to: str, via: str, messages: List[Dict[str, Any]]) -> Dict[str, Any]:
        sent = []
        for m in messages:
            mid = str(next(self._msg_ids))
            self.delivered.append({"to": to, "via": via, "id": mid, "message": m})
            sent.append({"id": mid, "quoteToken": secrets.token_urlsafe(24)})
        return {"sentMessages": sent}

    # --- LINE endpoints ---------------------------------------------------------------
    async def _reply(self, request: web.Request) -> web.Response:
        body = request["json"]
        details = validate_messages(body.get("messages"))
        if details:
            return _error(400, f"The request body has {len(details)} error(s)", details)
        token = body.get("replyToken")
        issued = self._reply_tokens.pop(token, None) if isinstance(token, str) else None
        # popped: single use; an expired token is gone for good as well
        if issued is None or self._clock() >= issued[0]:
            return _error(400, "Invalid reply token")
        return web.json_response(self._sent(issued[1] or "", "reply", body["messages"]))

    async def _push(self, request: web.Request) -> web.Response:
        body = request["json"]
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return _error(400, "The request body has 1 error(s)", [{"message": "Must be specified", "property": "to"}])
        details = validate_messages(body.get("messages"))
        if details:
            return _error(400, f"The request body has {len(details)} error(s)", details)
        retry_key = request.headers.get("X-Line-Retry-Key")
        if retry_key and retry_key in self._retry_keys:
            return _error(
                409,
                "The retry key is already accepted",
                headers={"x-line-accepted-request-id": self._retry_keys[retry_key]},
            )
        if retry_key:
            self._retry_keys[retry_key] = secrets.token_hex(16)
        return web.json_response(self._sent(to, "push", body["messages"]))

    async def _profile(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        profile = self.profiles.get(user_id)
        if profile is None and self.auto_profiles:
            profile = Profile(user_id, f"LINE user {user_id[-4:]}", "ja")
        if profile is None:
            return _error(404, "Not found")
        return web.json_response(profile.to_json())

    async def _member_profile(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        chat = (request.match_info["kind"], request.match_info["chat_id"])
        profile = self.members.get(chat, {}).get(user_id)
        if profile is None and self.auto_profiles:
            profile = Profile(user_id, f"LINE user {user_id[-4:]}")
        if profile is None:
            return _error(404, "Not found")
        body: Dict[str, Any] = {"displayName": profile.display_name, "userId": user_id}
        if profile.picture_url:
            body["pictureUrl"] = profile.picture_url
        return web.json_response(body)

    async def _content(self, request: web.Request) -> web.Response:
        item = self.contents.get(request.match_info["message_id"])
        if item is None:
            return _error(404, "Not found")
        data, content_type = item
        return web.Response(body=data, content_type=content_type)

    async def _loading(self, request: web.Request) -> web.Response:
        body = request["json"]
        seconds = body.get("loadingSeconds", 20)
        if not body.get("chatId") or seconds not in LOADING_SECONDS:
            return _error(
                400,
                "The request body has 1 error(s)",
                [{"message": "Invalid chatId or loadingSeconds", "property": "loadingSeconds"}],
            )
        return web.json_response({}, status=202)

    # --- emulator endpoints -----------------------------------------------------------
    async def _list_requests(self, request: web.Request) -> web.Response:
        path = request.query.get("path")
        items = [r for r in self.requests if path is None or r["path"] == path]
        return web.json_response(items)

    async def _clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({})

    async def _new_reply_token(self, request: web.Request) -> web.Response:
        user_id = request.query.get("userId")
        return web.json_response({"replyToken": self.issue_reply_token(user_id)})

    async def _list_messages(self, request: web.Request) -> web.Response:
        to = request.query.get("to")
        return web.json_response([d for d in self.delivered if to is None or d["to"] == to])


def make_app(channel_access_token: str, **kwargs: Any) -> web.Application:
    """aiohttp app for `python -m aiohttp.web` style hosting; the emulator is app["emulator"]."""
    emulator = LineApiEmulator(channel_access_token, **kwargs)
    emulator.app["emulator"] = emulator
    return emulator.app


def main() -> None:  # pragma: no cover - manual/demo entry point
    import argparse
    import os

    parser = argparse.ArgumentParser(description="Local LINE Messaging API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LINE_EMULATOR_PORT", 8091)))
    args = parser.parse_args()
    token = os.environ.get("LINE_CHANNEL_ACCESS_TOKEN") or "local-demo-token"
    web.run_app(make_app(token), host=args.host, port=args.port, print=None)


if __name__ == "__main__":  # pragma: no cover
    main()
