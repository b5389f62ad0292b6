"""X-Line-Signature: base64(HMAC-SHA256(channel secret, raw request body)).

Verification runs on the raw bytes before any parsing: re-serialising JSON would change
the bytes and break the signature, and nothing may be stored for a forged request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional, Union

HEADER = "X-Line-Signature"


def _as_bytes(value: Union[str, bytes]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(body: Union[str, bytes], secret: Union[str, bytes]) -> str:
    """Signature LINE would send for `body`; used by the emulator's webhook client."""
    digest = hmac.new(_as_bytes(secret), _as_bytes(body), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: Optional[str], secret: Union[str, bytes]) -> bool:
    """True only when `signature` matches `body`; missing/empty/garbled signatures fail.

    hmac.compare_digest keeps the comparison constant-time so the signature can't be
    guessed byte by byte from response timings.
    """
    if not signature or not secret:
        return False
    expected = sign(body, secret).encode("ascii")
    try:
        given = signature.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)
