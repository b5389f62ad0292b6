"""What a customer sends on LINE, made safe for Rasa: typed text is text; a button tap
counts only when the gateway made that button for this customer.

Why: Rasa (3.6) reads any message whose text, after Python's `str.strip()`, starts with
"/" as an intent command with entities (`UserMessage` strips the text; the graph's
`RegexMessageHandler` -> `YAMLStoryReader.unpack_regex_message` strips again and matches
`^/(intent)(@confidence)?({entities})?`). So a customer typing
`/inform{"remedy":"refund_item"}` or `/EXTERNAL_agent_resolved` would skip NLU and act
like a button, or like an agent closing the case. See shared/DESIGN.md "Trust boundaries".

Typed text (`typed_text`): leading whitespace (as `str.isspace` knows it, which is what
Rasa strips), "/" and the full-width "／" are removed, so that neither Rasa nor a later
NFKC fold ("／" -> "/") can see a command. Nothing else changes; a message of nothing but
slashes becomes empty and is not sent. Text that names a reserved intent (`EXTERNAL_*`)
is logged (without the text) and, like any other, goes to Rasa as plain words.

Button taps (`PostbackSigner`): every `postback` / `datetimepicker` action the gateway
sends carries `data` = "s1." + MAC + "." + the Rasa payload, where MAC is HMAC-SHA256
over (version label, the LINE user id it is sent to, payload), cut to 128 bits and
base64url-encoded (22 characters): 26 characters over the payload, so payloads up to 274
fit LINE's 300; a longer one, or one naming a reserved intent, is not offered (dropped
with a warning). The data holds no secret (the payload is what Rasa would record
anyway). When a postback arrives the MAC is checked for the user it comes from, before
anything reaches Rasa: missing, wrong, tampered, or made for another user -> refused,
logged (reason only), and the customer is asked to choose again (processor.py; a neutral
text: honest buttons do go stale, e.g. after a key rotation, and it tells a forger
nothing). A signed payload naming a reserved intent is refused too.

Postbacks made by other means: the operator's rich menu cannot carry a per-user MAC (one
menu serves everyone), so an unsigned postback is accepted only when its data is exactly
one of a small allowlist of entity-less intent commands (`DEFAULT_PLAIN_POSTBACKS`, or
`POSTBACK_PLAIN_PAYLOADS`); nothing with entities, no reserved intent. Rich menu
"message" actions are typed text. A datetime picker the bot sends is signed like any
postback (the picked value, `postback.params`, is not forwarded to Rasa). Buttons sent
before signing existed are not accepted (they get the "choose again" text).

The key: `POSTBACK_SIGNING_KEY` (at least 32 characters; the same on every replica and
across restarts, or taps on buttons already sent are refused); unset, it is derived from
LINE_CHANNEL_SECRET with HMAC and a fixed label, so it is stable wherever the channel is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple

log = logging.getLogger(__name__)

RESERVED_INTENT_PREFIX = "EXTERNAL_"
# What Rasa (or an NFKC fold before it) would read as the command prefix.
_SLASHES = "/\uff0f"
SIGNED_PREFIX = "s1."
_MAC_BYTES = 16  # 128 bits: forging one is out of reach; keeps data short
_MAC_CHARS = 22  # base64url of 16 bytes, unpadded
_SIGNED_OVERHEAD = len(SIGNED_PREFIX) + _MAC_CHARS + 1
MAX_POSTBACK_DATA = 300  # LINE's limit on postback data
MAX_SIGNED_PAYLOAD = MAX_POSTBACK_DATA - _SIGNED_OVERHEAD
_MAC_LABEL = b"line-postback/v1"
_KEY_LABEL = b"rasa-gateway postback signing key v1"
MIN_KEY_CHARS = 32
# Entity-less intents a rich menu may send unsigned: each is something a customer could
# as well say in words, so accepting it unsigned grants nothing.
# /link_account and /unlink_account: LINE's account link (the shop's login page proves
# who the customer is; asking for it, or to unlink one's own LINE id, grants nothing).
DEFAULT_PLAIN_POSTBACKS: Tuple[str, ...] = (
    "/greet",
    "/check_order_status",
    "/request_human",
    "/link_account",
    "/unlink_account",
)
_PLAIN_PAYLOAD = re.compile(r"/[A-Za-z][A-Za-z0-9_]*")
_SIGNED_ACTIONS = ("postback", "datetimepicker")
_INTENT = re.compile(r"/([^{@]+)")


def typed_text(text: str) -> str:
    """The customer's typed text as Rasa should read it: never an intent command."""
    i = 0
    while i < len(text) and (text[i].isspace() or text[i] in _SLASHES):
        i += 1
    if i and any(c in _SLASHES for c in text[:i]):
        # only the kind is logged: nothing here logs customer text
        log.info(
            "typed text began with a slash%s; sent to Rasa as plain text",
            " and named a reserved intent" if names_reserved_intent("/" + text[i:]) else "",
        )
        return text[i:]
    return text  # unchanged (Rasa strips the whitespace itself)


def names_reserved_intent(payload: str) -> bool:
    """Would Rasa read `payload` as a command for a gateway-only intent (`EXTERNAL_*`)?"""
    match = _INTENT.match(payload.strip())
    return bool(match) and match.group(1).strip().upper().startswith(RESERVED_INTENT_PREFIX)


def signed_payload(data: str) -> str:
    """The payload inside signed postback data (not verified): for tests and tools that
    compare what was tapped with what Rasa recorded."""
    if data.startswith(SIGNED_PREFIX) and data[_SIGNED_OVERHEAD - 1 : _SIGNED_OVERHEAD] == ".":
        return data[_SIGNED_OVERHEAD:]
    return data


def derive_key(channel_secret: str) -> bytes:
    """The signing key when POSTBACK_SIGNING_KEY is unset: stable for the channel, and not
    the channel secret itself (LINE signs webhooks with that)."""
    return hmac.new(channel_secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def check_plain_postbacks(payloads: Iterable[str]) -> Tuple[str, ...]:
    """The allowlist of unsigned postbacks, refused unless each is `/intent` alone."""
    out = tuple(p.strip() for p in payloads if p.strip())
    for p in out:
        if not _PLAIN_PAYLOAD.fullmatch(p) or names_reserved_intent(p):
            raise ValueError(
                f"unsigned postbacks must be /intent without entities and not {RESERVED_INTENT_PREFIX}*: {p!r}"
            )
    return out


@dataclass(frozen=True)
class Verdict:
    """A postback's data checked: `payload` to send to Rasa, or None and `reason`."""

    payload: Optional[str]
    reason: str = ""


class PostbackSigner:
    """Signs the postbacks the gateway sends and checks the ones that come back."""

    def __init__(self, key: bytes, plain: Iterable[str] = DEFAULT_PLAIN_POSTBACKS) -> None:
        if len(key) < 16:
            raise ValueError("postback signing key too short")
        self._key = key
        self._plain = frozenset(check_plain_postbacks(plain))

    @classmethod
    def from_settings(cls, settings: Any) -> "PostbackSigner":
        """From gateway Settings: POSTBACK_SIGNING_KEY, else derived from the channel secret."""
        key = getattr(settings, "postback_signing_key", None)
        plain = getattr(settings, "plain_postbacks", DEFAULT_PLAIN_POSTBACKS)
        return cls(key.encode("utf-8") if key else derive_key(settings.channel_secret), plain)

    @classmethod
    def ephemeral(cls) -> "PostbackSigner":
        """A key of this process only: for a processor built on its own (tests). The
        gateway always passes the configured signer."""
        return cls(os.urandom(32))

    def _mac(self, payload: str, user_id: str) -> str:
        msg = b"\x00".join((_MAC_LABEL, user_id.encode("utf-8"), payload.encode("utf-8")))
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, payload: str, user_id: str) -> Optional[str]:
        """Postback data for `payload` sent to `user_id`; None when it cannot be offered."""
        if not payload or names_reserved_intent(payload):
            log.warning("a button naming a reserved intent was not offered")
            return None
        # LINE counts UTF-16 units; emoji count 2
        if len(payload.encode("utf-16-le")) // 2 > MAX_SIGNED_PAYLOAD:
            log.warning("dropping a button: payload over %d characters once signed", MAX_SIGNED_PAYLOAD)
            return None
        return f"{SIGNED_PREFIX}{self._mac(payload, user_id)}.{payload}"

    def verify(self, data: str, user_id: str) -> Verdict:
        """The payload of postback `data` from `user_id`, if the gateway made it for them
        (or it is an allowed plain one)."""
        if not data.startswith(SIGNED_PREFIX):
            if data in self._plain:
                return Verdict(data)
            return Verdict(None, "unsigned")
        mac, payload = data[len(SIGNED_PREFIX) : _SIGNED_OVERHEAD - 1], signed_payload(data)
        if payload == data or not payload:
            return Verdict(None, "malformed")
        # as bytes: compare_digest refuses non-ASCII str, and `data` is the sender's
        if not hmac.compare_digest(mac.encode("utf-8"), self._mac(payload, user_id).encode()):
            return Verdict(None, "bad signature (tampered, or made for someone else)")
        if names_reserved_intent(payload):
            return Verdict(None, "reserved intent")
        return Verdict(payload)

    # --- outgoing LINE messages ------------------------------------------------------------
    def sign_batches(self, batches: List[List[dict]], user_id: str) -> List[List[dict]]:
        """Message batches with every postback's data signed for `user_id` (actions that
        cannot be signed are left out)."""
        return [[self.sign_message(m, user_id) for m in batch] for batch in batches]

    def sign_message(self, message: dict, user_id: str) -> dict:
        """One LINE message (text with quick reply, Flex, template, ...) signed; a new dict."""
        signed = self._walk(message, user_id)
        qr = signed.get("quickReply")
        if isinstance(qr, dict) and not qr.get("items"):
            signed.pop("quickReply")  # LINE refuses an empty quick reply
        return signed

    def _walk(self, node: Any, user_id: str) -> Any:
        if isinstance(node, list):
            out = []
            for value in node:
                value = self._walk(value, user_id)
                if value is not _DROP:
                    out.append(value)
            return out
        if not isinstance(node, dict):
            return node
        if node.get("type") in _SIGNED_ACTIONS and "data" in node:
            data = self.sign(str(node.get("data") or ""), user_id)
            return _DROP if data is None else dict(node, data=data)
        out_d = {}
        for key, value in node.items():
            value = self._walk(value, user_id)
            if value is _DROP:
                if key == "action":
                    return _DROP  # a button / quick reply item without its action: gone
                continue  # e.g. a defaultAction
            out_d[key] = value
        return out_d


_DROP = object()


__all__ = [
    "DEFAULT_PLAIN_POSTBACKS",
    "MAX_SIGNED_PAYLOAD",
    "PostbackSigner",
    "Verdict",
    "check_plain_postbacks",
    "derive_key",
    "names_reserved_intent",
    "signed_payload",
    "typed_text",
]
