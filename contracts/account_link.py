"""The nonce of LINE's account link, as the shop's login page issues it and the bot checks it.

LINE's flow: the gateway asks LINE for a link token for the customer and sends them the
shop's login page with it; the shop verifies who they are and redirects to LINE's
accountLink URL with a nonce; LINE then sends the gateway an `accountLink` event carrying
that nonce, and the bot links the LINE user to the shop's customer.

Why a signed nonce: whatever reaches the bot in that event came through LINE from a
browser, so the bot must not take "customer 17" from it. The shop signs which customer it
verified and until when (`ACCOUNT_LINK_KEY`, a secret only the shop and the action server
hold); the action server verifies the signature and the age, and records each nonce as
used, so a replayed or forged nonce links nothing. LINE allows nonces of 10-255
characters; this one is about 90.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

KEY_ENV = "ACCOUNT_LINK_KEY"
# The customer logs in and LINE sends the event within minutes; a link token lives 10.
MAX_AGE_S = 600.0
MAX_NONCE_CHARS = 255


class NonceInvalid(ValueError):
    """Malformed, forged or stale; the message says which (never the key or the nonce)."""


@dataclass(frozen=True)
class LinkNonce:
    customer_id: int  # the shop's customer the login page verified
    issued_at: float  # unix seconds
    salt: str  # random: two logins of one customer give two nonces


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, body: str) -> bytes:
    # 16 bytes of HMAC-SHA256 keep the nonce short; forging still needs the key
    return hmac.new(key.encode("utf-8"), b"account-link:v1:" + body.encode("ascii"), hashlib.sha256).digest()[:16]


def sign_nonce(key: str, customer_id: int, issued_at: float) -> str:
    """The nonce the shop's login page puts on LINE's accountLink URL."""
    if not key:
        raise ValueError(f"{KEY_ENV} is not set: account link nonces cannot be signed")
    data = {"c": int(customer_id), "t": int(issued_at), "s": secrets.token_urlsafe(9)}
    body = _b64(json.dumps(data, separators=(",", ":")).encode("ascii"))
    return f"{body}.{_b64(_mac(key, body))}"


def verify_nonce(key: str, nonce: Any, *, now: float, max_age_s: float = MAX_AGE_S) -> LinkNonce:
    """The verified customer of `nonce` if it is genuine and fresh (single use is the
    caller's: record `nonce_digest(nonce)` as used, uniquely)."""
    if not key:
        raise NonceInvalid(f"{KEY_ENV} is not set: no nonce can be verified")
    if not isinstance(nonce, str) or not 10 <= len(nonce) <= MAX_NONCE_CHARS or nonce.count(".") != 1:
        raise NonceInvalid("not a nonce of ours")
    body, mac = nonce.split(".")
    try:
        given = _unb64(mac)
    except ValueError:
        raise NonceInvalid("malformed signature") from None
    if not hmac.compare_digest(given, _mac(key, body)):
        raise NonceInvalid("bad signature")
    try:
        data = json.loads(_unb64(body))
        link = LinkNonce(customer_id=int(data["c"]), issued_at=float(data["t"]), salt=str(data["s"]))
    except (ValueError, KeyError, TypeError):
        raise NonceInvalid("malformed nonce") from None
    if not (now - max_age_s <= link.issued_at <= now + 30):
        raise NonceInvalid("the nonce is stale")
    return link


def nonce_digest(nonce: str) -> str:
    """What is stored to refuse a replay (not the nonce itself)."""
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


__all__ = ["KEY_ENV", "MAX_AGE_S", "LinkNonce", "NonceInvalid", "nonce_digest", "sign_nonce", "verify_nonce"]
