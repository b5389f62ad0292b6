"""Sentry for the gateway, with customer data scrubbed before anything leaves the process.

sentry-sdk sends full URLs, request bodies and local variables by default (shared/DESIGN.md,
Known pitfalls), so `init_sentry` turns those off and `before_send` /
`before_breadcrumb` scrub what remains:

- literal values of the customer being handled (message text, postback data, display
  name, user id, reply token), registered with `customer_data(...)` around the work on
  one event: an exception message that quotes them comes out as "[Filtered]";
- by pattern, anywhere in exception values, messages, breadcrumbs, extra, tags and
  request: LINE user/group/room ids (U/C/R + 32 hex), 32-hex tokens (reply tokens),
  phone numbers, `token=` query parameters (Rasa's auth token rides in URLs);
- by key: text, displayName, replyToken, userId, postback data, ... -> "[Filtered]";
- request bodies, cookies, query strings, auth/signature headers, frame locals and the
  user context are dropped.

Sentry is initialised only when SENTRY_DSN is set; without it everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from typing import Any, Dict, Iterator, Optional, Tuple

log = logging.getLogger(__name__)

FILTERED = "[Filtered]"

_customer_values: contextvars.ContextVar[Tuple[str, ...]] = contextvars.ContextVar(
    "gateway_customer_values", default=()
)

SENSITIVE_KEYS = {
    "text",
    "displayname",
    "display_name",
    "replytoken",
    "reply_token",
    "userid",
    "user_id",
    "line_user_id",
    "chatid",
    "chat_id",
    "to",
    "postback",
    "postback_data",
    "quotetoken",
    "quote_token",
    "sender",
    "metadata",
    "statusmessage",
    "pictureurl",
    "phone",
    "phone_number",
    "customer",
    "name",
    "message_text",
    "authorization",
    "x-line-signature",
    "cookie",
    "cookies",
    "token",
}
# Sentry's own bookkeeping: ids that look like hex tokens but must stay intact.
_SKIP_KEYS = {
    "event_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "contexts",
    "sdk",
    "modules",
    "debug_meta",
    "timestamp",
    "start_timestamp",
    "platform",
    "level",
    "release",
    "environment",
    "server_name",
    "_meta",
    "type",
    "module",
    "filename",
    "abs_path",
    "function",
    "lineno",
    "in_app",
    "mechanism",
}

_PATTERNS = [
    # LINE user / group / room ids
    (re.compile(r"\b[UCR][0-9a-f]{32}\b"), "[LINE id]"),
    # tokens as query parameters (Rasa's ?token=)
    (re.compile(r"(?i)(token=)[^&\s\"']+"), r"\1[Filtered]"),
    # 32-hex tokens (reply tokens, access tokens in logs)
    (re.compile(r"\b[0-9a-fA-F]{32}\b"), "[token]"),
    # phone numbers: Japanese (0X0-XXXX-XXXX, 03-1234-5678, 09012345678, +81 ...) and
    # international (+CC ...)
    (re.compile(r"(?<![\w])(?:\+81[-\s]?|0)\d{1,4}[-\s]?\d{1,4}[-\s]?\d{3,4}(?![\w])"), "[phone]"),
    (re.compile(r"(?<![\w])\+\d{1,3}[-\s]?\d{1,4}[-\s]?\d{2,4}[-\s]?\d{3,4}(?![\w])"), "[phone]"),
]


@contextlib.contextmanager
def customer_data(*values: Optional[str]) -> Iterator[None]:
    """Mark values of the customer being handled as secret for any report made meanwhile."""
    keep = tuple(v for v in values if isinstance(v, str) and len(v.strip()) >= 2)
    token = _customer_values.set(_customer_values.get() + keep)
    try:
        yield
    finally:
        _customer_values.reset(token)


def add_customer_data(*values: Optional[str]) -> None:
    """Add values to the current customer context (e.g. the display name once known)."""
    keep = tuple(v for v in values if isinstance(v, str) and len(v.strip()) >= 2)
    if keep:
        _customer_values.set(_customer_values.get() + keep)


def scrub_text(s: str, extra_values: Tuple[str, ...] = ()) -> str:
    values = sorted(set(_customer_values.get() + extra_values), key=len, reverse=True)
    for v in values:
        if v in s:
            s = s.replace(v, FILTERED)
    for pattern, repl in _PATTERNS:
        s = pattern.sub(repl, s)
    return s


def scrub(obj: Any, key: Optional[str] = None) -> Any:
    """Recursively scrub a Sentry event (or part of it)."""
    if key is not None:
        k = key.lower()
        if k in _SKIP_KEYS:
            return obj
        if k in SENSITIVE_KEYS and obj not in (None, "", [], {}):
            return FILTERED
    if isinstance(obj, str):
        return scrub_text(obj)
    if isinstance(obj, dict):
        return {k: scrub(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    return obj


def _scrub_request(request: Dict[str, Any]) -> Dict[str, Any]:
    request = dict(request)
    for k in ("data", "cookies", "query_string", "env"):
        request.pop(k, None)
    if isinstance(request.get("url"), str):
        request["url"] = request["url"].split("?", 1)[0]
    headers = request.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("authorization", "x-line-signature", "cookie", "x-slack-signature")
        }
    return scrub(request)


def before_send(event: Dict[str, Any], hint: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    try:
        event.pop("user", None)
        if isinstance(event.get("request"), dict):
            event["request"] = _scrub_request(event["request"])
        for frame_holder in _frames(event):
            frame_holder.pop("vars", None)
        return {k: (v if k == "request" else scrub(v, k)) for k, v in event.items()}
    except Exception:  # pragma: no cover - never let scrubbing leak by failing open
        log.warning("scrubbing a Sentry event failed; dropping the event")
        return None  # type: ignore[return-value]


def before_breadcrumb(crumb: Dict[str, Any], hint: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    try:
        return scrub(crumb)
    except Exception:  # pragma: no cover
        return None  # type: ignore[return-value]


def _frames(event: Dict[str, Any]):
    for exc in (event.get("exception") or {}).get("values") or []:
        for frame in (exc.get("stacktrace") or {}).get("frames") or []:
            yield frame
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            yield frame


def init_sentry(
    dsn: Optional[str], environment: Optional[str] = None, release: Optional[str] = None, **options: Any
) -> bool:
    """Initialise sentry-sdk when a DSN is given; returns whether it was initialised."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import ignore_logger

    # processor failures are reported explicitly (scrubbed, with the stack); their log
    # lines would make a second event
    ignore_logger("gateway.report")
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        traces_sample_rate=0.0,
        **options,
    )
    log.info("Sentry error reporting on")
    return True


def capture_exception(exc: Optional[BaseException] = None) -> None:
    """Report to Sentry when it is initialised (no-op otherwise)."""
    try:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)
    except Exception:  # pragma: no cover
        pass


def capture_message(message: str, level: str = "error") -> None:
    try:
        import sentry_sdk

        sentry_sdk.capture_message(message, level=level)
    except Exception:  # pragma: no cover
        pass


__all__ = [
    "FILTERED",
    "add_customer_data",
    "before_breadcrumb",
    "before_send",
    "capture_exception",
    "capture_message",
    "customer_data",
    "init_sentry",
    "scrub",
    "scrub_text",
]
