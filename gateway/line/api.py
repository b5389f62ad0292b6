"""LINE Messaging API client (reply, push, loading animation, profile, content, rich
menus, account link tokens) over aiohttp.

Profiles: a friend's from GET /v2/bot/profile/{userId}; a group or room member's from
GET /v2/bot/group/{groupId}/member/{userId} or /v2/bot/room/{roomId}/member/{userId}
(the friend endpoint answers 404 for a member who has not added the bot; the member
endpoints have no `language`).

Why direct aiohttp rather than line-bot-sdk's generated async client: the gateway needs
exact control of retries (429/5xx with backoff that honours `Retry-After`), of the
`X-Line-Retry-Key` that makes a retried push idempotent (409 = already accepted = done),
and of configurable base URLs for the local emulator; the JSON sent is exactly the
Messaging API's (the same dicts line/messages.py builds), so nothing is lost.

Errors:
- `InvalidReplyToken`: the reply token is spent, expired or unknown -> push instead.
- `LineApiError`: anything else that stays wrong after the retries (status kept, no
  customer content in the message).

No URL, token or body goes into a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.line.me"
DEFAULT_DATA_API_BASE = "https://api-data.line.me"
RETRY_KEY_HEADER = "X-Line-Retry-Key"


class LineApiError(Exception):
    def __init__(self, what: str, status: Optional[int], detail: str = "") -> None:
        self.what = what
        self.status = status
        super().__init__(f"LINE {what} failed: HTTP {status}" + (f" ({detail})" if detail else ""))


class InvalidReplyToken(LineApiError):
    """400 'Invalid reply token': spent, expired or never issued."""


@dataclass
class _Result:
    status: int
    headers: Mapping[str, str]
    body: bytes
    content_type: str

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def _retry_after(headers: Mapping[str, str]) -> Optional[float]:
    raw = headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class LineApi:
    def __init__(
        self,
        access_token: str,
        api_base_url: str = DEFAULT_API_BASE,
        data_api_base_url: str = DEFAULT_DATA_API_BASE,
        session: Optional[aiohttp.ClientSession] = None,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        retry_after_max_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._token = access_token
        self._api = api_base_url.rstrip("/")
        self._data = data_api_base_url.rstrip("/")
        self._session = session
        self._own_session = session is None
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=3.0)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return base * (0.75 + random.random() / 2)

    async def _request(
        self,
        what: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Optional[Dict[str, str]] = None,
        retry: bool = True,
        data: Optional[bytes] = None,
    ) -> _Result:
        """One logical call; 429/5xx/network errors retried (same headers, so the same
        retry key) up to max_attempts. Returns the final result for the caller to judge."""
        h = {"Authorization": f"Bearer {self._token}"}
        h.update(headers or {})
        attempts = self.max_attempts if retry else 1
        last_status: Optional[int] = None
        for attempt in range(1, attempts + 1):
            delay: Optional[float] = None
            try:
                async with self._get_session().request(
                    method, url, json=json_body, data=data, headers=h, timeout=self._timeout
                ) as resp:
                    body = await resp.read()
                    result = _Result(resp.status, resp.headers, body, resp.headers.get("Content-Type", ""))
                if result.status == 429 or result.status >= 500:
                    last_status = result.status
                    ra = _retry_after(result.headers)
                    delay = min(ra, self.retry_after_max_s) if ra is not None else None
                    log.warning("LINE %s answered HTTP %d (attempt %d/%d)", what, result.status, attempt, attempts)
                else:
                    return result
            except asyncio.TimeoutError:
                last_status = None
                log.warning("LINE %s timed out (attempt %d/%d)", what, attempt, attempts)
            except aiohttp.ClientError as exc:
                last_status = None
                log.warning("LINE %s unreachable: %s (attempt %d/%d)", what, type(exc).__name__, attempt, attempts)
            if attempt < attempts:
                await asyncio.sleep(delay if delay is not None else self._backoff(attempt))
        raise LineApiError(what, last_status, "gave up after retries")

    # --- Messaging API ------------------------------------------------------------------
    async def reply(self, reply_token: str, messages: List[Dict[str, Any]]) -> Dict[str, Any]:
        r = await self._request(
            "reply",
            "POST",
            f"{self._api}/v2/bot/message/reply",
            json_body={"replyToken": reply_token, "messages": messages},
        )
        if r.status == 200:
            return r.json() or {}
        body = r.json() or {}
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if r.status == 400 and "reply token" in message.lower():
            raise InvalidReplyToken("reply", 400, "invalid reply token")
        raise LineApiError("reply", r.status, _details(body))

    async def push(self, to: str, messages: List[Dict[str, Any]], retry_key: Optional[str] = None) -> Dict[str, Any]:
        """Push with an X-Line-Retry-Key (one uuid per logical push, kept across retries):
        409 means LINE already accepted this push, i.e. it is delivered exactly once."""
        key = retry_key or str(uuid.uuid4())
        r = await self._request(
            "push",
            "POST",
            f"{self._api}/v2/bot/message/push",
            json_body={"to": to, "messages": messages},
            headers={RETRY_KEY_HEADER: key},
        )
        if r.status == 200:
            return r.json() or {}
        if r.status == 409:
            log.info("LINE push already accepted under its retry key; not sent again")
            return {"accepted_request_id": r.headers.get("x-line-accepted-request-id")}
        raise LineApiError("push", r.status, _details(r.json()))

    async def start_loading(self, chat_id: str, seconds: int = 20) -> None:
        """Loading animation; cosmetic, so a single attempt and errors are the caller's to
        ignore."""
        seconds = max(5, min(60, int(round(seconds / 5.0)) * 5))
        r = await self._request(
            "loading",
            "POST",
            f"{self._api}/v2/bot/chat/loading/start",
            json_body={"chatId": chat_id, "loadingSeconds": seconds},
            retry=False,
        )
        if r.status not in (200, 202):
            raise LineApiError("loading", r.status)

    async def mark_as_read(self, mark_as_read_token: str) -> None:
        """Marks the customer's message, and every earlier one in the chat, as read (the
        `markAsReadToken` of its webhook event; such tokens do not expire). Only matters
        when the account has chat turned on: otherwise LINE marks messages read itself."""
        r = await self._request(
            "mark as read",
            "POST",
            f"{self._api}/v2/bot/chat/markAsRead",
            json_body={"markAsReadToken": mark_as_read_token},
        )
        if r.status != 200:
            raise LineApiError("mark as read", r.status, _details(r.json()))

    async def profile(
        self, user_id: str, *, group_id: Optional[str] = None, room_id: Optional[str] = None
    ) -> Optional[Dict[str, Any]]:
        """The user's profile as a member of `group_id` / `room_id`, else as a friend; None
        when LINE has none for us (404: not a friend, or not a member)."""
        user = quote(user_id, safe="")
        if group_id:
            path = f"/v2/bot/group/{quote(group_id, safe='')}/member/{user}"
        elif room_id:
            path = f"/v2/bot/room/{quote(room_id, safe='')}/member/{user}"
        else:
            path = f"/v2/bot/profile/{user}"
        r = await self._request("profile", "GET", f"{self._api}{path}", retry=True)
        if r.status == 200:
            body = r.json()
            return body if isinstance(body, dict) else None
        if r.status == 404:
            return None
        raise LineApiError("profile", r.status)

    async def content(self, message_id: str) -> Tuple[bytes, str]:
        """Binary content of an image/video/audio/file message from the data API."""
        r = await self._request("content", "GET", f"{self._data}/v2/bot/message/{message_id}/content")
        if r.status == 200:
            return r.body, r.content_type.split(";")[0].strip() or "application/octet-stream"
        raise LineApiError("content", r.status)

    async def issue_link_token(self, user_id: str) -> str:
        """POST /v2/bot/user/{userId}/linkToken: a link token for LINE's account link
        (valid 10 minutes, single use; docs/account-link.md). Never logged."""
        r = await self._request("link token", "POST", f"{self._api}/v2/bot/user/{quote(user_id, safe='')}/linkToken")
        body = r.json()
        if r.status == 200 and isinstance(body, dict) and body.get("linkToken"):
            return str(body["linkToken"])
        raise LineApiError("link token", r.status, _details(body))

    # --- rich menus (gateway/line/rich_menu.py builds them; rich_menu_links.py links them) --
    def _refused(self, what: str, r: _Result) -> LineApiError:
        body = r.json()
        details = [d for d in (body.get("details") or []) if isinstance(d, dict)] if isinstance(body, dict) else []
        message = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
        return RichMenuRefused(what, r.status, message, details)

    async def validate_rich_menu(self, menu: Dict[str, Any]) -> None:
        """POST /v2/bot/richmenu/validate: RichMenuRefused (with LINE's details) if invalid."""
        r = await self._request("rich menu validate", "POST", f"{self._api}/v2/bot/richmenu/validate", json_body=menu)
        if r.status != 200:
            raise self._refused("rich menu validate", r)

    async def create_rich_menu(self, menu: Dict[str, Any]) -> str:
        """POST /v2/bot/richmenu -> the new rich menu's id (it has no image yet)."""
        r = await self._request("rich menu create", "POST", f"{self._api}/v2/bot/richmenu", json_body=menu)
        body = r.json()
        if r.status == 200 and isinstance(body, dict) and body.get("richMenuId"):
            return str(body["richMenuId"])
        raise self._refused("rich menu create", r)

    async def upload_rich_menu_image(self, rich_menu_id: str, image: bytes, content_type: str = "image/png") -> None:
        """POST {data API}/v2/bot/richmenu/{id}/content (JPEG or PNG, <= 1 MB, the menu's
        exact size; an image once uploaded cannot be replaced)."""
        r = await self._request(
            "rich menu image upload",
            "POST",
            f"{self._data}/v2/bot/richmenu/{quote(rich_menu_id, safe='')}/content",
            data=image,
            headers={"Content-Type": content_type},
        )
        if r.status != 200:
            raise self._refused("rich menu image upload", r)

    async def rich_menu_image(self, rich_menu_id: str) -> Optional[bytes]:
        """GET {data API}/v2/bot/richmenu/{id}/content; None when it has no image (404)."""
        r = await self._request(
            "rich menu image", "GET", f"{self._data}/v2/bot/richmenu/{quote(rich_menu_id, safe='')}/content"
        )
        if r.status == 200:
            return r.body
        if r.status == 404:
            return None
        raise LineApiError("rich menu image", r.status)

    async def rich_menus(self) -> List[Dict[str, Any]]:
        """GET /v2/bot/richmenu/list: every rich menu of the channel made with the API."""
        r = await self._request("rich menu list", "GET", f"{self._api}/v2/bot/richmenu/list")
        body = r.json()
        if r.status == 200 and isinstance(body, dict):
            return [m for m in body.get("richmenus") or [] if isinstance(m, dict)]
        raise LineApiError("rich menu list", r.status)

    async def delete_rich_menu(self, rich_menu_id: str) -> bool:
        """DELETE /v2/bot/richmenu/{id}; False when it was gone already (404)."""
        r = await self._request(
            "rich menu delete", "DELETE", f"{self._api}/v2/bot/richmenu/{quote(rich_menu_id, safe='')}"
        )
        if r.status == 200:
            return True
        if r.status == 404:
            return False
        raise LineApiError("rich menu delete", r.status, _details(r.json()))

    async def default_rich_menu(self) -> Optional[str]:
        """GET /v2/bot/user/all/richmenu: the default rich menu's id, None when none is set."""
        r = await self._request("default rich menu", "GET", f"{self._api}/v2/bot/user/all/richmenu")
        body = r.json()
        if r.status == 200 and isinstance(body, dict):
            return str(body.get("richMenuId") or "") or None
        if r.status == 404:
            return None
        raise LineApiError("default rich menu", r.status)

    async def set_default_rich_menu(self, rich_menu_id: str) -> None:
        """POST /v2/bot/user/all/richmenu/{id}: every user without a menu of their own sees it."""
        r = await self._request(
            "set default rich menu", "POST", f"{self._api}/v2/bot/user/all/richmenu/{quote(rich_menu_id, safe='')}"
        )
        if r.status != 200:
            raise self._refused("set default rich menu", r)

    async def link_rich_menu(self, user_id: str, rich_menu_id: str, *, retry: bool = True) -> None:
        """POST /v2/bot/user/{userId}/richmenu/{id}: this user's menu (over the default)."""
        r = await self._request(
            "rich menu link",
            "POST",
            f"{self._api}/v2/bot/user/{quote(user_id, safe='')}/richmenu/{quote(rich_menu_id, safe='')}",
            retry=retry,
        )
        if r.status != 200:
            raise self._refused("rich menu link", r)

    async def user_rich_menu(self, user_id: str) -> Optional[str]:
        """GET /v2/bot/user/{userId}/richmenu: the menu linked to this user (the default is
        not reported here); None when none is linked (404)."""
        r = await self._request("user rich menu", "GET", f"{self._api}/v2/bot/user/{quote(user_id, safe='')}/richmenu")
        body = r.json()
        if r.status == 200 and isinstance(body, dict):
            return str(body.get("richMenuId") or "") or None
        if r.status == 404:
            return None
        raise LineApiError("user rich menu", r.status)


class RichMenuRefused(LineApiError):
    """LINE refused a rich menu call with 4xx: its message and details (about the menu
    object, never customer content) for the operator."""

    def __init__(self, what: str, status: Optional[int], message: str, details: List[Dict[str, Any]]) -> None:
        self.message = message
        self.details = details
        props = ", ".join(str(d.get("property", "")) for d in details if d.get("property"))[:200]
        super().__init__(what, status, "; ".join(x for x in (message, props) if x))


def _details(body: Any) -> str:
    """Error details of a LINE 4xx without echoing message contents: property names only."""
    if not isinstance(body, dict):
        return ""
    props = [str(d.get("property", "")) for d in body.get("details") or [] if isinstance(d, dict)]
    return ", ".join(p for p in props if p)[:200]


__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_DATA_API_BASE",
    "InvalidReplyToken",
    "LineApi",
    "LineApiError",
    "RETRY_KEY_HEADER",
    "RichMenuRefused",
]
