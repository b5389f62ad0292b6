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
    POST /v2/bot/chat/markAsRead            {"markAsReadToken"}: that message and earlier ones read
    POST /v2/bot/user/{userId}/linkToken    account link: {"linkToken"}, 10 minutes, single use
    GET  /dialog/bot/accountLink?linkToken=..&nonce=..   (what access.line.me does, a browser
                                            page, no auth; see "Account link" below)
    Rich menus (as LINE documents them; see "Rich menus" below):
    POST /v2/bot/richmenu/validate, POST /v2/bot/richmenu, GET /v2/bot/richmenu/list,
    GET|DELETE /v2/bot/richmenu/{richMenuId},
    POST|GET /v2/bot/richmenu/{richMenuId}/content   (the data API: the image)
    POST /v2/bot/user/all/richmenu/{richMenuId}, GET|DELETE /v2/bot/user/all/richmenu (default)
    POST /v2/bot/user/{userId}/richmenu/{richMenuId}, GET|DELETE /v2/bot/user/{userId}/richmenu

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
    GET    /_emulator/reads                  the markAsReadTokens marked read, in order
    GET    /_emulator/rich_menus             every rich menu (with `hasImage`), the default,
                                             the per-user links
    GET    /_emulator/rich_menu?userId=U..   the menu that user sees (linked, else the
                                             default) with its image's address; 404 if none
    GET    /_emulator/rich_menus/{id}/image  a rich menu's image

Rich menus: an object is checked as LINE checks it (size: width 800-2500, height >= 250,
width/height >= 1.45; selected; name <= 300; chatBarText <= 14; 1-20 areas, each inside
the image; actions postback (data <= 300, displayText <= 300), message (text <= 300), uri
(http, https, line or tel, <= 1000) and the other rich menu action types; label <= 20),
else 400 with details. The image (JPEG or PNG, <= 1 MB, else 413; its header must say
the menu's exact size) can be uploaded once per menu. A menu without an image cannot be
the default or linked (400). GET /v2/bot/user/{userId}/richmenu reports a per-user link
only (404 when there is none, even with a default set), as LINE does. Deleting a menu
drops its links and, if it was the default, the default.

Account link (LINE's "linking user accounts"): the shop's login page redirects the
customer's browser to /dialog/bot/accountLink with the link token and its nonce. An
unknown, used or expired token gets an error page and no event (as LINE); a nonce that is
not 10-255 characters gets an error page and an accountLink event with result "failed";
otherwise the token is used up, the signed accountLink event (result "ok", the nonce) is
posted to `webhook_url` with `channel_secret` (constructor args or attributes; without
them no event is sent) and the page says to go back to LINE. `account_links` records each
event sent.

Reply tokens are issued by the emulator itself (`issue_reply_token`), as LINE issues them
with each webhook event; the webhook client (line_client.py) asks for them.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from aiohttp import web

MAX_MESSAGES = 5
REPLY_TOKEN_TTL_S = 60.0
LINK_TOKEN_TTL_S = 600.0
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
        quote = m.get("quoteToken")
        if quote is not None:
            # LINE: only text, textV2 and sticker messages can quote
            if m["type"] not in ("text", "textV2", "sticker"):
                details.append(
                    {"message": "quoteToken is not supported for this type", "property": f"{prop}.quoteToken"}
                )
            elif not isinstance(quote, str) or not quote or len(quote) > 1000:
                details.append({"message": "Invalid quote token", "property": f"{prop}.quoteToken"})
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


RICH_MENU_ACTIONS = (
    "postback",
    "message",
    "uri",
    "datetimepicker",
    "richmenuswitch",
    "camera",
    "cameraRoll",
    "location",
    "clipboard",
)
MAX_RICH_MENUS = 1000  # per channel
MAX_RICH_MENU_IMAGE = 1024 * 1024


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_rich_menu(menu: Any) -> List[Dict[str, str]]:
    """LINE-like validation of a rich menu object; returns error details (empty when OK)."""
    if not isinstance(menu, dict):
        return [{"message": "Must be an object", "property": ""}]
    details: List[Dict[str, str]] = []

    def bad(prop: str, message: str) -> None:
        details.append({"message": message, "property": prop})

    size = menu.get("size")
    width = height = 0
    if not isinstance(size, dict) or not _is_int(size.get("width")) or not _is_int(size.get("height")):
        bad("size", "Must be specified")
    else:
        width, height = size["width"], size["height"]
        if not 800 <= width <= 2500:
            bad("size.width", "Must be between 800 and 2500")
        if height < 250:
            bad("size.height", "Must be at least 250")
        if height and width / height < 1.45:
            bad("size", "The aspect ratio (width / height) must be at least 1.45")
    if not isinstance(menu.get("selected"), bool):
        bad("selected", "Must be specified")
    name = menu.get("name")
    if not isinstance(name, str) or not name:
        bad("name", "Must be specified")
    elif _units(name) > 300:
        bad("name", "Length must be between 0 and 300")
    chat_bar = menu.get("chatBarText")
    if not isinstance(chat_bar, str) or not chat_bar:
        bad("chatBarText", "Must be specified")
    elif _units(chat_bar) > 14:
        bad("chatBarText", "Length must be between 0 and 14")
    areas = menu.get("areas")
    if not isinstance(areas, list) or not 1 <= len(areas) <= 20:
        bad("areas", "Size must be between 1 and 20")
        return details
    for i, area in enumerate(areas):
        p = f"areas[{i}]"
        b = (area or {}).get("bounds") if isinstance(area, dict) else None
        if not isinstance(b, dict) or not all(_is_int(b.get(k)) and b[k] >= 0 for k in ("x", "y", "width", "height")):
            bad(f"{p}.bounds", "Must be specified (x, y, width, height: non-negative integers)")
        elif b["width"] == 0 or b["height"] == 0:
            bad(f"{p}.bounds", "width and height must be positive")
        elif width and height and (b["x"] + b["width"] > width or b["y"] + b["height"] > height):
            bad(f"{p}.bounds", "The area must be inside the rich menu")
        action = area.get("action") if isinstance(area, dict) else None
        if not isinstance(action, dict) or action.get("type") not in RICH_MENU_ACTIONS:
            bad(f"{p}.action.type", "Must be one of the following values: " + ", ".join(RICH_MENU_ACTIONS))
            continue
        label = action.get("label")
        if label is not None and (not isinstance(label, str) or _units(label) > 20):
            bad(f"{p}.action.label", "Length must be between 0 and 20")
        kind = action["type"]
        if kind == "postback":
            data = action.get("data")
            if not isinstance(data, str) or not data:
                bad(f"{p}.action.data", "Must be specified")
            elif _units(data) > 300:
                bad(f"{p}.action.data", "Length must be between 0 and 300")
            shown = action.get("displayText")
            if shown is not None and (not isinstance(shown, str) or not 1 <= _units(shown) <= 300):
                bad(f"{p}.action.displayText", "Length must be between 1 and 300")
        elif kind == "message":
            text = action.get("text")
            if not isinstance(text, str) or not 1 <= _units(text) <= 300:
                bad(f"{p}.action.text", "Length must be between 1 and 300")
        elif kind == "uri":
            uri = action.get("uri")
            if not isinstance(uri, str) or not uri.startswith(("http://", "https://", "line://", "tel:")):
                bad(f"{p}.action.uri", "Must be a URI with the scheme http, https, line or tel")
            elif len(uri) > 1000:
                bad(f"{p}.action.uri", "Length must be between 0 and 1000")
        elif kind == "richmenuswitch":
            if not action.get("richMenuAliasId") or not action.get("data"):
                bad(f"{p}.action", "richMenuAliasId and data must be specified")
    return details


def image_size(data: bytes) -> Optional[Tuple[str, int, int]]:
    """(content type, width, height) from a PNG's IHDR or a JPEG's SOF header; None when
    the bytes are neither."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return "image/png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return "image/jpeg", width, height
            i += 2 + length
    return None


class LineApiEmulator:
    """State and handlers of the emulated LINE API. `app` is the aiohttp application."""

    def __init__(
        self,
        channel_access_token: str,
        reply_token_ttl_s: float = REPLY_TOKEN_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        auto_profiles: bool = True,
        webhook_url: Optional[str] = None,
        channel_secret: Optional[str] = None,
        link_token_ttl_s: float = LINK_TOKEN_TTL_S,
    ) -> None:
        self.channel_access_token = channel_access_token
        # where an accountLink event goes, signed with the channel secret (account link)
        self.webhook_url = webhook_url
        self.channel_secret = channel_secret
        self.link_token_ttl_s = link_token_ttl_s
        # link token -> [expiry on self._clock, user, used]
        self._link_tokens: Dict[str, List[Any]] = {}
        self.account_links: List[Dict[str, Any]] = []  # accountLink events sent, in order
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
        self.reads: List[str] = []  # markAsReadTokens marked read, in order
        self.rich_menus: Dict[str, Dict[str, Any]] = {}  # richMenuId -> the object (with its id)
        self.rich_menu_images: Dict[str, Tuple[bytes, str]] = {}  # richMenuId -> (image, type)
        self.default_rich_menu: Optional[str] = None
        self.user_rich_menus: Dict[str, str] = {}  # userId -> richMenuId linked
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
        # room for a too large rich menu image, so that it gets LINE's answer, not aiohttp's
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v2/bot/message/reply", self._reply)
        app.router.add_post("/v2/bot/message/push", self._push)
        app.router.add_get("/v2/bot/profile/{user_id}", self._profile)
        app.router.add_get("/v2/bot/{kind:group|room}/{chat_id}/member/{user_id}", self._member_profile)
        app.router.add_get("/v2/bot/message/{message_id}/content", self._content)
        app.router.add_post("/v2/bot/chat/loading/start", self._loading)
        app.router.add_post("/v2/bot/chat/markAsRead", self._mark_as_read)
        app.router.add_post("/v2/bot/user/{user_id}/linkToken", self._issue_link_token)
        app.router.add_get("/dialog/bot/accountLink", self._account_link_dialog)
        app.router.add_post("/v2/bot/richmenu/validate", self._validate_rich_menu)
        app.router.add_post("/v2/bot/richmenu", self._create_rich_menu)
        app.router.add_get("/v2/bot/richmenu/list", self._list_rich_menus)
        app.router.add_get("/v2/bot/richmenu/{rich_menu_id}", self._get_rich_menu)
        app.router.add_delete("/v2/bot/richmenu/{rich_menu_id}", self._delete_rich_menu)
        app.router.add_post("/v2/bot/richmenu/{rich_menu_id}/content", self._upload_rich_menu_image)
        app.router.add_get("/v2/bot/richmenu/{rich_menu_id}/content", self._rich_menu_image)
        app.router.add_post("/v2/bot/user/all/richmenu/{rich_menu_id}", self._set_default_rich_menu)
        app.router.add_get("/v2/bot/user/all/richmenu", self._get_default_rich_menu)
        app.router.add_delete("/v2/bot/user/all/richmenu", self._cancel_default_rich_menu)
        app.router.add_post("/v2/bot/user/{user_id}/richmenu/{rich_menu_id}", self._link_rich_menu)
        app.router.add_get("/v2/bot/user/{user_id}/richmenu", self._user_rich_menu)
        app.router.add_delete("/v2/bot/user/{user_id}/richmenu", self._unlink_rich_menu)
        app.router.add_get("/_emulator/rich_menus", self._emulator_rich_menus)
        app.router.add_get("/_emulator/rich_menu", self._emulator_rich_menu_of)
        app.router.add_get("/_emulator/rich_menus/{rich_menu_id}/image", self._emulator_rich_menu_image)
        app.router.add_get("/_emulator/reads", self._list_reads)
        app.router.add_get("/_emulator/requests", self._list_requests)
        app.router.add_delete("/_emulator/requests", self._clear_requests)
        app.router.add_post("/_emulator/reply_tokens", self._new_reply_token)
        app.router.add_get("/_emulator/messages", self._list_messages)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith(("/_emulator/", "/dialog/")):  # ours; a browser's page
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
            "status": None,  # set once answered; a reader may see the entry before that
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
        if request.method == "POST" and raw and body is None and not request.content_type.startswith("image/"):
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

    # --- rich menus ---------------------------------------------------------------------
    def rich_menu_of(self, user_id: str) -> Optional[Dict[str, Any]]:
        """The rich menu `user_id` sees: the one linked to them, else the default."""
        menu_id = self.user_rich_menus.get(user_id) or self.default_rich_menu
        return self.rich_menus.get(menu_id or "")

    def _menu_or_404(self, request: web.Request) -> Tuple[str, Optional[Dict[str, Any]]]:
        menu_id = request.match_info["rich_menu_id"]
        return menu_id, self.rich_menus.get(menu_id)

    async def _validate_rich_menu(self, request: web.Request) -> web.Response:
        details = validate_rich_menu(request["json"])
        if details:
            return _error(400, "The request body has %d error(s)" % len(details), details)
        return web.json_response({})

    async def _create_rich_menu(self, request: web.Request) -> web.Response:
        menu = request["json"]
        details = validate_rich_menu(menu)
        if details:
            return _error(400, "The request body has %d error(s)" % len(details), details)
        if len(self.rich_menus) >= MAX_RICH_MENUS:
            return _error(400, f"The number of rich menus exceeds the limit ({MAX_RICH_MENUS})")
        menu_id = "richmenu-" + secrets.token_hex(16)
        self.rich_menus[menu_id] = {"richMenuId": menu_id, **copy.deepcopy(menu)}
        return web.json_response({"richMenuId": menu_id})

    async def _list_rich_menus(self, request: web.Request) -> web.Response:
        return web.json_response({"richmenus": list(self.rich_menus.values())})

    async def _get_rich_menu(self, request: web.Request) -> web.Response:
        _, menu = self._menu_or_404(request)
        return web.json_response(menu) if menu is not None else _error(404, "Not found")

    async def _delete_rich_menu(self, request: web.Request) -> web.Response:
        menu_id, menu = self._menu_or_404(request)
        if menu is None:
            return _error(404, "Not found")
        del self.rich_menus[menu_id]
        self.rich_menu_images.pop(menu_id, None)
        if self.default_rich_menu == menu_id:
            self.default_rich_menu = None
        self.user_rich_menus = {u: m for u, m in self.user_rich_menus.items() if m != menu_id}
        return web.json_response({})

    async def _upload_rich_menu_image(self, request: web.Request) -> web.Response:
        menu_id, menu = self._menu_or_404(request)
        if menu is None:
            return _error(404, "Not found")
        content_type = request.content_type
        if content_type not in ("image/png", "image/jpeg"):
            return _error(415, "Unsupported Media Type: the image must be image/jpeg or image/png")
        data = await request.read()
        if len(data) > MAX_RICH_MENU_IMAGE:
            return _error(413, "Payload Too Large: the image must be at most 1 MB")
        found = image_size(data)
        if found is None or found[0] != content_type:
            return _error(400, f"The image is not a valid {content_type.split('/')[1].upper()} image")
        size = menu["size"]
        if (found[1], found[2]) != (size["width"], size["height"]):
            return _error(
                400,
                f"The image is {found[1]}x{found[2]}; this rich menu is {size['width']}x{size['height']}",
            )
        if menu_id in self.rich_menu_images:
            return _error(400, "An image has already been uploaded to the richmenu")
        self.rich_menu_images[menu_id] = (data, content_type)
        return web.json_response({})

    async def _rich_menu_image(self, request: web.Request) -> web.Response:
        item = self.rich_menu_images.get(request.match_info["rich_menu_id"])
        if item is None:
            return _error(404, "Not found")
        return web.Response(body=item[0], content_type=item[1])

    def _linkable(self, request: web.Request) -> Tuple[str, Optional[web.Response]]:
        menu_id, menu = self._menu_or_404(request)
        if menu is None:
            return menu_id, _error(404, "richmenu not found")
        if menu_id not in self.rich_menu_images:
            return menu_id, _error(400, "must upload richmenu image before applying it to user")
        return menu_id, None

    async def _set_default_rich_menu(self, request: web.Request) -> web.Response:
        menu_id, refused = self._linkable(request)
        if refused is not None:
            return refused
        self.default_rich_menu = menu_id
        return web.json_response({})

    async def _get_default_rich_menu(self, request: web.Request) -> web.Response:
        if self.default_rich_menu is None:
            return _error(404, "no default richmenu")
        return web.json_response({"richMenuId": self.default_rich_menu})

    async def _cancel_default_rich_menu(self, request: web.Request) -> web.Response:
        self.default_rich_menu = None
        return web.json_response({})

    async def _link_rich_menu(self, request: web.Request) -> web.Response:
        menu_id, refused = self._linkable(request)
        if refused is not None:
            return refused
        self.user_rich_menus[request.match_info["user_id"]] = menu_id
        return web.json_response({})

    async def _user_rich_menu(self, request: web.Request) -> web.Response:
        menu_id = self.user_rich_menus.get(request.match_info["user_id"])
        if menu_id is None:  # per-user links only, as LINE: the default is not reported here
            return _error(404, "the user has no richmenu")
        return web.json_response({"richMenuId": menu_id})

    async def _unlink_rich_menu(self, request: web.Request) -> web.Response:
        self.user_rich_menus.pop(request.match_info["user_id"], None)
        return web.json_response({})

    async def _emulator_rich_menus(self, request: web.Request) -> web.Response:
        menus = [{**m, "hasImage": m["richMenuId"] in self.rich_menu_images} for m in self.rich_menus.values()]
        return web.json_response({"richmenus": menus, "default": self.default_rich_menu, "users": self.user_rich_menus})

    async def _emulator_rich_menu_of(self, request: web.Request) -> web.Response:
        user_id = request.query.get("userId", "")
        menu = self.rich_menu_of(user_id)
        if menu is None or menu["richMenuId"] not in self.rich_menu_images:
            return _error(404, "no rich menu for this user")
        menu_id = menu["richMenuId"]
        return web.json_response(
            {
                "richMenuId": menu_id,
                "source": "user" if self.user_rich_menus.get(user_id) == menu_id else "default",
                "menu": menu,
                "image": f"/_emulator/rich_menus/{menu_id}/image",
            }
        )

    async def _emulator_rich_menu_image(self, request: web.Request) -> web.Response:
        item = self.rich_menu_images.get(request.match_info["rich_menu_id"])
        if item is None:
            return _error(404, "Not found")
        return web.Response(body=item[0], content_type=item[1], headers={"Cache-Control": "max-age=3600"})

    # --- account link -----------------------------------------------------------------
    async def _issue_link_token(self, request: web.Request) -> web.Response:
        token = secrets.token_urlsafe(24)
        self._link_tokens[token] = [self._clock() + self.link_token_ttl_s, request.match_info["user_id"], False]
        return web.json_response({"linkToken": token})

    async def _account_link_dialog(self, request: web.Request) -> web.Response:
        """access.line.me's account link endpoint, as the customer's browser sees it."""
        token, nonce = request.query.get("linkToken", ""), request.query.get("nonce", "")
        issued = self._link_tokens.get(token)
        if issued is None or issued[2] or self._clock() >= issued[0]:
            return _page(400, "The link token is invalid or has expired. / リンクの有効期限が切れています。")
        issued[2] = True  # single use
        user = issued[1]
        if not 10 <= len(nonce) <= 255:
            await self.send_account_link(user, nonce, "failed")
            return _page(400, "The account could not be linked. / アカウントを連携できませんでした。")
        await self.send_account_link(user, nonce, "ok")
        return _page(200, "Your account is linked. Please return to LINE. / 連携が完了しました。LINEに戻ってください。")

    async def send_account_link(self, user_id: str, nonce: str, result: str = "ok") -> Optional[int]:
        """Posts a signed accountLink event for `user_id` to `webhook_url` (its HTTP status;
        None when no webhook is configured). Tests call it to replay a nonce."""
        if not self.webhook_url or not self.channel_secret:
            return None
        from devkit.emulators.line_client import LineWebhookClient

        async def reply_token(user: str) -> str:
            return self.issue_reply_token(user)

        async with LineWebhookClient(self.webhook_url, self.channel_secret, token_source=reply_token) as client:
            event = await client.account_link_event(user_id, nonce, result)
            self.account_links.append(event)
            return (await client.post([event])).status

    # --- emulator endpoints -----------------------------------------------------------
    async def _mark_as_read(self, request: web.Request) -> web.Response:
        token = request["json"].get("markAsReadToken")
        if not isinstance(token, str) or not token:
            return _error(
                400,
                "The request body has 1 error(s)",
                [{"message": "must be specified", "property": "markAsReadToken"}],
            )
        self.reads.append(token)
        return web.json_response({})

    async def _list_reads(self, request: web.Request) -> web.Response:
        return web.json_response({"reads": self.reads})

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


def _page(status: int, message: str) -> web.Response:
    body = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>LINE</title></head>'
        f"<body><p>{message}</p></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


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
    # the account link's accountLink event goes to the gateway (devkit/run.py sets both)
    webhook = os.environ.get("LINE_EMULATOR_WEBHOOK_URL") or None
    secret = os.environ.get("LINE_CHANNEL_SECRET") or None
    app = make_app(token, webhook_url=webhook, channel_secret=secret)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":  # pragma: no cover
    main()
