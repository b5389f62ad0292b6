"""Builds, signs and posts webhooks exactly as the LINE platform does (tests, demo, bench).

Body shape (Messaging API webhook):
    {"destination": "U<32 hex>", "events": [{
        "type": "message", "mode": "active", "timestamp": <ms>,
        "source": {"type": "user", "userId": "U..."},
        "webhookEventId": "<ULID>", "deliveryContext": {"isRedelivery": false},
        "replyToken": "...",
        "message": {"id": "<digits>", "type": "text", "quoteToken": "...", "text": "..."}}]}
Postbacks carry "postback": {"data": ...}; follow carries "follow": {"isUnblocked": false};
unfollow has no reply token; accountLink carries "link": {"result": "ok"|"failed",
"nonce"}. The body is compact UTF-8 JSON, signed with the channel
secret in `X-Line-Signature`. A redelivery repeats an event with the same webhookEventId
and replyToken and `deliveryContext.isRedelivery: true`.

Reply tokens come from a token source: the in-process emulator (`emulator_tokens`), an
emulator in another process over HTTP (`http_tokens`), or random ones (no emulator).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, Union

import aiohttp

# Signed as LINE documents it (base64 of HMAC-SHA256 over the raw body with the channel
# secret), written here on its own rather than taken from the gateway: the client stands
# for LINE, so a mistake in the gateway's verification cannot cancel out in the tests.
HEADER = "X-Line-Signature"


def sign(body: Union[str, bytes], secret: Union[str, bytes]) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, raw, hashlib.sha256).digest()).decode("ascii")


TokenSource = Callable[[str], Awaitable[str]]  # user id -> reply token

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(ms: Optional[int] = None) -> str:
    """26-char ULID (48-bit ms time + 80 random bits, Crockford base32), like LINE's ids."""
    ms = int(time.time() * 1000) if ms is None else ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def new_user_id() -> str:
    return "U" + secrets.token_hex(16)


def emulator_tokens(emulator: Any) -> TokenSource:
    """Tokens from an in-process LineApiEmulator."""

    async def source(user_id: str) -> str:
        return emulator.issue_reply_token(user_id)

    return source


def http_tokens(emulator_url: str, session: Optional[aiohttp.ClientSession] = None) -> TokenSource:
    """Tokens from an emulator in another process (POST /_emulator/reply_tokens)."""

    async def source(user_id: str) -> str:
        own = session is None
        s = session or aiohttp.ClientSession()
        try:
            async with s.post(f"{emulator_url.rstrip('/')}/_emulator/reply_tokens", params={"userId": user_id}) as resp:
                resp.raise_for_status()
                return (await resp.json())["replyToken"]
        finally:
            if own:
                await s.close()

    return source


async def random_tokens(user_id: str) -> str:
    return secrets.token_hex(16)


@dataclass
class WebhookResult:
    status: int
    text: str
    elapsed_s: float
    body: bytes


class LineWebhookClient:
    """Plays the LINE platform's side of the webhook."""

    def __init__(
        self,
        webhook_url: str,
        channel_secret: str,
        token_source: TokenSource = random_tokens,
        destination: Optional[str] = None,
        session: Optional[aiohttp.ClientSession] = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.channel_secret = channel_secret
        self.destination = destination or "U" + secrets.token_hex(16)
        self._tokens = token_source
        self._session = session
        self._own_session = session is None
        self._last_ts = 0
        self._msg_ids = int(time.time() * 1000) * 1000

    async def __aenter__(self) -> "LineWebhookClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    # --- building events ---------------------------------------------------------------
    def _timestamp(self) -> int:
        # strictly increasing, so a user's events keep the order they were made in
        self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        return self._last_ts

    def _message_id(self) -> str:
        self._msg_ids += 1
        return str(self._msg_ids)

    async def _base(self, event_type: str, user_id: str, reply: bool = True) -> Dict[str, Any]:
        ts = self._timestamp()
        event: Dict[str, Any] = {
            "type": event_type,
            "mode": "active",
            "timestamp": ts,
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": new_ulid(ts),
            "deliveryContext": {"isRedelivery": False},
        }
        if reply:
            event["replyToken"] = await self._tokens(user_id)
        return event

    async def text_event(self, user_id: str, text: str) -> Dict[str, Any]:
        event = await self._base("message", user_id)
        event["message"] = {
            "id": self._message_id(),
            "type": "text",
            "quoteToken": secrets.token_urlsafe(24),
            "markAsReadToken": secrets.token_urlsafe(24),
            "text": text,
        }
        return event

    async def postback_event(self, user_id: str, data: str) -> Dict[str, Any]:
        event = await self._base("postback", user_id)
        event["postback"] = {"data": data}
        return event

    async def image_event(self, user_id: str, message_id: Optional[str] = None) -> Dict[str, Any]:
        event = await self._base("message", user_id)
        event["message"] = {
            "id": message_id or self._message_id(),
            "type": "image",
            "quoteToken": secrets.token_urlsafe(24),
            "markAsReadToken": secrets.token_urlsafe(24),
            "contentProvider": {"type": "line"},
        }
        return event

    async def sticker_event(self, user_id: str, package_id: str = "446", sticker_id: str = "1988") -> Dict[str, Any]:
        event = await self._base("message", user_id)
        event["message"] = {
            "id": self._message_id(),
            "type": "sticker",
            "quoteToken": secrets.token_urlsafe(24),
            "markAsReadToken": secrets.token_urlsafe(24),
            "packageId": package_id,
            "stickerId": sticker_id,
            "stickerResourceType": "STATIC",
            "keywords": [],
        }
        return event

    async def follow_event(self, user_id: str) -> Dict[str, Any]:
        event = await self._base("follow", user_id)
        event["follow"] = {"isUnblocked": False}
        return event

    async def unfollow_event(self, user_id: str) -> Dict[str, Any]:
        return await self._base("unfollow", user_id, reply=False)

    async def account_link_event(self, user_id: str, nonce: str, result: str = "ok") -> Dict[str, Any]:
        """LINE's accountLink event: the user followed the account link URL (result "ok")
        or the link did not succeed ("failed"); the nonce is the shop's."""
        event = await self._base("accountLink", user_id)
        event["link"] = {"result": result, "nonce": nonce}
        return event

    def body(self, events: Sequence[Dict[str, Any]]) -> bytes:
        return json.dumps(
            {"destination": self.destination, "events": list(events)}, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")

    # --- posting -------------------------------------------------------------------------
    async def post_body(self, body: bytes, signature: Optional[str] = None, sign_body: bool = True) -> WebhookResult:
        """POST raw bytes; `signature` overrides (forgery tests), sign_body=False omits it."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "LineBotWebhook/2.0"}
        if signature is not None:
            headers[HEADER] = signature
        elif sign_body:
            headers[HEADER] = sign(body, self.channel_secret)
        start = time.perf_counter()
        async with self._session.post(self.webhook_url, data=body, headers=headers) as resp:
            text = await resp.text()
            return WebhookResult(resp.status, text, time.perf_counter() - start, body)

    async def post(self, events: Sequence[Dict[str, Any]], **kwargs: Any) -> WebhookResult:
        return await self.post_body(self.body(events), **kwargs)

    async def send_text(self, user_id: str, text: str) -> Tuple[Dict[str, Any], WebhookResult]:
        """Build and post one text event; the event is returned for a later redelivery."""
        event = await self.text_event(user_id, text)
        return event, await self.post([event])

    async def redeliver(self, events: Sequence[Dict[str, Any]]) -> WebhookResult:
        """Post the same events again as LINE's redelivery does: same webhookEventId and
        replyToken, `deliveryContext.isRedelivery` true."""
        return await self.post(redelivery_of(events))


def redelivery_of(events: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for e in events:
        e = copy.deepcopy(e)
        e["deliveryContext"] = {"isRedelivery": True}
        out.append(e)
    return out


__all__ = [
    "LineWebhookClient",
    "TokenSource",
    "WebhookResult",
    "emulator_tokens",
    "http_tokens",
    "new_ulid",
    "new_user_id",
    "random_tokens",
    "redelivery_of",
]
